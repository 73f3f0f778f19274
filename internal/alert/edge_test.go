package alert

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDetectKind(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want Kind
	}{
		{"flat alert", `{"AlertType":"X","SystemAlertId":"1"}`, KindAlert},
		{"flat alert lower case", `{"alerttype":"X","systemalertid":"1"}`, KindAlert},
		{"alert type alone", `{"AlertType":"X"}`, KindAlert},
		{"numeric alert ids", `{"AlertType":1,"SystemAlertId":2}`, KindAlert},
		{"null alert ids alone", `{"AlertType":null,"SystemAlertId":null}`, KindUnknown},
		{"REST alert", `{"type":"Microsoft.Security/Locations/alerts","properties":{}}`, KindAlert},
		{"REST alert other case", `{"TYPE":"microsoft.security/locations/ALERTS"}`, KindAlert},
		{"assessment by type", `{"type":"Microsoft.Security/assessments"}`, KindRecommendation},
		{"assessment by enrichment", `{"AssessmentEventDataEnrichment":{"Action":"Insert"}}`, KindRecommendation},
		{"sub-assessment by $type", `{"$type":"subAssessmentEvent"}`, KindSubAssessment},
		{"sub-assessment by type", `{"Type":"Microsoft.Security/assessments/subAssessments"}`, KindSubAssessment},
		{"sub-assessment by enrichment", `{"SubAssessmentEventDataEnrichment":{}}`, KindSubAssessment},
		{"secure score", `{"type":"Microsoft.Security/secureScores"}`, KindSecureScore},
		{"secure score control", `{"type":"Microsoft.Security/secureScores/secureScoreControls"}`, KindSecureScoreControl},
		{"compliance export type", `{"type":"Microsoft.Security/regulatoryComplianceStandards/regulatoryComplianceControls/regulatoryComplianceAssessments"}`, KindRegulatoryCompliance},
		{"compliance REST type", `{"type":"Microsoft.Security/regulatoryComplianceAssessment"}`, KindRegulatoryCompliance},
		{"compliance control is not an assessment", `{"type":"Microsoft.Security/regulatoryComplianceStandards/regulatoryComplianceControls"}`, KindUnknown},
		{"activity log, object names", `{"category":{"value":"Security"},"operationName":{"value":"Microsoft.Security/locations/alerts/activate/action"}}`, KindActivityLogAlert},
		{"activity log, resource-log strings", `{"category":"Security","operationName":"MICROSOFT.SECURITY/LOCATIONS/ALERTS/ACTIVATE/ACTION"}`, KindActivityLogAlert},
		{"activity log, Security category", `{"category":"Security","operationName":"Microsoft.Security/locations/alerts/write"}`, KindActivityLogAlert},
		{"activity log, other category", `{"category":"Administrative","operationName":"Microsoft.Compute/virtualMachines/write"}`, KindUnknown},
		{"empty object", `{}`, KindUnknown},
		{"other ARM resource", `{"type":"Microsoft.Compute/virtualMachines","properties":{}}`, KindUnknown},
		{"number", `42`, KindUnknown},
		{"string", `"text"`, KindUnknown},
		{"array", `[{"AlertType":"X","SystemAlertId":"1"}]`, KindUnknown},
		{"null", `null`, KindUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := mustParse(t, []byte(tc.raw))
			if rec.Kind != tc.want {
				t.Errorf("Kind = %s, want %s", rec.Kind, tc.want)
			}
			if string(rec.Raw) != tc.raw {
				t.Errorf("Raw = %s", rec.Raw)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, raw := range []string{"", "  ", `{"a":`, `{"a":1}}`, `{"a":1} {}`, `[1`, `x`, `{"a":"\q"}`} {
		rec, err := Parse([]byte(raw), 7)
		if !errors.Is(err, ErrUndecodable) {
			t.Errorf("Parse(%q) error = %v, want ErrUndecodable", raw, err)
		}
		if rec.Index != 7 || string(rec.Raw) != raw {
			t.Errorf("Parse(%q) lost Raw/Index on error: %+v", raw, rec)
		}
	}
}

func TestWrongTypesIgnored(t *testing.T) {
	raw := `{"AlertType":"T","SystemAlertId":"S",
		"AlertDisplayName":5,"Severity":["High"],"Status":{"a":1},"StartTimeUtc":12,
		"EndTimeUtc":"not a time","TimeGenerated":true,"Description":null,
		"RemediationSteps":{"a":"b"},"Intent":7,"Techniques":[1,"T1",null,{"x":1}],
		"CompromisedEntity":[],"AzureResourceId":{},"ExtendedProperties":["x"],
		"Entities":{"Type":"ip"},"ResourceIdentifiers":"nope","AlertUri":0}`
	rec := mustParse(t, []byte(raw))
	// Numbers where text was expected keep their JSON text (a number is an epoch time);
	// null, arrays, objects and booleans where a time was are ignored.
	start := time.Unix(12, 0).UTC()
	want := &Alert{SystemAlertID: "S", AlertType: "T", DisplayName: "5", AlertURI: "0", StartTime: start, Techniques: []string{"T1"}}
	if rec.Kind != KindAlert || !reflect.DeepEqual(rec.Alert, want) {
		t.Errorf("got %+v, want %+v", rec.Alert, want)
	}
	if rec.ID != "S" || rec.DisplayName != "5" || !rec.Time.Equal(start) || rec.TimeFallback != "TimeGenerated unreadable, StartTimeUtc used" {
		t.Errorf("record = %+v", rec)
	}
	// Entities that are not objects are skipped.
	a := mustParse(t, []byte(`{"AlertType":"T","SystemAlertId":"S","Entities":[1,"x",null,{"Type":"IP","Address":"10.0.0.1"}]}`)).Alert
	if len(a.Entities) != 1 || a.Entities[0].Type != "ip" {
		t.Errorf("Entities = %+v", a.Entities)
	}
}

func TestStringifiedFields(t *testing.T) {
	// The Log Analytics SecurityAlert shape: JSON held in strings, other column names.
	raw := `{"AlertType":"T","SystemAlertId":"S","AlertName":"Name","AlertSeverity":"informational",
		"Status":"new","Tactics":"Persistence, PrivilegeEscalation ,,","Techniques":"[\"T1098\",\"T1078\"]",
		"RemediationSteps":"[\"step one\",\"step two\"]",
		"ExtendedProperties":"{\"PID\":944,\"Account\":\"a\",\"nested\":{ \"k\" : [1, 2] },\"none\":null,\"flag\":true}",
		"Entities":"[{\"$id\":\"1\",\"Type\":\"host\",\"HostName\":\"h1\"},{\"$id\":\"2\",\"Type\":\"process\",\"Host\":{\"$ref\":\"1\"}}]",
		"ResourceIdentifiers":"[{\"Type\":\"LogAnalytics\"},{\"Type\":\"AzureResource\",\"AzureResourceId\":\"/subscriptions/ABC/resourceGroups/rg\"}]",
		"StartTime":"2024-01-02T03:04:05.1234567","AlertLink":"https://x"}`
	rec := mustParse(t, []byte(raw))
	a := rec.Alert
	if a.DisplayName != "Name" || a.Severity != SeverityInformational || a.Status != "Active" || a.AlertURI != "https://x" {
		t.Errorf("alert = %+v", a)
	}
	if !slices.Equal(a.Intent, []string{"Persistence", "PrivilegeEscalation"}) {
		t.Errorf("Intent = %q", a.Intent)
	}
	if !slices.Equal(a.Techniques, []string{"T1098", "T1078"}) || !slices.Equal(a.RemediationSteps, []string{"step one", "step two"}) {
		t.Errorf("Techniques = %q, RemediationSteps = %q", a.Techniques, a.RemediationSteps)
	}
	wantEP := map[string]string{"PID": "944", "Account": "a", "nested": `{"k":[1,2]}`, "none": "", "flag": "true"}
	if !reflect.DeepEqual(a.ExtendedProperties, wantEP) {
		t.Errorf("ExtendedProperties = %q", a.ExtendedProperties)
	}
	if a.ResourceID != "/subscriptions/ABC/resourceGroups/rg" || a.SubscriptionID != "abc" {
		t.Errorf("ResourceID %q SubscriptionID %q", a.ResourceID, a.SubscriptionID)
	}
	if want := time.Date(2024, 1, 2, 3, 4, 5, 123456700, time.UTC); !a.StartTime.Equal(want) || rec.Time != want {
		t.Errorf("StartTime = %v, Record.Time = %v, want %v", a.StartTime, rec.Time, want)
	}
	if got := a.EntityValues("host", "HostName"); !slices.Equal(got, []string{"h1"}) {
		t.Errorf("hosts = %q", got)
	}
	host, _ := a.Entities[1].Fields["Host"].(map[string]any)
	if host["HostName"] != "h1" {
		t.Errorf("process Host = %v, want the resolved host", host)
	}
	// A plain remediation string is one step.
	a = mustParse(t, []byte(`{"AlertType":"T","SystemAlertId":"S","RemediationSteps":"Do this, then that."}`)).Alert
	if !slices.Equal(a.RemediationSteps, []string{"Do this, then that."}) {
		t.Errorf("RemediationSteps = %q", a.RemediationSteps)
	}
}

func entitiesOf(t *testing.T, entities string) []Entity {
	t.Helper()
	return mustParse(t, []byte(`{"AlertType":"T","SystemAlertId":"S","Entities":`+entities+`}`)).Alert.Entities
}

func TestRefResolution(t *testing.T) {
	t.Run("array element and nested refs", func(t *testing.T) {
		es := entitiesOf(t, `[{"$id":"1","Type":"host","HostName":"h"},
			{"$id":"2","Type":"account","Name":"n","Host":{"$ref":"1"}},
			{"$ref":"2"},
			{"$id":"3","Type":"process","Account":{"$ref":"2"},"Hosts":[{"$ref":"1"}]}]`)
		if len(es) != 4 || es[2].Type != "account" || es[2].Fields["Name"] != "n" {
			t.Fatalf("entities = %+v", es)
		}
		acct := es[3].Fields["Account"].(map[string]any)
		host := acct["Host"].(map[string]any)
		hosts := es[3].Fields["Hosts"].([]any)
		if host["HostName"] != "h" || hosts[0].(map[string]any)["HostName"] != "h" {
			t.Errorf("process = %v", es[3].Fields)
		}
	})
	t.Run("missing id kept as written", func(t *testing.T) {
		es := entitiesOf(t, `[{"$id":"1","Type":"process","Host":{"$ref":"9"}},{"$REF":"8"}]`)
		if got := es[0].Fields["Host"]; !reflect.DeepEqual(got, map[string]any{"$ref": "9"}) {
			t.Errorf("Host = %v", got)
		}
		if len(es) != 2 || es[1].Type != "" || !reflect.DeepEqual(es[1].Fields, map[string]any{"$REF": "8"}) {
			t.Errorf("top-level unresolved ref = %+v", es)
		}
	})
	t.Run("self reference", func(t *testing.T) {
		es := entitiesOf(t, `[{"$id":"1","Type":"host","Self":{"$ref":"1"}}]`)
		if got := es[0].Fields["Self"]; !reflect.DeepEqual(got, map[string]any{"$ref": "1"}) {
			t.Errorf("Self = %v", got)
		}
		if _, err := json.Marshal(es); err != nil {
			t.Errorf("entities not encodable: %v", err)
		}
	})
	t.Run("cycle", func(t *testing.T) {
		es := entitiesOf(t, `[{"$id":"1","Type":"a","Next":{"$ref":"2"}},{"$id":"2","Type":"b","Next":{"$ref":"1"}}]`)
		// a -> b (forward reference) -> a would close the cycle: kept as a reference.
		next := es[0].Fields["Next"].(map[string]any)
		if next["Type"] != "b" || !reflect.DeepEqual(next["Next"], map[string]any{"$ref": "1"}) {
			t.Errorf("a.Next = %v", next)
		}
		if _, err := json.Marshal(es); err != nil {
			t.Errorf("entities not encodable: %v", err)
		}
	})
	t.Run("duplicate ids use the nearest preceding one", func(t *testing.T) {
		es := entitiesOf(t, `[{"$id":"5","Type":"host","HostName":"first"},{"$ref":"5"},
			{"$id":"5","Type":"host","HostName":"second"},{"$ref":"5"}]`)
		if es[1].Fields["HostName"] != "first" || es[3].Fields["HostName"] != "second" {
			t.Errorf("entities = %+v", es)
		}
	})
	t.Run("forward reference", func(t *testing.T) {
		es := entitiesOf(t, `[{"$ref":"7"},{"$id":"7","Type":"ip","Address":"10.1.1.1"}]`)
		if es[0].Type != "ip" || es[0].Fields["Address"] != "10.1.1.1" {
			t.Errorf("entities = %+v", es)
		}
	})
	t.Run("a ref with other members is an ordinary object", func(t *testing.T) {
		es := entitiesOf(t, `[{"$id":"1","Type":"host"},{"$ref":"1","Type":"x"}]`)
		if es[1].Type != "x" {
			t.Errorf("entities = %+v", es)
		}
	})
	t.Run("exponential reference chain stays bounded", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(`[{"$id":"0","Type":"n"}`)
		for i := 1; i <= 40; i++ {
			p := i - 1
			b.WriteString(`,{"$id":"` + strconv.Itoa(i) + `","Type":"n","L":{"$ref":"` + strconv.Itoa(p) + `"},"R":{"$ref":"` + strconv.Itoa(p) + `"}}`)
		}
		b.WriteString(`]`)
		es := entitiesOf(t, b.String())
		if len(es) != 41 {
			t.Fatalf("%d entities", len(es))
		}
		if n := countNodes(es[40].Fields); n > 4*expandBudget {
			t.Errorf("last entity expanded to %d nodes", n)
		}
	})
}

func countNodes(v any) int {
	n := 1
	switch x := v.(type) {
	case map[string]any:
		for _, c := range x {
			n += countNodes(c)
		}
	case []any:
		for _, c := range x {
			n += countNodes(c)
		}
	}
	return n
}

func TestDeepEntities(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5000)
	es := entitiesOf(t, `[{"Type":"x","Deep":`+deep+`}]`)
	if len(es) != 1 {
		t.Fatalf("entities = %d", len(es))
	}
	out, err := json.Marshal(es[0].Fields["Deep"])
	if err != nil || string(out) != deep {
		t.Errorf("deep value not kept: %v, %d bytes", err, len(out))
	}
}

