package config

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// GraphTenant is one tenant the Graph poll reads: the top-level Graph__TenantId/ClientId/…
// (named "default") or a Graph__Tenants__<name>__… group. Without ClientSecret or
// ClientCertificate it authenticates as the function app's managed identity.
type GraphTenant struct {
	Name                string
	TenantID            string
	ClientID            string
	ClientSecret        string
	CertificateFile     string
	CertificatePassword string
}

// Graph is the Graph Security API input (Graph__… settings). It is off unless a tenant is
// configured or Graph__Enabled is true.
type Graph struct {
	Enabled bool
	// Sources are the serviceSource values polled (Graph__Sources, comma-separated).
	Sources []string
	// Overlap is how far before the watermark each poll reads again (Graph__Overlap).
	Overlap time.Duration
	// StartFromAgo or StartFromTime is where a tenant's first poll starts (Graph__StartFrom:
	// a duration before now, or an RFC 3339 time).
	StartFromAgo  time.Duration
	StartFromTime time.Time
	// PageSize is $top (Graph__PageSize); 0 leaves it to Graph.
	PageSize int
	// BaseURL is the Graph endpoint (Graph__BaseUrl), for national clouds.
	BaseURL string
	// AuthorityHost and DisableInstanceDiscovery are the Entra ID authority settings.
	AuthorityHost            string
	DisableInstanceDiscovery bool
	// CAFile adds PEM CA certificates to those TLS trusts for Graph and Entra ID.
	CAFile string
	// WatermarkTable names the table of watermarks (Graph__WatermarkTable).
	WatermarkTable string
	Tenants        []GraphTenant
}

// Graph defaults.
const (
	DefaultGraphSource    = "microsoftDefenderForCloud"
	DefaultGraphOverlap   = 5 * time.Minute
	DefaultGraphStartFrom = time.Hour
	DefaultGraphTable     = "graphwatermarks"
	DefaultGraphBaseURL   = "https://graph.microsoft.com"
)

// Secrets are the Graph settings' secret values, for the log scrubber.
func (g *Graph) Secrets() []string {
	var s []string
	for _, t := range g.Tenants {
		s = append(s, t.ClientSecret, t.CertificatePassword)
	}
	return s
}

// StartFrom is where a first poll starts, at now.
func (g *Graph) StartFrom(now time.Time) time.Time {
	if !g.StartFromTime.IsZero() {
		return g.StartFromTime
	}
	return now.Add(-g.StartFromAgo)
}

var graphTenantKeys = map[string]string{
	"tenantid": "TenantId", "clientid": "ClientId", "clientsecret": "ClientSecret",
	"clientcertificate": "ClientCertificate", "clientcertificatepassword": "ClientCertificatePassword",
}

var graphGlobalKeys = map[string]bool{
	"enabled": true, "sources": true, "overlap": true, "startfrom": true, "pagesize": true, "baseurl": true,
	"authorityhost": true, "disableinstancediscovery": true, "cafile": true, "watermarktable": true,
	// The host reads Graph__Schedule for the timer; the handler only accepts it.
	"schedule": true,
}

func setTenantKey(t *GraphTenant, key, v string) {
	switch key {
	case "tenantid":
		t.TenantID = strings.TrimSpace(v)
	case "clientid":
		t.ClientID = strings.TrimSpace(v)
	case "clientsecret":
		t.ClientSecret = v
	case "clientcertificate":
		t.CertificateFile = strings.TrimSpace(v)
	case "clientcertificatepassword":
		t.CertificatePassword = v
	}
}

