// Package config reads the handler's settings from the environment, the way Azure Functions
// hands app settings (and local.settings.json Values under Core Tools) to a custom handler.
// Nested names use "__" as the Functions runtime does: Destinations__<name>__<Key>. It knows
// the global settings and the shape of a destination; what each destination type's keys mean
// is for the destination package to say.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Destination is one Destinations__<name>__… group of settings.
type Destination struct {
	// Name is <name> as written.
	Name string
	// Type is the Type setting, lower-cased.
	Type string
	// Settings holds the group's other settings by lower-cased key ("url", "token",
	// "headers__x-sumo-category" …).
	Settings map[string]string
}

// Get returns a setting by key, case-insensitively.
func (d Destination) Get(key string) (string, bool) {
	v, ok := d.Settings[strings.ToLower(key)]
	return v, ok
}

// Config is the handler's whole configuration.
type Config struct {
	// Port is FUNCTIONS_CUSTOMHANDLER_PORT, set by the host.
	Port int
	// Destinations are sorted by name.
	Destinations []Destination
	// FunctionTimeout is host.json's functionTimeout (or Forwarder__FunctionTimeout). The
	// host kills an invocation after it, so every invocation must answer well before.
	FunctionTimeout time.Duration
	// MaxRequestBytes bounds an invocation body (Forwarder__MaxRequestBytes).
	MaxRequestBytes int64
	// ReadHeaderTimeout bounds how long a request's headers may take to arrive
	// (Forwarder__ReadHeaderTimeout).
	ReadHeaderTimeout time.Duration
	// BodyReadTimeout bounds how long a request's whole body may take to arrive once its
	// headers are in (Forwarder__BodyReadTimeout), so that a client trickling its body cannot
	// hold a connection and its buffer for ever.
	BodyReadTimeout time.Duration
	// LogLevel is Forwarder__LogLevel.
	LogLevel slog.Level
	// Lookup reads any setting by its exact name (for the dead-letter store's settings).
	Lookup func(string) (string, bool)
	// Graph is the Graph Security API input; Graph.Enabled is false without Graph settings.
	Graph *Graph
}

// Defaults for the global settings.
const (
	DefaultFunctionTimeout = 10 * time.Minute
	DefaultMaxRequestBytes = 256 << 20
	// DefaultReadHeaderTimeout is generous for a caller on loopback, whose headers arrive in
	// one write.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultBodyReadTimeout lets a body of DefaultMaxRequestBytes arrive at 4.5 MB/s, far
	// below what the host manages over loopback even while it is busy serialising the batch.
	DefaultBodyReadTimeout = time.Minute
)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