func TestEntityValuesOrderAndDistinct(t *testing.T) {
	es := `[{"Type":"ip","Address":"10.0.0.2"},{"Type":"IP","address":"10.0.0.1"},
		{"Type":"network-connection","SourceAddress":{"Type":"ip","Address":"10.0.0.3"},"DestinationAddress":{"Type":"ip","Address":"10.0.0.2"}},
		{"Type":"ip","Address":""},{"Type":"ip","Address":5}]`
	a := mustParse(t, []byte(`{"AlertType":"T","SystemAlertId":"S","Entities":`+es+`}`)).Alert
	if got := a.EntityValues("ip", "Address"); !slices.Equal(got, []string{"10.0.0.2", "10.0.0.1", "5", "10.0.0.3"}) {
		t.Errorf("EntityValues = %q", got)
	}
	var none *Alert
	if none.EntityValues("ip", "Address") != nil {
		t.Error("nil alert has values")
	}
}

func TestSeverity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Severity
		name string
	}{
		{"High", SeverityHigh, "High"}, {"high", SeverityHigh, "High"}, {" MEDIUM ", SeverityMedium, "Medium"},
		{"Low", SeverityLow, "Low"}, {"Informational", SeverityInformational, "Informational"},
		{"information", SeverityInformational, "Informational"}, {"", SeverityNone, ""}, {"Critical", SeverityNone, ""},
	} {
		if got := ParseSeverity(tc.in); got != tc.want || got.String() != tc.name {
			t.Errorf("ParseSeverity(%q) = %v (%q), want %v (%q)", tc.in, got, got.String(), tc.want, tc.name)
		}
	}
	if Severity(99).String() != "" || Severity(-1).String() != "" {
		t.Error("out-of-range severity has a name")
	}
	if !(SeverityInformational < SeverityLow && SeverityLow < SeverityMedium && SeverityMedium < SeverityHigh) {
		t.Error("severities not ordered")
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range Kinds {
		if got, ok := ParseKind(strings.ToUpper(string(k))); !ok || got != k {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, ok)
		}
	}
	if _, ok := ParseKind("alerts"); ok {
		t.Error(`ParseKind("alerts") accepted`)
	}
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"2023-05-11T13:15:45.0170422Z", "2023-05-11T13:15:45.0170422Z"},
		{"2023-05-11T13:15:45Z", "2023-05-11T13:15:45Z"},
		{"2023-05-11T13:15:45.0170422", "2023-05-11T13:15:45.0170422Z"},
		{"2023-05-11T13:15:45", "2023-05-11T13:15:45Z"},
		{"2023-05-11T15:15:45.5+02:00", "2023-05-11T13:15:45.5Z"},
		{" 2023-05-11T13:15:45Z ", "2023-05-11T13:15:45Z"},
		{"May 11 2023 13:15:45", ""},
		{"2023-13-11T13:15:45Z", ""},
		{"", ""},
	} {
		got := parseTime(tc.in)
		if fmtTime(got) != tc.want || (!got.IsZero() && got.Location() != time.UTC) {
			t.Errorf("parseTime(%q) = %v, want %s", tc.in, got, tc.want)
		}
	}
}

