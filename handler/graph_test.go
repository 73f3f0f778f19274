package main

import (
	"io"
	"strings"
	"testing"

	"github.com/defender-siem/forwarder/internal/config"
)

// The Graph input is wired only when configured, and the handler will not start with it when
// no destination would take its alerts, or with a tenant half configured.
func TestBuildGraph(t *testing.T) {
	base := []string{"AzureWebJobsStorage=UseDevelopmentStorage=true", "Forwarder__FunctionTimeout=00:01:00"}
	graph := []string{"Graph__TenantId=t", "Graph__ClientId=c", "Graph__ClientSecret=topsecret-graph"}
	for _, tc := range []struct {
		name    string
		env     []string
		wantErr string // "" for success
		wired   bool
	}{
		{"no graph", []string{"Destinations__s__Type=syslog", "Destinations__s__Address=tcp://127.0.0.1:6514"}, "", false},
		{"hec takes every kind", append([]string{"Destinations__s__Type=splunk_hec", "Destinations__s__Url=https://127.0.0.1:8088", "Destinations__s__Token=x"}, graph...), "", true},
		{"syslog defaults take graphalert", append([]string{"Destinations__s__Type=syslog", "Destinations__s__Address=tcp://127.0.0.1:6514"}, graph...), "", true},
		{"kinds that leave graphalert out", append([]string{"Destinations__s__Type=syslog", "Destinations__s__Address=tcp://127.0.0.1:6514", "Destinations__s__Kinds=alert"}, graph...), "no destination takes kind graphalert", false},
		{"secret without tenant", []string{"Destinations__s__Type=splunk_hec", "Destinations__s__Url=https://127.0.0.1:8088", "Destinations__s__Token=x",
			"Graph__Tenants__fab__ClientSecret=topsecret-graph"}, "Graph__Tenants__fab__TenantId", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load(append(append([]string(nil), base...), tc.env...), "")
			if err != nil {
				t.Fatal(err)
			}
			a, err := build(cfg, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "topsecret-graph") {
					t.Errorf("error quotes the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer a.close()
			if (a.graph != nil) != tc.wired {
				t.Errorf("graph wired = %v, want %v", a.graph != nil, tc.wired)
			}
			if tc.wired && a.scrub.String("x topsecret-graph y") == "x topsecret-graph y" {
				t.Error("the scrubber does not know Graph__ClientSecret")
			}
		})
	}
}
