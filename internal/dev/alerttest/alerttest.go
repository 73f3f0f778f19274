// Package alerttest builds alert.Record values by hand from sample payloads, the way the
// parser documents its output, so that formatter tests fix what each field looks like on the
// wire without depending on the parser. It also holds the odd records (OddAlerts, TimeForms)
// that every formatter's tests read through the real parser, with what each must show.
package alerttest

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	if s == "" {
		return time.Time{}
	}
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return tm
}

// ExportAlert builds a record from the flat, PascalCase continuous-export alert in the file path.
func ExportAlert(t testing.TB, path string) *alert.Record {
	t.Helper()
	return ExportAlertJSON(t, readFile(t, path))
}

// ExportAlertJSON builds a record from a flat, PascalCase continuous-export alert.
func ExportAlertJSON(t testing.TB, raw []byte) *alert.Record {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	s := func(k string) string { v, _ := m[k].(string); return v }
	sev := map[string]alert.Severity{"Informational": alert.SeverityInformational, "Low": alert.SeverityLow, "Medium": alert.SeverityMedium, "High": alert.SeverityHigh}[s("Severity")]
	status := s("Status")
	if status == "New" {
		status = "Active"
	}
	a := &alert.Alert{
		SystemAlertID: s("SystemAlertId"), AlertType: s("AlertType"), DisplayName: s("AlertDisplayName"),
		Severity: sev, Status: status, Description: s("Description"),
		StartTime: mustTime(t, s("StartTimeUtc")), EndTime: mustTime(t, s("EndTimeUtc")), TimeGenerated: mustTime(t, s("TimeGenerated")),
		CompromisedEntity: s("CompromisedEntity"), ResourceID: s("AzureResourceId"), AlertURI: s("AlertUri"),
		VendorName: s("VendorName"), ProductName: s("ProductName"), ProductComponent: s("ProductComponent"),
		ExtendedProperties: map[string]string{},
	}
	for _, p := range strings.Split(s("Intent"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			a.Intent = append(a.Intent, p)
		}
	}
	for k, v := range m["ExtendedProperties"].(map[string]any) {
		a.ExtendedProperties[k], _ = v.(string)
	}
	if parts := strings.Split(a.ResourceID, "/"); len(parts) > 2 {
		a.SubscriptionID = strings.ToLower(parts[2])
	}
	ids := map[string]map[string]any{}
	var resolve func(v any) any
	resolve = func(v any) any {
		switch t := v.(type) {
		case map[string]any:
			if ref, ok := t["$ref"].(string); ok && len(t) == 1 {
				return ids[ref]
			}
			for k, x := range t {
				t[k] = resolve(x)
			}
			if id, ok := t["$id"].(string); ok {
				ids[id] = t
			}
		case []any:
			for i := range t {
				t[i] = resolve(t[i])
			}
		}
		return v
	}
	ents, _ := m["Entities"].([]any)
	for _, e := range ents {
		fm, _ := resolve(e).(map[string]any)
		if fm == nil {
			continue
		}
		typ, _ := fm["Type"].(string)
		a.Entities = append(a.Entities, alert.Entity{Type: strings.ToLower(typ), Fields: fm})
	}
	return &alert.Record{
		Kind: alert.KindAlert, Raw: raw, ID: a.SystemAlertID, DisplayName: a.DisplayName,
		Severity: sev, Status: status, Time: a.TimeGenerated, SubscriptionID: a.SubscriptionID,
		ResourceID: a.ResourceID, Description: a.Description, Alert: a,
	}
}

// ExportRecommendation builds a record from the continuous-export assessment in the file path.
func ExportRecommendation(t testing.TB, path string) *alert.Record {
	t.Helper()
	return ExportRecommendationJSON(t, readFile(t, path))
}

// ExportRecommendationJSON builds a record from a continuous-export assessment.
func ExportRecommendationJSON(t testing.TB, raw []byte) *alert.Record {
	t.Helper()
	var m struct {
		ID         string `json:"id"`
		Properties struct {
			ResourceDetails struct{ ID string } `json:"resourceDetails"`
			DisplayName     string              `json:"displayName"`
			Status          struct {
				Code             string `json:"code"`
				StatusChangeDate string `json:"statusChangeDate"`
			} `json:"status"`
			Metadata struct {
				Description string `json:"description"`
				Severity    string `json:"severity"`
			} `json:"metadata"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	p := m.Properties
	return &alert.Record{
		Kind: alert.KindRecommendation, Raw: raw, ID: m.ID, DisplayName: p.DisplayName,
		Severity: map[string]alert.Severity{"Low": alert.SeverityLow, "Medium": alert.SeverityMedium, "High": alert.SeverityHigh}[p.Metadata.Severity],
		Status:   p.Status.Code, Time: mustTime(t, p.Status.StatusChangeDate),
		SubscriptionID: strings.ToLower(strings.Split(m.ID, "/")[2]), ResourceID: p.ResourceDetails.ID,
		Description: p.Metadata.Description,
	}
}

// HostileAlert is an alert whose attacker-controlled fields try every trick against a
// pipe-delimited or line-based receiver.
func HostileAlert() *alert.Record {
	raw := []byte("{\"AlertType\":\"VM_Hostile|Type\",\"CommandLine\":\"a|b\\nc\",\"Name\":\"x\xffy\"}")
	a := &alert.Alert{
		SystemAlertID: "id|1", AlertType: "VM_Hostile|Type", DisplayName: "Evil\r\n|beatname=forged|",
		Severity: alert.SeverityHigh, Status: "Active", Description: "line1\nline2\ttab=eq\x00nul\x7fdel \xff bad",
		Intent: []string{"Execution", "Persistence"}, Techniques: []string{"T1059", "T1053"},
		CompromisedEntity: "host|x", TimeGenerated: time.Date(2024, 2, 29, 23, 59, 59, 999_999_999, time.UTC),
		Entities: []alert.Entity{
			{Type: "ip", Fields: map[string]any{"Address": "10.0.0.1|forged"}},
			{Type: "account", Fields: map[string]any{"Name": "root\n", "NTDomain": "CORP"}},
			{Type: "account", Fields: map[string]any{"Name": "svc", "UPNSuffix": "corp.example"}},
			{Type: "process", Fields: map[string]any{"ProcessId": "0x10", "CommandLine": "sh -c 'echo a|nc 1.2.3.4 80'\r\nnext",
				"ImageFile": map[string]any{"Name": "sh"}, "ParentProcess": map[string]any{"ImageFile": map[string]any{"Name": "bash"}}}},
			{Type: "file", Fields: map[string]any{"Name": "a=b|c.txt", "FileHashes": []any{map[string]any{"Algorithm": "SHA256", "Value": "abc"}}}},
			{Type: "url", Fields: map[string]any{"Url": "http://evil.example/?q=1|2"}},
			{Type: "network-connection", Fields: map[string]any{
				"SourceAddress": map[string]any{"Address": "192.0.2.7"}, "DestinationAddress": map[string]any{"Address": "198.51.100.9"},
				"SourcePort": 4444.0, "DestinationPort": "22", "Protocol": "Tcp"}},
		},
	}
	return &alert.Record{
		Kind: alert.KindAlert, Raw: raw, ID: a.SystemAlertID, DisplayName: a.DisplayName, Severity: a.Severity,
		Status: a.Status, Time: a.TimeGenerated, SubscriptionID: "sub|1", Description: a.Description,
		ResourceID: "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm|1", Alert: a,
	}
}
