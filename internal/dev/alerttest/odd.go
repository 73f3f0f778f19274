package alerttest

import (
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
)

// OddAlert is an alert written with a field of an odd JSON type or a field missing, and what
// any format must still show of it once the real parser has read it. Formatter tests run each
// through alert.Parse and their own strict reader of the output.
type OddAlert struct {
	Name string
	Raw  string
	// What the rendering carries: the alert id, the alert type (empty: the format's fallback,
	// such as the kind, takes its place), the display name, the severity, the time and the
	// subscription.
	ID, Type, DisplayName string
	Severity              alert.Severity
	Time                  time.Time
	Subscription          string
}

const oddSubscription = "00000000-0000-0000-0000-000000000001"

// oddGenerated is the TimeGenerated every odd alert carries (StartTimeUtc is an hour earlier).
var oddGenerated = time.Date(2024, 6, 3, 12, 0, 0, 123_000_000, time.UTC)

// OddAlerts returns alerts that are alerts by their shape, in both export shapes, each with
// one oddity the parser once turned into an unknown record.
func OddAlerts() []OddAlert {
	const times = `"StartTimeUtc":"2024-06-03T11:00:00Z","TimeGenerated":"2024-06-03T12:00:00.123Z"`
	const armTimes = `"startTimeUtc":"2024-06-03T11:00:00Z","timeGeneratedUtc":"2024-06-03T12:00:00.123Z"`
	return []OddAlert{
		{Name: "null AlertType",
			Raw: `{"AlertType":null,"SystemAlertId":"sid-null-type","AlertDisplayName":"Odd shell","Severity":"High",` + times + `}`,
			ID:  "sid-null-type", DisplayName: "Odd shell", Severity: alert.SeverityHigh, Time: oddGenerated},
		{Name: "array AlertType",
			Raw: `{"AlertType":["VM_Odd"],"SystemAlertId":"sid-array-type","AlertDisplayName":"Odd shell","Severity":"Medium",` + times + `}`,
			ID:  "sid-array-type", DisplayName: "Odd shell", Severity: alert.SeverityMedium, Time: oddGenerated},
		{Name: "numeric SystemAlertId",
			Raw: `{"AlertType":"VM_Odd","SystemAlertId":2518298467986649999,"AlertDisplayName":"Odd shell","Severity":"Low",` + times + `}`,
			ID:  "2518298467986649999", Type: "VM_Odd", DisplayName: "Odd shell", Severity: alert.SeverityLow, Time: oddGenerated},
		{Name: "no AlertType, other alert fields",
			Raw: `{"SystemAlertId":"sid-no-type","AlertDisplayName":"Odd shell","Severity":"High","ProductName":"Microsoft Defender for Cloud","VendorName":"Microsoft",` + times + `}`,
			ID:  "sid-no-type", DisplayName: "Odd shell", Severity: alert.SeverityHigh, Time: oddGenerated},
		{Name: "no ids at all, product and vendor",
			Raw:         `{"AlertDisplayName":"Odd shell","Severity":"Informational","ProductName":"Microsoft Defender for Cloud","VendorName":"Microsoft",` + times + `}`,
			DisplayName: "Odd shell", Severity: alert.SeverityInformational, Time: oddGenerated},
		{Name: "numeric TimeGenerated (epoch ms)",
			Raw: `{"AlertType":"VM_Odd","SystemAlertId":"sid-epoch","Severity":"High","StartTimeUtc":"2024-06-03T11:00:00Z","TimeGenerated":1717416000123}`,
			ID:  "sid-epoch", Type: "VM_Odd", Severity: alert.SeverityHigh, Time: oddGenerated},
		{Name: "ARM shape, null type, numeric systemAlertId",
			Raw: `{"id":"/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Security/locations/westeurope/alerts/n1","name":"n1","type":null,` +
				`"properties":{"alertType":null,"systemAlertId":42,"alertDisplayName":"Odd shell","severity":"High",` + armTimes + `}}`,
			ID: "42", DisplayName: "Odd shell", Severity: alert.SeverityHigh, Time: oddGenerated, Subscription: oddSubscription},
		{Name: "ARM shape, array alertType",
			Raw: `{"id":"/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Security/locations/westeurope/alerts/n2","name":"n2","type":"Microsoft.Security/Locations/alerts",` +
				`"properties":{"alertType":["VM_Odd"],"alertDisplayName":"Odd shell","severity":"Medium",` + armTimes + `}}`,
			ID: "n2", DisplayName: "Odd shell", Severity: alert.SeverityMedium, Time: oddGenerated, Subscription: oddSubscription},
	}
}

