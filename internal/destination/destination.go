// Package destination turns the Destinations__<name>__… settings into working destinations:
// it knows every destination type, which formatter and transport each one pairs, what its
// settings are called and what their defaults are. It builds; it does not send.
package destination

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/config"
	"github.com/defender-siem/forwarder/internal/pipeline"
	"github.com/defender-siem/forwarder/internal/retry"
	"github.com/defender-siem/forwarder/internal/sink/tlsconf"
)

// builder builds one type's formatter and sink from its settings.
type builder func(r *reader, d *pipeline.Destination, log *slog.Logger)

type typeInfo struct {
	build builder
	// entities says the type's formatter reads alert entities.
	entities bool
	// kinds is the default for the Kinds setting; nil means every kind.
	kinds []alert.Kind
}

// siemKinds is what SIEM formats take unless told otherwise: alerts are what a SOC triages;
// recommendations and scores are opt-in.
var siemKinds = []alert.Kind{alert.KindAlert, alert.KindActivityLogAlert, alert.KindGraphAlert}

var types = map[string]typeInfo{
	"splunk_hec": {build: buildHEC, kinds: nil},
	"http":       {build: buildHTTP, kinds: nil},
	"syslog":     {build: buildSyslog, kinds: siemKinds},
	"cef":        {build: buildCEF, kinds: siemKinds}, // reads its five entity values from the raw list itself
	"leef":       {build: buildLEEF, kinds: siemKinds, entities: true},
	"logrhythm":  {build: buildLogRhythm, kinds: siemKinds, entities: true},

	"log_analytics": {build: buildLogAnalytics, kinds: nil},
	"xsiam":         {build: buildXSIAM, kinds: siemKinds},
	"servicenow":    {build: buildServiceNow, kinds: serviceNowKinds, entities: true},
}

// Types lists the supported destination types.
func Types() []string {
	out := make([]string, 0, len(types))
	for t := range types {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Built is what Build returns for the whole configuration.
type Built struct {
	Destinations []pipeline.Destination
	// Secrets are the setting values that must never be logged (tokens, keys, auth headers).
	Secrets []string
}

// Build builds every configured destination. It reports every problem of every destination at
// once; on error nothing is returned, so the handler never starts half-configured. log may be
// nil.
func Build(cfg *config.Config, log *slog.Logger) (*Built, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	out := &Built{}
	for _, dc := range cfg.Destinations {
		d, secrets, err := buildOne(dc, log)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out.Destinations = append(out.Destinations, d)
		out.Secrets = append(out.Secrets, secrets...)
	}
	if err := errors.Join(errs...); err != nil {
		for _, d := range out.Destinations {
			_ = d.Sink.Close()
		}
		return nil, err
	}
	return out, nil
}

func buildOne(dc config.Destination, log *slog.Logger) (pipeline.Destination, []string, error) {
	ti, ok := types[dc.Type]
	if !ok {
		return pipeline.Destination{}, nil, fmt.Errorf("Destinations__%s__Type=%q: want one of %s", dc.Name, dc.Type, strings.Join(Types(), ", "))
	}
	r := newReader(dc)
	d := pipeline.Destination{Name: dc.Name, Type: dc.Type, NeedsEntities: ti.entities}
	d.Filter = readFilter(r, ti.kinds)
	d.Retry = readRetry(r)
	dlog := log.With("destination", dc.Name, "type", dc.Type)
	ti.build(r, &d, dlog)
	r.unknown()
	if err := r.err(); err != nil {
		if d.Sink != nil {
			_ = d.Sink.Close()
		}
		return pipeline.Destination{}, nil, err
	}
	if v, ok := dc.Get("InsecureSkipVerify"); ok {
		if b, _ := strconv.ParseBool(strings.TrimSpace(v)); b {
			dlog.Warn("TLS certificate verification is OFF for this destination (InsecureSkipVerify=true): anyone on the path can read and forge what it receives")
		}
	}
	var secrets []string
	for k, v := range dc.Settings {
		if isSecretKey(k) && strings.TrimSpace(v) != "" {
			secrets = append(secrets, strings.TrimSpace(v))
		}
	}
	return d, secrets, nil
}

// isSecretKey says which settings hold credentials. Headers are all treated as secret because
// intakes put keys in them under any name.
func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	return k == "token" || strings.Contains(k, "password") || k == "authheader" || strings.HasPrefix(k, "headers__") || strings.Contains(k, "secret") || strings.Contains(k, "apikey")
}

func readFilter(r *reader, defKinds []alert.Kind) pipeline.Filter {
	f := pipeline.Filter{Kinds: defKinds}
	if ks := r.list("Kinds"); ks != nil {
		f.Kinds = nil
		for _, k := range ks {
			if strings.EqualFold(k, "all") || k == "*" {
				f.Kinds = nil
				break
			}
			kind, ok := parseKind(k)
			if !ok {
				r.fail("Kinds", "%q is not a record kind: want all or some of %s", k, kindNames())
				continue
			}
			f.Kinds = append(f.Kinds, kind)
		}
	}
	if v, ok := r.raw("MinSeverity"); ok {
		s := alert.ParseSeverity(v)
		if s == alert.SeverityNone {
			r.fail("MinSeverity", "%q: want Informational, Low, Medium or High", v)
		}
		f.MinSeverity = s
	}
	for _, s := range r.list("Subscriptions") {
		f.Subscriptions = append(f.Subscriptions, strings.ToLower(s))
	}
	for _, s := range r.list("ExcludeSubscriptions") {
		f.ExcludeSubscriptions = append(f.ExcludeSubscriptions, strings.ToLower(s))
	}
	return f
}

func parseKind(s string) (alert.Kind, bool) {
	s = strings.ToLower(strings.TrimSuffix(strings.ToLower(s), "s"))
	for _, k := range alert.Kinds {
		if string(k) == s {
			return k, true
		}
	}
	return "", false
}

func kindNames() string {
	var out []string
	for _, k := range alert.Kinds {
		out = append(out, string(k))
	}
	return strings.Join(out, ", ")
}

func readRetry(r *reader) retry.Policy {
	p := retry.DefaultPolicy()
	p.MaxAttempts = r.integer("RetryMaxAttempts", p.MaxAttempts, 0, 1000)
	p.InitialInterval = r.duration("RetryInitialInterval", p.InitialInterval)
	p.MaxInterval = r.duration("RetryMaxInterval", p.MaxInterval)
	p.AttemptTimeout = r.duration("AttemptTimeout", p.AttemptTimeout)
	if err := p.Validate(); err != nil {
		r.check(err)
	}
	return p
}

func readTLS(r *reader) tlsconf.Config {
	c := tlsconf.Config{
		CAFile:             r.str("CAFile", ""),
		ClientCert:         r.str("ClientCert", ""),
		ClientKey:          r.str("ClientKey", ""),
		ServerName:         r.str("ServerName", ""),
		InsecureSkipVerify: r.boolean("InsecureSkipVerify", false),
	}
	r.check(c.Validate())
	return c
}
