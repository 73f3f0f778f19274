package alert

import (
	"testing"
	"time"
)

// TestAlertShapeKind holds the kind of an alert to its shape as a whole: a field of an odd
// JSON type, or one missing, must not turn an alert into an unknown record.
func TestAlertShapeKind(t *testing.T) {
	tests := []struct {
		name       string
		raw        string
		id, typ    string
		display    string
		sev        Severity
		product    string
		subscripti string
	}{
		{"null AlertType",
			`{"AlertType":null,"SystemAlertId":"sid-1","AlertDisplayName":"Shell","Severity":"High"}`,
			"sid-1", "", "Shell", SeverityHigh, "", ""},
		{"array AlertType",
			`{"AlertType":["VM_X"],"SystemAlertId":"sid-2","AlertDisplayName":"Shell","Severity":"Low"}`,
			"sid-2", "", "Shell", SeverityLow, "", ""},
		{"object AlertType",
			`{"AlertType":{"v":1},"SystemAlertId":"sid-3","Severity":"Medium"}`,
			"sid-3", "", "", SeverityMedium, "", ""},
		{"numeric SystemAlertId",
			`{"AlertType":"VM_X","SystemAlertId":2518298467986649999,"Severity":"High"}`,
			"2518298467986649999", "VM_X", "", SeverityHigh, "", ""},
		{"numeric ids keep their JSON text",
			`{"AlertType":12,"SystemAlertId":-1.50e3}`,
			"-1.50e3", "12", "", SeverityNone, "", ""},
		{"null SystemAlertId",
			`{"AlertType":"VM_X","SystemAlertId":null,"AlertDisplayName":"Shell"}`,
			"", "VM_X", "Shell", SeverityNone, "", ""},
		{"no AlertType, other alert fields",
			`{"AlertDisplayName":"Shell","Severity":"High","ProductName":"Azure Security Center","VendorName":"Microsoft","AzureResourceId":"/subscriptions/ABC/resourceGroups/rg"}`,
			"", "", "Shell", SeverityHigh, "Azure Security Center", "abc"},
		{"only product, vendor and entities",
			`{"ProductName":"Microsoft Defender for Cloud","VendorName":"Microsoft","Entities":[]}`,
			"", "", "", SeverityNone, "Microsoft Defender for Cloud", ""},
		{"alert type alone",
			`{"AlertType":"X"}`, "", "X", "", SeverityNone, "", ""},
		{"ARM shape with a null type",
			`{"id":"/subscriptions/ABC/resourceGroups/rg/providers/Microsoft.Security/locations/westeurope/alerts/n1","name":"n1","type":null,
			  "properties":{"alertType":null,"systemAlertId":7,"alertDisplayName":"Shell","severity":"High","productName":"Microsoft Defender for Cloud"}}`,
			"7", "", "Shell", SeverityHigh, "Microsoft Defender for Cloud", "abc"},
		{"ARM shape without type, id names the alert",
			`{"id":"/subscriptions/ABC/resourceGroups/rg/providers/Microsoft.Security/locations/westeurope/alerts/n2","name":"n2",
			  "properties":{"alertDisplayName":"Shell"}}`,
			"n2", "", "Shell", SeverityNone, "", "abc"},
		{"ARM shape, numeric id in properties, alert type",
			`{"type":"Microsoft.Security/Locations/alerts","name":"n3","properties":{"systemAlertId":3,"alertType":[1]}}`,
			"3", "", "", SeverityNone, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := mustParse(t, []byte(tc.raw))
			if rec.Kind != KindAlert {
				t.Fatalf("Kind = %s, want alert", rec.Kind)
			}
			a := rec.Alert
			if a == nil {
				t.Fatal("Alert is nil")
			}
			if a.SystemAlertID != tc.id || a.AlertType != tc.typ || a.DisplayName != tc.display ||
				a.Severity != tc.sev || a.ProductName != tc.product || a.SubscriptionID != tc.subscripti {
				t.Errorf("alert = %+v", a)
			}
			if rec.DisplayName != tc.display || rec.Severity != tc.sev {
				t.Errorf("record DisplayName %q Severity %v", rec.DisplayName, rec.Severity)
			}
		})
	}
}

