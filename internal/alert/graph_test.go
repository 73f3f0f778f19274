package alert

import (
	"strings"
	"testing"
)

// A Defender for Cloud alert as alerts_v2 documents its members (built by hand: the Graph
// documentation has no Defender for Cloud example): the Azure resource evidence gives the
// resource, the subscription and the compromised entity; the ip evidence an ip entity the
// formats find under the export's names.
func TestGraphDefenderForCloudAlert(t *testing.T) {
	raw := `{"@odata.type":"#microsoft.graph.security.alert","id":"dc2517_abc","providerAlertId":"2517_abc",
	"status":"resolved","severity":"high","classification":"truePositive","determination":"malware",
	"serviceSource":"microsoftDefenderForCloud","detectionSource":"microsoftDefenderForServers","title":"Suspicious command",
	"alertWebUrl":"https://security.microsoft.com/alerts/dc2517_abc","createdDateTime":"2026-03-01T10:00:00Z",
	"lastUpdateDateTime":"2026-03-01T11:30:00.5Z","mitreTechniques":["T1059.004","T1059"],
	"evidence":[{"@odata.type":"#microsoft.graph.security.azureResourceEvidence","roles":["compromised"],
	"resourceId":"/subscriptions/AB12/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1","resourceName":"vm1"},
	{"@odata.type":"#microsoft.graph.security.ipEvidence","roles":["attacker"],"ipAddress":"198.51.100.7"},
	{"@odata.type":"#microsoft.graph.security.somethingNewEvidence","x":1}, 7]}`
	rec, err := Parse([]byte(raw), 0)
	if err != nil || rec.Kind != KindGraphAlert {
		t.Fatalf("kind %s, %v", rec.Kind, err)
	}
	a := rec.Alert
	checks := []struct{ name, got, want string }{
		{"ID", rec.ID, "dc2517_abc"},
		{"SystemAlertID", a.SystemAlertID, "2517_abc"},
		{"Status", rec.Status, "Resolved"},
		{"Severity", rec.Severity.String(), "High"},
		{"Time", rec.Time.Format("15:04:05.0"), "11:30:00.5"},
		{"TimeGenerated", a.TimeGenerated.Format("15:04"), "10:00"},
		{"ResourceID", rec.ResourceID, "/subscriptions/AB12/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"},
		{"SubscriptionID", rec.SubscriptionID, "ab12"},
		{"CompromisedEntity", a.CompromisedEntity, "vm1"},
		{"Techniques", strings.Join(a.Techniques, ","), "T1059"},
		{"SubTechniques", strings.Join(a.SubTechniques, ","), "T1059.004"},
		{"classification", a.ExtendedProperties["classification"], "truePositive"},
		{"determination", a.ExtendedProperties["determination"], "malware"},
		{"ip entity", strings.Join(a.EntityValues("ip", "Address"), ","), "198.51.100.7"},
		{"AlertURI", a.AlertURI, "https://security.microsoft.com/alerts/dc2517_abc"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	types := []string{}
	for _, e := range a.Entities {
		types = append(types, e.Type)
	}
	if strings.Join(types, ",") != "azure-resource,ip,somethingnew" {
		t.Errorf("entity types %v (the non-object element is skipped, an unknown evidence type kept)", types)
	}
	// Parsed with SkipEntities, the entities decode later to the same thing.
	lazy, _ := Options{SkipEntities: true}.Parse([]byte(raw), 0)
	if lazy.Alert.Entities != nil {
		t.Fatal("entities decoded despite SkipEntities")
	}
	lazy.Alert.DecodeEntities()
	if len(lazy.Alert.Entities) != 3 {
		t.Errorf("lazy entities %d", len(lazy.Alert.Entities))
	}
}

// Shapes that are and are not Graph alerts.
func TestGraphDetection(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want Kind
	}{
		{`{"@odata.type":"#microsoft.graph.security.alert"}`, KindGraphAlert},
		{`{"id":"x","serviceSource":"microsoftDefenderForCloud","providerAlertId":"y"}`, KindGraphAlert},
		{`{"id":"x","serviceSource":"microsoftDefenderForCloud","lastUpdateDateTime":"2026-01-01T00:00:00Z"}`, KindGraphAlert},
		{`{"serviceSource":"microsoftDefenderForCloud"}`, KindUnknown},
		{`{"serviceSource":7,"providerAlertId":"y"}`, KindUnknown},
		{`{"AlertType":"VM_X","SystemAlertId":"1"}`, KindAlert},
	} {
		rec, err := Parse([]byte(tc.raw), 0)
		if err != nil || rec.Kind != tc.want {
			t.Errorf("%s: kind %s (%v), want %s", tc.raw, rec.Kind, err, tc.want)
		}
	}
}
