package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "host.json"), []byte(`{"version":"2.0","functionTimeout":"00:05:00"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load([]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT=7071",
		"Destinations__splunk__Type=Splunk_HEC",
		"Destinations__splunk__Url=https://splunk:8088",
		"destinations__Splunk__TOKEN=abc",
		"Destinations__arc__Type=cef",
		"Destinations__arc__Headers__X-Sumo-Category=a=b",
		"Forwarder__LogLevel=debug",
		"PATH=/usr/bin",
	}, root)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Port != 7071 || c.FunctionTimeout != 5*time.Minute || c.LogLevel.String() != "DEBUG" {
		t.Errorf("globals: port %d timeout %v level %v", c.Port, c.FunctionTimeout, c.LogLevel)
	}
	// The name is spelt as in the Type setting, whatever the other keys say.
	if len(c.Destinations) != 2 || c.Destinations[0].Name != "arc" || c.Destinations[1].Name != "splunk" {
		t.Fatalf("destinations %+v", c.Destinations)
	}
	s := c.Destinations[1]
	if s.Type != "splunk_hec" {
		t.Errorf("type %q", s.Type)
	}
	if v, _ := s.Get("Token"); v != "abc" {
		t.Errorf("token %q: keys must match whatever their case", v)
	}
	if v, _ := c.Destinations[0].Get("Headers__X-Sumo-Category"); v != "a=b" {
		t.Errorf("nested header key: %q", v)
	}
}

// Every problem is reported at once, each naming its setting.
func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := Load([]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT=http",
		"Forwarder__FunctionTimeout=soon",
		"Forwarder__MaxRequestBytes=12",
		"Forwarder__LogLevel=loud",
		"Forwarder__ReadHeaderTimeout=0s",
		"Forwarder__BodyReadTimeout=-00:00:05",
		"Destinations__nokind__Url=x",
		"Destinations__bad.name__Type=cef",
		"Destinations__x",
	}, "")
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{"FUNCTIONS_CUSTOMHANDLER_PORT", "Forwarder__FunctionTimeout", "Forwarder__MaxRequestBytes", "Forwarder__LogLevel", "Forwarder__ReadHeaderTimeout", "Forwarder__BodyReadTimeout", "Destinations__nokind__Type", "Destinations__bad.name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}

// The read timeouts have defaults a user can rely on and take both duration forms.
func TestLoadReadTimeouts(t *testing.T) {
	tests := []struct {
		name             string
		env              []string
		header, wantBody time.Duration
	}{
		{"defaults", nil, 10 * time.Second, time.Minute},
		{"TimeSpan form", []string{"Forwarder__ReadHeaderTimeout=00:00:03", "Forwarder__BodyReadTimeout=00:02:30"}, 3 * time.Second, 150 * time.Second},
		{"Go form, any case", []string{"forwarder__readheadertimeout=500ms", "FORWARDER__BODYREADTIMEOUT=5m"}, 500 * time.Millisecond, 5 * time.Minute},
		{"empty means default", []string{"Forwarder__ReadHeaderTimeout=", "Forwarder__BodyReadTimeout="}, 10 * time.Second, time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(append([]string{"Destinations__s__Type=splunk_hec"}, tc.env...), "")
			if err != nil {
				t.Fatal(err)
			}
			if c.ReadHeaderTimeout != tc.header || c.BodyReadTimeout != tc.wantBody {
				t.Errorf("header %v body %v, want %v %v", c.ReadHeaderTimeout, c.BodyReadTimeout, tc.header, tc.wantBody)
			}
		})
	}
}

func TestLoadNeedsADestination(t *testing.T) {
	if _, err := Load(nil, ""); err == nil || !strings.Contains(err.Error(), "Destinations__<name>__Type") {
		t.Errorf("err = %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"00:10:00", 10 * time.Minute},
		{"01:00:00", time.Hour},
		{"1.02:00:00", 26 * time.Hour},
		{"00:00:00.500", 500 * time.Millisecond},
		{"90s", 90 * time.Second},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "10", "00:61:00", "a:b:c", "-00:01:00"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}