// TestOtherKindsKeepTheirKind checks that an odd field type does not move a record of another
// kind, and that records that merely share a field name with alerts stay what they are.
func TestOtherKindsKeepTheirKind(t *testing.T) {
	const assessID = "/subscriptions/ABC/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1/providers/Microsoft.Security/assessments/k1"
	tests := []struct {
		name string
		raw  string
		want Kind
	}{
		{"assessment with numeric and null fields",
			`{"type":"Microsoft.Security/assessments","id":"` + assessID + `","properties":{"displayName":5,"status":{"code":null,"statusChangeDate":1683811029}}}`,
			KindRecommendation},
		{"assessment whose type is null, by its id",
			`{"type":null,"id":"` + assessID + `","properties":{"displayName":"d"}}`, KindRecommendation},
		{"sub-assessment whose type is a number, by its id",
			`{"type":3,"id":"` + assessID + `/subAssessments/s1","properties":{"displayName":"d"}}`, KindSubAssessment},
		{"secure score control whose type is null, by its id",
			`{"type":null,"id":"/subscriptions/ABC/providers/Microsoft.Security/secureScores/ascScore/secureScoreControls/c1","properties":{"displayName":"c"}}`,
			KindSecureScoreControl},
		{"secure score whose type is an array, by its id",
			`{"type":[],"id":"/subscriptions/ABC/providers/Microsoft.Security/secureScores/ascScore","properties":{"score":{"current":1}}}`,
			KindSecureScore},
		{"compliance whose type is null, by its id",
			`{"type":null,"id":"/subscriptions/ABC/providers/Microsoft.Security/regulatoryComplianceStandards/PCI/regulatoryComplianceControls/1/regulatoryComplianceAssessments/a","properties":{"state":"Passed"}}`,
			KindRegulatoryCompliance},
		{"activity log with a numeric level",
			`{"category":"Security","operationName":"Microsoft.Security/locations/alerts/activate/action","level":4,"properties":{"severity":"High","alertType":null}}`,
			KindActivityLogAlert},
		{"severity alone is no alert", `{"Severity":"High"}`, KindUnknown},
		{"severity and status are no alert", `{"Severity":"High","Status":"Active","Description":"x"}`, KindUnknown},
		{"null alert fields alone are no alert", `{"AlertType":null,"SystemAlertId":null}`, KindUnknown},
		{"ARM resource of another provider", `{"id":"/subscriptions/ABC/providers/Microsoft.Compute/virtualMachines/alerts","properties":{}}`, KindUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := mustParse(t, []byte(tc.raw))
			if rec.Kind != tc.want {
				t.Fatalf("Kind = %s, want %s", rec.Kind, tc.want)
			}
		})
	}
	rec := mustParse(t, []byte(tests[0].raw))
	if rec.DisplayName != "5" || rec.Status != "" || fmtTime(rec.Time) != "2023-05-11T13:17:09Z" {
		t.Errorf("assessment fields: DisplayName %q Status %q Time %s", rec.DisplayName, rec.Status, fmtTime(rec.Time))
	}
}

