package alerttest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/samples"
)

// ReadSample returns one of the shared public samples (internal/dev/samples).
func ReadSample(t testing.TB, name string) []byte {
	t.Helper()
	return samples.Read(t, name)
}

// ParsedMatchGolden parses each shared sample named in goldens with the real parser, renders
// it with format and compares the bytes with the golden file it maps to, in the calling
// package's testdata/. The goldens are written from hand-built records; a match means they
// describe what production sends.
func ParsedMatchGolden(t *testing.T, goldens map[string]string, format func(testing.TB, *alert.Record) []byte) {
	t.Helper()
	for sample, golden := range goldens {
		t.Run(sample, func(t *testing.T) {
			rec, err := alert.Parse(ReadSample(t, sample), 0)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", golden))
			if err != nil {
				t.Fatal(err)
			}
			if got := format(t, &rec); !bytes.Equal(got, want) {
				t.Errorf("parsed sample differs from %s\n got: %q\nwant: %q", golden, got, want)
			}
		})
	}
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// sampleEntities decodes the sample's Entities array into the model's shape.
func sampleEntities(t testing.TB, raw []byte) []alert.Entity {
	var doc struct{ Entities []map[string]any }
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var out []alert.Entity
	for _, f := range doc.Entities {
		typ, _ := f["Type"].(string)
		out = append(out, alert.Entity{Type: strings.ToLower(typ), Fields: f})
	}
	return out
}

// ElasticAlert is the Elastic integration's continuous-export alert (testdata/elastic_eventhub_alert.json).
func ElasticAlert(t testing.TB) *alert.Record {
	raw := ReadSample(t, "elastic_eventhub_alert.json")
	a := &alert.Alert{
		SystemAlertID:     "2517184898549829577_cdcf9f94-ec53-47a6-ab87-76130f87218d",
		AlertType:         "ARM_AnomalousServiceOperation.CredentialAccess",
		DisplayName:       "[SAMPLE ALERT] Login from a suspicious IP",
		Severity:          alert.SeverityMedium,
		Status:            "Active",
		StartTime:         parseTime("2023-05-11T13:15:45.0170422Z"),
		EndTime:           parseTime("2023-05-11T13:15:45.0170422Z"),
		TimeGenerated:     parseTime("2023-05-11T13:17:09.0170422Z"),
		Description:       "THIS IS A SAMPLE ALERT: Your resource has been accessed successfully from an IP address that Microsoft Threat Intelligence has associated with suspicious activity.",
		RemediationSteps:  []string{"Go to the firewall settings in order to lock down the firewall as tightly as possible."},
		Intent:            []string{"PreAttack"},
		CompromisedEntity: "Sample-VM",
		ResourceID:        "/SUBSCRIPTIONS/12cabcb4-86e8-404f-a3d2-1dc9982f45ca/RESOURCEGROUPS/Sample-RG/providers/Microsoft.Compute/virtualMachines/Sample-VM",
		SubscriptionID:    "12cabcb4-86e8-404f-a3d2-1dc9982f45ca",
		AlertURI:          "https://portal.azure.com/#blade/Microsoft_Azure_Security_AzureDefenderForData/AlertBlade/alertId/2517184898549829577_cdcf9f94-ec53-47a6-ab87-76130f87218d/subscriptionId/12cabcb4-86e8-404f-a3d2-1dc9982f45ca/resourceGroup/Sample-RG/referencedFrom/alertDeepLink/location/centralus",
		VendorName:        "Microsoft",
		ProductName:       "Microsoft Defender for Cloud",
		Entities:          sampleEntities(t, raw),
	}
	return &alert.Record{
		Kind: alert.KindAlert, Raw: raw, ID: a.SystemAlertID, DisplayName: a.DisplayName,
		Severity: a.Severity, Status: a.Status, Time: a.TimeGenerated, SubscriptionID: a.SubscriptionID,
		ResourceID: a.ResourceID, Description: a.Description, Alert: a,
	}
}

// MDCAlert is Microsoft's README sample: not strict JSON (unquoted keys, a trailing comma),
// with curly quotes in the description.
func MDCAlert(t testing.TB) *alert.Record {
	a := &alert.Alert{
		SystemAlertID:     "2342409243234234_F2BFED55-5997-4FEA-95BD-BB7C6DDCD061",
		AlertType:         "SUSPECT_SVCHOST",
		DisplayName:       "Suspicious process detected",
		Severity:          alert.SeverityHigh,
		Status:            "Active",
		StartTime:         parseTime("2016-12-20T13:38:00.000Z"),
		EndTime:           parseTime("2019-12-20T13:40:01.733Z"),
		TimeGenerated:     parseTime("2016-12-20T13:38:03.000Z"),
		Description:       "Suspicious process named ‘SVCHOST.EXE’ was running from path: %{Process Path}",
		RemediationSteps:  []string{"contact your security information team"},
		Intent:            []string{"Execution"},
		CompromisedEntity: "WebSrv1",
		ResourceID:        "/subscriptions/86057C9F-3CDD-484E-83B1-7BF1C17A9FF8/resourceGroups/backend-srv/providers/Microsoft.Compute/WebSrv1",
		SubscriptionID:    "86057C9F-3CDD-484E-83B1-7BF1C17A9FF8",
		VendorName:        "Microsoft",
		ProductName:       "Azure Security Center",
		ExtendedProperties: map[string]string{
			"Process Path": `c:\temp\svchost.exe`, "Account": `Contoso\administrator`, "PID": "944", "ActionTaken": "Detected",
		},
	}
	return &alert.Record{
		Kind: alert.KindAlert, Raw: ReadSample(t, "mdc_repo_readme_eventhub_alert_sample.jsonc"),
		ID: a.SystemAlertID, DisplayName: a.DisplayName, Severity: a.Severity, Status: a.Status,
		Time: a.TimeGenerated, SubscriptionID: a.SubscriptionID, ResourceID: a.ResourceID,
		Description: a.Description, Alert: a,
	}
}

// Assessment is the Elastic integration's recommendation (testdata/elastic_eventhub_assessment.json).
func Assessment(t testing.TB) *alert.Record {
	return &alert.Record{
		Kind:           alert.KindRecommendation,
		Raw:            ReadSample(t, "elastic_eventhub_assessment.json"),
		ID:             "/subscriptions/12cabcb4-86e8-404f-a3d2-1dc9982f45ca/resourcegroups/mbranca-esf/providers/microsoft.web/sites/mbranca-esf/providers/Microsoft.Security/assessments/7b3d4796-9400-2904-692b-4a5ede7f0a1e",
		DisplayName:    "CORS should not allow every resource to access Function Apps",
		Severity:       alert.SeverityLow,
		Status:         "Healthy",
		Time:           parseTime("2023-05-09T13:19:49.3381028Z"),
		SubscriptionID: "12cabcb4-86e8-404f-a3d2-1dc9982f45ca",
		ResourceID:     "/subscriptions/12cabcb4-86e8-404f-a3d2-1dc9982f45ca/resourcegroups/mbranca-esf/providers/microsoft.web/sites/mbranca-esf",
		Description:    "Cross-Origin Resource Sharing (CORS) should not allow all domains to access your Function app. Allow only required domains to interact with your Function app.",
	}
}

// ScoreControl is the Elastic integration's secure score control (testdata/elastic_eventhub_securescorecontrol.json).
func ScoreControl(t testing.TB) *alert.Record {
	return &alert.Record{
		Kind:           alert.KindSecureScoreControl,
		Raw:            ReadSample(t, "elastic_eventhub_securescorecontrol.json"),
		ID:             "/subscriptions/12cabcb4-86e8-404f-a3d2-1dc9982f45ca/providers/Microsoft.Security/secureScores/ascScore/secureScoreControls/61702b76-1fab-41f2-bcbc-50b7870dcf38",
		DisplayName:    "Apply system updates",
		SubscriptionID: "12cabcb4-86e8-404f-a3d2-1dc9982f45ca",
	}
}

// HostileText is what a compromised host can put in a command line or file name: every
// character that ends a field, a value, a header or a message, a forged syslog header,
// invalid UTF-8 and a C1 control.
const HostileText = "evil\"] \\ = | \\\" \\] end\nline2\r\n<13>1 2024-01-01T00:00:00Z forged app - - - injected\x00\tx\xff\xfe\xc2\x85y ‘é’ "

// HostileFieldsAlert puts HostileText into every field a syslog or CEF formatter writes.
func HostileFieldsAlert() *alert.Record {
	a := &alert.Alert{
		SystemAlertID:      "id|" + HostileText,
		AlertType:          "Type|With\\Pipes=" + HostileText,
		DisplayName:        "Name " + HostileText,
		Severity:           alert.SeverityHigh,
		Status:             "Active" + HostileText,
		TimeGenerated:      parseTime("2024-06-03T12:00:00.123456789Z"),
		StartTime:          parseTime("2024-06-03T11:59:00.999Z"),
		EndTime:            parseTime("2024-06-03T12:00:00.5Z"),
		Description:        "Command line: " + HostileText,
		Intent:             []string{"Execution", HostileText},
		Techniques:         []string{"T1059", "T1059=x"},
		CompromisedEntity:  "host " + HostileText,
		ResourceID:         "/subscriptions/s/" + HostileText,
		SubscriptionID:     "sub" + HostileText,
		AlertURI:           "https://portal.azure.com/#x?a=b&c=" + HostileText,
		ExtendedProperties: map[string]string{"ActionTaken": "Blocked " + HostileText},
		Entities: []alert.Entity{
			{Type: "ip", Fields: map[string]any{"Address": "2001:db8::1"}},
			{Type: "host", Fields: map[string]any{"HostName": "h" + HostileText}},
			{Type: "account", Fields: map[string]any{"name": "u" + HostileText}},
			{Type: "file", Fields: map[string]any{"Name": "f" + HostileText}},
			{Type: "url", Fields: map[string]any{"Url": "http://x/?q=" + HostileText}},
		},
	}
	raw := []byte(`{"AlertDisplayName":"Name evil\"] \\ = | end\nline2\r\n<13>1 forged","Bad":"` + "\xff\xfe" + `"}`)
	return &alert.Record{
		Kind: alert.KindAlert, Raw: raw, ID: a.SystemAlertID, DisplayName: a.DisplayName,
		Severity: a.Severity, Status: a.Status, Time: a.TimeGenerated, SubscriptionID: a.SubscriptionID,
		ResourceID: a.ResourceID, Description: a.Description, Alert: a,
	}
}
