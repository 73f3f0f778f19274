package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadGraph(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		enabled bool
		tenants []string
		errs    []string // substrings, one per expected problem
		check   func(t *testing.T, g *Graph)
	}{
		{name: "none", env: map[string]string{}, enabled: false},
		{name: "schedule alone stays off", env: map[string]string{"Graph__Schedule": "0 */5 * * * *"}, enabled: false},
		{name: "top-level app", env: map[string]string{"Graph__TenantId": "t", "Graph__ClientId": "c", "Graph__ClientSecret": "s"},
			enabled: true, tenants: []string{"default"}, check: func(t *testing.T, g *Graph) {
				if g.Overlap != 5*time.Minute || g.Sources[0] != "microsoftDefenderForCloud" || g.WatermarkTable != "graphwatermarks" {
					t.Errorf("defaults %+v", g)
				}
				if s := g.Secrets(); len(s) == 0 || s[0] != "s" {
					t.Errorf("Secrets() = %v", s)
				}
				now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
				if !g.StartFrom(now).Equal(now.Add(-time.Hour)) {
					t.Errorf("StartFrom = %v", g.StartFrom(now))
				}
			}},
		{name: "managed identity", env: map[string]string{"Graph__Enabled": "true"}, enabled: true, tenants: []string{"default"}},
		{name: "tenants", env: map[string]string{
			"Graph__Tenants__fabrikam__TenantId": "f", "Graph__Tenants__fabrikam__ClientId": "fc", "Graph__Tenants__fabrikam__ClientSecret": "fs",
			"Graph__Tenants__contoso__TenantId": "c", "Graph__Tenants__contoso__ClientId": "cc", "Graph__Tenants__contoso__ClientSecret": "cs",
			"Graph__Sources": "microsoftDefenderForCloud, microsoftDefenderForEndpoint", "Graph__Overlap": "00:10:00",
			"Graph__StartFrom": "2026-01-01T00:00:00Z", "Graph__PageSize": "200",
		}, enabled: true, tenants: []string{"contoso", "fabrikam"}, check: func(t *testing.T, g *Graph) {
			if len(g.Sources) != 2 || g.Overlap != 10*time.Minute || g.PageSize != 200 || !g.StartFromTime.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("settings %+v", g)
			}
		}},
		{name: "disabled explicitly", env: map[string]string{"Graph__Enabled": "false", "Graph__TenantId": "t"}, enabled: false},
		{name: "every problem at once", env: map[string]string{
			"Graph__Overlap": "soon", "Graph__StartFrom": "yesterday", "Graph__PageSize": "0", "Graph__BaseUrl": "http://graph.local",
			"Graph__Tenants__x__Secret": "s", "Graph__Bogus": "1", "Graph__Enabled": "maybe",
		}, errs: []string{"Graph__Overlap", "Graph__StartFrom", "Graph__PageSize", "Graph__BaseUrl", "Graph__Tenants__x__Secret", "Graph__Bogus", "Graph__Enabled"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := LoadGraph(tc.env)
			if len(tc.errs) == 0 && err != nil {
				t.Fatal(err)
			}
			for _, e := range tc.errs {
				if err == nil || !strings.Contains(err.Error(), e) {
					t.Errorf("error %v does not name %s", err, e)
				}
			}
			if len(tc.errs) > 0 {
				for _, v := range tc.env {
					if v == "s" && err != nil && strings.Contains(err.Error(), "=\"s\"") {
						t.Errorf("secret quoted: %v", err)
					}
				}
				return
			}
			if g.Enabled != tc.enabled {
				t.Errorf("Enabled = %v, want %v", g.Enabled, tc.enabled)
			}
			var names []string
			for _, tn := range g.Tenants {
				names = append(names, tn.Name)
			}
			if tc.enabled && strings.Join(names, ",") != strings.Join(tc.tenants, ",") {
				t.Errorf("tenants %v, want %v", names, tc.tenants)
			}
			if tc.check != nil {
				tc.check(t, g)
			}
		})
	}
}