// The time forms Defender and the Azure APIs are known to write, and a few that only look
// like times.
var timeForms = []struct {
	name string
	json string // the JSON value as written
	want string // RFC 3339 in UTC, "" for unreadable
}{
	{"RFC 3339, 7 digits", `"2023-05-11T13:15:45.0170422Z"`, "2023-05-11T13:15:45.0170422Z"},
	{"RFC 3339, no fraction", `"2023-05-11T13:15:45Z"`, "2023-05-11T13:15:45Z"},
	{"RFC 3339, 1 digit", `"2023-05-11T13:15:45.5Z"`, "2023-05-11T13:15:45.5Z"},
	{"RFC 3339, 9 digits", `"2023-05-11T13:15:45.123456789Z"`, "2023-05-11T13:15:45.123456789Z"},
	{"no zone is UTC", `"2023-05-11T13:15:45.0170422"`, "2023-05-11T13:15:45.0170422Z"},
	{"offset", `"2023-05-11T15:15:45.5+02:00"`, "2023-05-11T13:15:45.5Z"},
	{"negative offset", `"2023-05-11T08:15:45-05:00"`, "2023-05-11T13:15:45Z"},
	{"space for T", `"2023-05-11 13:15:45.017Z"`, "2023-05-11T13:15:45.017Z"},
	{"lower-case t and z", `"2023-05-11t13:15:45.017z"`, "2023-05-11T13:15:45.017Z"},
	{"space, no zone", `"2023-05-11 13:15:45"`, "2023-05-11T13:15:45Z"},
	{"leap second", `"2016-12-31T23:59:60Z"`, "2017-01-01T00:00:00Z"},
	{"epoch seconds", `1683811029`, "2023-05-11T13:17:09Z"},
	{"epoch seconds with fraction", `1683811029.017`, "2023-05-11T13:17:09.017Z"},
	{"epoch milliseconds", `1683811029017`, "2023-05-11T13:17:09.017Z"},
	{"epoch seconds in exponent form", `1.683811029017e9`, "2023-05-11T13:17:09.017Z"},
	{"epoch seconds string", `"1683811029"`, "2023-05-11T13:17:09Z"},
	{"epoch milliseconds string", `"1683811029017"`, "2023-05-11T13:17:09.017Z"},
	{"epoch with spaces", `" 1683811029 "`, "2023-05-11T13:17:09Z"},
	{"padded", `" 2023-05-11T13:15:45Z "`, "2023-05-11T13:15:45Z"},
	{"month 13", `"2023-13-11T13:15:45Z"`, ""},
	{"30 February", `"2023-02-30T13:15:45Z"`, ""},
	{"second 61", `"2023-05-11T13:15:61Z"`, ""},
	{"English date", `"May 11 2023 13:15:45"`, ""},
	{"bad offset", `"2023-05-11T13:15:45+25:00"`, ""},
	{"trailing text", `"2023-05-11T13:15:45Zx"`, ""},
	{"epoch out of range", `1e30`, ""},
	{"boolean", `true`, ""},
	{"array", `["2023-05-11T13:15:45Z"]`, ""},
	{"word", `"yesterday"`, ""},
}

func TestTimeForms(t *testing.T) {
	for _, tc := range timeForms {
		t.Run(tc.name, func(t *testing.T) {
			got, st := readTime([]byte(tc.json))
			if tc.want == "" {
				if st != timeUnreadable {
					t.Errorf("readTime(%s) = %v, %v; want unreadable", tc.json, got, st)
				}
				return
			}
			if st != timeRead || fmtTime(got) != tc.want || got.Location() != time.UTC {
				t.Errorf("readTime(%s) = %v, %v; want %s", tc.json, got, st, tc.want)
			}
		})
	}
	for _, absent := range []string{``, `null`, `""`, `"  "`} {
		if _, st := readTime([]byte(absent)); st != timeAbsent {
			t.Errorf("readTime(%q) = %v, want absent", absent, st)
		}
	}
}