func TestSubscriptionFromID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/subscriptions/ABC-1/resourceGroups/rg", "abc-1"},
		{"/SUBSCRIPTIONS/abc", "abc"},
		{"subscriptions/abc/x", "abc"},
		{"/providers/Microsoft.Security/x", ""},
		{"/notsubscriptions/abc", ""},
		{"", ""},
	} {
		if got := subscriptionFromID(tc.in); got != tc.want {
			t.Errorf("subscriptionFromID(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEscapedKeysAndValues(t *testing.T) {
	raw := `{"Alert\u0054ype":"T","SystemAlertId":"S\u00e9","AlertDisplayName":"line\nbreak \"quoted\"","Severity":"H\u0069gh"}`
	rec := mustParse(t, []byte(raw))
	if rec.Kind != KindAlert || rec.ID != "S\u00e9" || rec.DisplayName != "line\nbreak \"quoted\"" || rec.Severity != SeverityHigh {
		t.Errorf("record = %+v", rec)
	}
	// Invalid UTF-8 is replaced as encoding/json does.
	rec = mustParse(t, []byte("{\"AlertType\":\"T\",\"SystemAlertId\":\"a\xffb\"}"))
	if rec.ID != "a\ufffdb" {
		t.Errorf("ID = %q", rec.ID)
	}
}

func TestSkipEntities(t *testing.T) {
	for _, file := range []string{"elastic_eventhub_alert.json", "restapi_alert.json", "mdc_readme_alert.json", "docs_alerts-schemas_activitylog_alert.json"} {
		t.Run(file, func(t *testing.T) {
			raw := readTestdata(t, file)
			full := mustParse(t, raw)
			lite, err := Options{SkipEntities: true}.Parse(raw, 0)
			if err != nil {
				t.Fatal(err)
			}
			if lite.Alert.Entities != nil {
				t.Errorf("entities decoded despite SkipEntities")
			}
			if lite.Alert.NestedEntities != nil {
				t.Errorf("nested entities decoded despite SkipEntities")
			}
			lite.Alert.DecodeEntities()
			if !reflect.DeepEqual(lite, full) {
				t.Errorf("SkipEntities then DecodeEntities differs from Parse")
			}
		})
	}
	recs, err := Options{SkipEntities: true}.ParseMessage([]byte(`[{"AlertType":"T","SystemAlertId":"S","Entities":"[{\"Type\":\"ip\"}]"}]`))
	if err != nil || len(recs) != 1 || string(recs[0].Alert.EntitiesJSON) != `[{"Type":"ip"}]` || recs[0].Alert.Entities != nil {
		t.Errorf("ParseMessage with SkipEntities: %v %+v", err, recs)
	}
	for _, bad := range []string{"", "{}", "[1", "[1] x", `"[]"`} {
		a := &Alert{EntitiesJSON: []byte(bad), Entities: []Entity{{Type: "stale"}}}
		if a.DecodeEntities(); a.Entities != nil || a.NestedEntities != nil {
			t.Errorf("DecodeEntities of %q = %v, %v", bad, a.Entities, a.NestedEntities)
		}
	}
}

// A reference into an object nested inside the one being resolved must not close a loop.
func TestRefIntoContainer(t *testing.T) {
	for _, ents := range []string{
		`[{"$ref":"2"},{"$id":"1","Type":"a","Child":{"$id":"2","Type":"b","Parent":{"$ref":"1"}}}]`,
		`[{"$id":"1","Type":"a","Child":{"$id":"2","Type":"b","Parent":{"$ref":"1"}}},{"$ref":"2"}]`,
		`[{"$ref":"3"},{"$id":"1","Type":"a","L":[{"$id":"2","Type":"b","M":{"$id":"3","Type":"c","Up":{"$ref":"1"}}}]}]`,
	} {
		es := entitiesOf(t, ents)
		if _, err := json.Marshal(es); err != nil {
			t.Errorf("%s: entities not encodable: %v", ents, err)
		}
		if len(es) != 2 {
			t.Errorf("%s: %d entities", ents, len(es))
		}
	}
}