// ParseOdd parses an odd alert with the real parser and fails unless it is an alert.
func ParseOdd(t testing.TB, o OddAlert) *alert.Record {
	t.Helper()
	rec, err := alert.Parse([]byte(o.Raw), 0)
	if err != nil {
		t.Fatalf("%s: %v", o.Name, err)
	}
	if rec.Kind != alert.KindAlert || rec.Alert == nil {
		t.Fatalf("%s: parsed as %s, want alert", o.Name, rec.Kind)
	}
	return &rec
}

// TimeForm is one way a time is written, as the JSON value of TimeGenerated.
type TimeForm struct {
	Name, JSON string
	// Want is the instant the form stands for; the zero time for a form that is no time,
	// where the record falls back to its StartTimeUtc (TimeFormStart).
	Want time.Time
}

// TimeFormStart is the StartTimeUtc of every TimeFormAlert, what an unreadable TimeGenerated
// falls back to.
var TimeFormStart = time.Date(2023, 5, 10, 0, 0, 0, 0, time.UTC)

// TimeForms returns the time forms Defender and the Azure APIs are known to write, and two
// that are no time.
func TimeForms() []TimeForm {
	at := func(ns int) time.Time { return time.Date(2023, 5, 11, 13, 17, 9, ns, time.UTC) }
	return []TimeForm{
		{"RFC 3339, 7 fraction digits", `"2023-05-11T13:17:09.0170422Z"`, at(17_042_200)},
		{"RFC 3339, no fraction", `"2023-05-11T13:17:09Z"`, at(0)},
		{"RFC 3339, 9 fraction digits", `"2023-05-11T13:17:09.123456789Z"`, at(123_456_789)},
		{"no zone", `"2023-05-11T13:17:09.017"`, at(17_000_000)},
		{"offset", `"2023-05-11T15:17:09.5+02:00"`, at(500_000_000)},
		{"space for T", `"2023-05-11 13:17:09.017Z"`, at(17_000_000)},
		{"lower-case t and z", `"2023-05-11t13:17:09.017z"`, at(17_000_000)},
		{"leap second", `"2016-12-31T23:59:60Z"`, time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"epoch seconds", `1683811029`, at(0)},
		{"epoch seconds with fraction", `1683811029.017`, at(17_000_000)},
		{"epoch milliseconds", `1683811029017`, at(17_000_000)},
		{"epoch seconds string", `"1683811029"`, at(0)},
		{"epoch milliseconds string", `"1683811029017"`, at(17_000_000)},
		{"not a time", `"yesterday"`, time.Time{}},
		{"boolean", `true`, time.Time{}},
	}
}

// TimeFormAlert is a flat alert whose TimeGenerated is written as f.
func TimeFormAlert(f TimeForm) []byte {
	return []byte(`{"AlertType":"VM_Time","SystemAlertId":"sid-time","AlertDisplayName":"Time form","Severity":"High",` +
		`"StartTimeUtc":"2023-05-10T00:00:00Z","TimeGenerated":` + f.JSON + `}`)
}

// ParseTimeForm parses the TimeFormAlert of f with the real parser.
func ParseTimeForm(t testing.TB, f TimeForm) *alert.Record {
	t.Helper()
	rec, err := alert.Parse(TimeFormAlert(f), 0)
	if err != nil {
		t.Fatalf("%s: %v", f.Name, err)
	}
	return &rec
}

// Expected is the instant a TimeFormAlert's record must carry.
func (f TimeForm) Expected() time.Time {
	if f.Want.IsZero() {
		return TimeFormStart
	}
	return f.Want
}