// Load reads the configuration from environ (KEY=VALUE pairs, as os.Environ returns). appRoot
// is where host.json is looked for when Forwarder__FunctionTimeout is not set. It reports
// every problem at once, each naming its setting.
func Load(environ []string, appRoot string) (*Config, error) {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			env[k] = v
		}
	}
	lookup := func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		for ek, v := range env {
			if strings.EqualFold(ek, k) {
				return v, true
			}
		}
		return "", false
	}
	c := &Config{FunctionTimeout: DefaultFunctionTimeout, MaxRequestBytes: DefaultMaxRequestBytes,
		ReadHeaderTimeout: DefaultReadHeaderTimeout, BodyReadTimeout: DefaultBodyReadTimeout,
		LogLevel: slog.LevelInfo, Lookup: lookup}
	var errs []error

	if v, ok := lookup("FUNCTIONS_CUSTOMHANDLER_PORT"); ok && v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p <= 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("FUNCTIONS_CUSTOMHANDLER_PORT=%q: want a TCP port number", v))
		}
		c.Port = p
	}
	if v, ok := lookup("Forwarder__FunctionTimeout"); ok && v != "" {
		d, err := ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("Forwarder__FunctionTimeout=%q: want a duration such as 00:10:00 or 10m", v))
		}
		c.FunctionTimeout = d
	} else if d, err := hostJSONTimeout(appRoot); err != nil {
		errs = append(errs, err)
	} else if d > 0 {
		c.FunctionTimeout = d
	}
	if v, ok := lookup("Forwarder__MaxRequestBytes"); ok && v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1024 {
			errs = append(errs, fmt.Errorf("Forwarder__MaxRequestBytes=%q: want a byte count of at least 1024", v))
		}
		c.MaxRequestBytes = n
	}
	for _, t := range []struct {
		name string
		dst  *time.Duration
	}{{"Forwarder__ReadHeaderTimeout", &c.ReadHeaderTimeout}, {"Forwarder__BodyReadTimeout", &c.BodyReadTimeout}} {
		if v, ok := lookup(t.name); ok && v != "" {
			d, err := ParseDuration(v)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("%s=%q: want a positive duration such as 00:00:30 or 30s", t.name, v))
				continue
			}
			*t.dst = d
		}
	}
	if v, ok := lookup("Forwarder__LogLevel"); ok && v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("Forwarder__LogLevel=%q: want debug, info, warn or error", v))
		}
	}

	groups := map[string]*Destination{}
	for k, v := range env {
		rest, ok := cutPrefixFold(k, "Destinations__")
		if !ok {
			continue
		}
		name, key, ok := strings.Cut(rest, "__")
		if !ok || key == "" {
			errs = append(errs, fmt.Errorf("%s: want Destinations__<name>__<Key>", k))
			continue
		}
		g := groups[strings.ToLower(name)]
		if g == nil {
			g = &Destination{Name: name, Settings: map[string]string{}}
			groups[strings.ToLower(name)] = g
		}
		if strings.EqualFold(key, "Type") {
			// The Type setting declares the destination: its spelling of the name is the
			// one shown in logs and used as the dead-letter partition.
			g.Name = name
			g.Type = strings.ToLower(strings.TrimSpace(v))
			continue
		}
		g.Settings[strings.ToLower(key)] = v
	}
	for _, g := range groups {
		switch {
		case !namePattern.MatchString(g.Name):
			errs = append(errs, fmt.Errorf("Destinations__%s: a destination name is 1 to 63 letters, digits, '-' or '_', starting with a letter or digit", g.Name))
		case g.Type == "":
			errs = append(errs, fmt.Errorf("Destinations__%s__Type is missing: every destination needs a type", g.Name))
		default:
			c.Destinations = append(c.Destinations, *g)
		}
	}
	sort.Slice(c.Destinations, func(i, j int) bool {
		return strings.ToLower(c.Destinations[i].Name) < strings.ToLower(c.Destinations[j].Name)
	})
	g, gerr := LoadGraph(env)
	c.Graph = g
	errs = append(errs, gerr)
	if len(groups) == 0 {
		errs = append(errs, errors.New("no destination configured: set Destinations__<name>__Type (for example Destinations__splunk__Type=splunk_hec)"))
	}
	return c, errors.Join(errs...)
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// hostJSONTimeout reads functionTimeout from host.json in appRoot, 0 when there is none.
func hostJSONTimeout(appRoot string) (time.Duration, error) {
	if appRoot == "" {
		return 0, nil
	}
	raw, err := os.ReadFile(filepath.Join(appRoot, "host.json"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("host.json: %w", err)
	}
	var hj struct {
		FunctionTimeout string `json:"functionTimeout"`
	}
	if err := json.Unmarshal(raw, &hj); err != nil {
		return 0, fmt.Errorf("host.json: %w", err)
	}
	if hj.FunctionTimeout == "" || hj.FunctionTimeout == "-1" {
		return 0, nil
	}
	d, err := ParseDuration(hj.FunctionTimeout)
	if err != nil {
		return 0, fmt.Errorf("host.json functionTimeout %q: %w", hj.FunctionTimeout, err)
	}
	return d, nil
}

// ParseDuration accepts the .NET TimeSpan form Functions settings use ("00:10:00",
// "1.00:00:00", "00:00:00.500") and Go durations ("10m", "500ms").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	days := 0
	if dayPart, rest, ok := strings.Cut(s, "."); ok && strings.Count(dayPart, ":") == 0 {
		n, err := strconv.Atoi(dayPart)
		if err != nil {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		days, s = n, rest
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 || strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("bad duration %q: want hh:mm:ss or a Go duration", s)
	}
	h, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	sec, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil || h < 0 || m < 0 || m > 59 || sec < 0 || sec >= 60 {
		return 0, fmt.Errorf("bad duration %q: want hh:mm:ss", s)
	}
	return time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec*float64(time.Second)), nil
}