// TestTimeFormsInRecords puts every time form in TimeGenerated of both alert shapes, and in
// the time field of the other kinds, and checks Record.Time and TimeFallback.
func TestTimeFormsInRecords(t *testing.T) {
	const start = "2023-05-10T00:00:00Z"
	for _, tc := range timeForms {
		t.Run(tc.name, func(t *testing.T) {
			want, wantNote := tc.want, ""
			if want == "" {
				want, wantNote = start, "TimeGenerated unreadable, StartTimeUtc used"
			}
			flat := `{"AlertType":"T","SystemAlertId":"S","StartTimeUtc":"` + start + `","TimeGenerated":` + tc.json + `}`
			rec := mustParse(t, []byte(flat))
			if fmtTime(rec.Time) != want || rec.TimeFallback != wantNote {
				t.Errorf("flat: Time %s, TimeFallback %q; want %s, %q", fmtTime(rec.Time), rec.TimeFallback, want, wantNote)
			}
			if tc.want != "" && fmtTime(rec.Alert.TimeGenerated) != tc.want {
				t.Errorf("flat: Alert.TimeGenerated %s", fmtTime(rec.Alert.TimeGenerated))
			}

			if tc.want == "" {
				wantNote = "properties.timeGeneratedUtc unreadable, properties.startTimeUtc used"
			}
			rest := `{"type":"Microsoft.Security/Locations/alerts","properties":{"alertType":"T","startTimeUtc":"` + start + `","timeGeneratedUtc":` + tc.json + `}}`
			rec = mustParse(t, []byte(rest))
			if fmtTime(rec.Time) != want || rec.TimeFallback != wantNote {
				t.Errorf("ARM: Time %s, TimeFallback %q; want %s, %q", fmtTime(rec.Time), rec.TimeFallback, want, wantNote)
			}

			act := `{"category":"Security","operationName":"Microsoft.Security/locations/alerts/activate/action","eventTimestamp":` + tc.json +
				`,"properties":{"startTimeUtc":"` + start + `"}}`
			rec = mustParse(t, []byte(act))
			if tc.want == "" {
				wantNote = "eventTimestamp unreadable, properties.startTimeUtc used"
			}
			if rec.Kind != KindActivityLogAlert || fmtTime(rec.Time) != want || rec.TimeFallback != wantNote {
				t.Errorf("activity log: %s Time %s, TimeFallback %q; want %s, %q", rec.Kind, fmtTime(rec.Time), rec.TimeFallback, want, wantNote)
			}

			assess := `{"type":"Microsoft.Security/assessments","properties":{"status":{"code":"Healthy","statusChangeDate":` + tc.json + `}}}`
			rec = mustParse(t, []byte(assess))
			want, wantNote = tc.want, ""
			if want == "" {
				wantNote = "properties.status.statusChangeDate unreadable, no other time field"
			}
			if fmtTime(rec.Time) != want || rec.TimeFallback != wantNote {
				t.Errorf("assessment: Time %s, TimeFallback %q; want %s, %q", fmtTime(rec.Time), rec.TimeFallback, want, wantNote)
			}
		})
	}
}

func TestTimeFallbackChain(t *testing.T) {
	tests := []struct {
		name, raw, want, note string
	}{
		{"TimeGenerated absent: no note",
			`{"AlertType":"T","StartTimeUtc":"2023-05-10T00:00:00Z"}`, "2023-05-10T00:00:00Z", ""},
		{"TimeGenerated null: no note",
			`{"AlertType":"T","TimeGenerated":null,"StartTimeUtc":"2023-05-10T00:00:00Z"}`, "2023-05-10T00:00:00Z", ""},
		{"TimeGenerated unreadable, TimeGeneratedUtc used",
			`{"AlertType":"T","TimeGenerated":"x","TimeGeneratedUtc":"2023-05-11T00:00:00Z","StartTimeUtc":"2023-05-10T00:00:00Z"}`,
			"2023-05-11T00:00:00Z", "TimeGenerated unreadable, TimeGeneratedUtc used"},
		{"nothing readable",
			`{"AlertType":"T","TimeGenerated":"x","StartTimeUtc":{}}`, "", "TimeGenerated unreadable, no other time field"},
		{"start unreadable, StartTime used",
			`{"AlertType":"T","StartTimeUtc":"x","StartTime":"2023-05-10T00:00:00Z"}`, "2023-05-10T00:00:00Z", "StartTimeUtc unreadable, StartTime used"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := mustParse(t, []byte(tc.raw))
			if fmtTime(rec.Time) != tc.want || rec.TimeFallback != tc.note {
				t.Errorf("Time %s, TimeFallback %q; want %s, %q", fmtTime(rec.Time), rec.TimeFallback, tc.want, tc.note)
			}
		})
	}
}