// LoadGraph reads the Graph__ settings from env. Messages name settings, never secret values.
func LoadGraph(env map[string]string) (*Graph, error) {
	g := &Graph{Sources: []string{DefaultGraphSource}, Overlap: DefaultGraphOverlap, StartFromAgo: DefaultGraphStartFrom,
		BaseURL: DefaultGraphBaseURL, WatermarkTable: DefaultGraphTable}
	var errs []error
	top := GraphTenant{Name: "default"}
	topSet := false
	named := map[string]*GraphTenant{}
	global := map[string]string{}
	for k, v := range env {
		rest, ok := cutPrefixFold(k, "Graph__")
		if !ok {
			continue
		}
		lower := strings.ToLower(rest)
		if trest, ok := cutPrefixFold(rest, "Tenants__"); ok {
			name, key, ok := strings.Cut(trest, "__")
			if _, known := graphTenantKeys[strings.ToLower(key)]; !ok || !known {
				errs = append(errs, fmt.Errorf("%s: want Graph__Tenants__<name>__<Key> with Key one of TenantId, ClientId, ClientSecret, ClientCertificate, ClientCertificatePassword", k))
				continue
			}
			t := named[strings.ToLower(name)]
			if t == nil {
				t = &GraphTenant{Name: name}
				named[strings.ToLower(name)] = t
			}
			setTenantKey(t, strings.ToLower(key), v)
			continue
		}
		if _, ok := graphTenantKeys[lower]; ok {
			setTenantKey(&top, lower, v)
			topSet = topSet || strings.TrimSpace(v) != ""
			continue
		}
		if !graphGlobalKeys[lower] {
			errs = append(errs, fmt.Errorf("%s: unknown Graph setting", k))
			continue
		}
		global[lower] = strings.TrimSpace(v)
	}
	if v, ok := global["enabled"]; ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("Graph__Enabled=%q: want true or false", v))
		}
		g.Enabled = b
	}
	if v := global["sources"]; v != "" {
		g.Sources = nil
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				g.Sources = append(g.Sources, s)
			}
		}
		if len(g.Sources) == 0 {
			errs = append(errs, errors.New("Graph__Sources: name at least one serviceSource, such as microsoftDefenderForCloud"))
		}
	}
	if v := global["overlap"]; v != "" {
		d, err := ParseDuration(v)
		if err != nil || d < 0 || d > 24*time.Hour {
			errs = append(errs, fmt.Errorf("Graph__Overlap=%q: want a duration from 0 to 24 h, such as 00:05:00", v))
		}
		g.Overlap = d
	}
	if v := global["startfrom"]; v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			g.StartFromTime = t.UTC()
		} else if d, err := ParseDuration(v); err == nil && d >= 0 {
			g.StartFromAgo = d
		} else {
			errs = append(errs, fmt.Errorf("Graph__StartFrom=%q: want a duration before now (01:00:00, 24h) or an RFC 3339 time", v))
		}
	}
	if v := global["pagesize"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			errs = append(errs, fmt.Errorf("Graph__PageSize=%q: want 1 to 1000", v))
		}
		g.PageSize = n
	}
	for _, u := range []struct{ key, name string }{{"baseurl", "Graph__BaseUrl"}, {"authorityhost", "Graph__AuthorityHost"}} {
		v := global[u.key]
		if v == "" {
			continue
		}
		pu, err := url.Parse(v)
		if err != nil || pu.Scheme != "https" || pu.Host == "" {
			errs = append(errs, fmt.Errorf("%s=%q: want an https URL", u.name, v))
		}
		if u.key == "baseurl" {
			g.BaseURL = strings.TrimRight(v, "/")
		} else {
			g.AuthorityHost = v
		}
	}
	if v := global["disableinstancediscovery"]; v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("Graph__DisableInstanceDiscovery=%q: want true or false", v))
		}
		g.DisableInstanceDiscovery = b
	}
	g.CAFile = global["cafile"]
	if v := global["watermarktable"]; v != "" {
		g.WatermarkTable = v
	}
	if topSet {
		g.Tenants = append(g.Tenants, top)
	}
	names := make([]string, 0, len(named))
	for k := range named {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		t := named[k]
		if !namePattern.MatchString(t.Name) {
			errs = append(errs, fmt.Errorf("Graph__Tenants__%s: a tenant name is 1 to 63 letters, digits, '-' or '_'", t.Name))
			continue
		}
		if strings.EqualFold(t.Name, "default") && topSet {
			errs = append(errs, errors.New("Graph__Tenants__default clashes with the top-level Graph__TenantId/ClientId settings"))
			continue
		}
		g.Tenants = append(g.Tenants, *t)
	}
	if len(g.Tenants) > 0 {
		if v, ok := global["enabled"]; !ok || v == "" {
			g.Enabled = true
		}
	}
	if g.Enabled && len(g.Tenants) == 0 {
		// Graph__Enabled alone: the app's managed identity in its own tenant.
		g.Tenants = []GraphTenant{top}
	}
	return g, errors.Join(errs...)
}
