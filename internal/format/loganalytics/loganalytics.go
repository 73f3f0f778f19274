// Package loganalytics renders a Defender for Cloud record as one row of a Log Analytics custom
// table, for the Azure Monitor Logs Ingestion API: a flat JSON object with a fixed, documented
// column set (Columns), the record's own time as TimeGenerated, and the original record and
// the alert's entities as dynamic columns. A table of such rows answers "what is the latest
// state of every alert" with `summarize arg_max(TimeGenerated, *) by SystemAlertId`.
//
// It is pure: no clock, no I/O. Output is deterministic (columns in alphabetical order, empty
// values left out so that they read as null), always valid UTF-8 JSON without a raw line
// break, and every attacker-controlled string stays inside its column.
package loganalytics

import (
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/format"
	"github.com/defender-siem/forwarder/internal/jsonx"
)

// Type is a Log Analytics column type, as written in a table schema and a DCR stream
// declaration.
type Type string

// The column types the rows use.
const (
	TypeString   Type = "string"
	TypeDateTime Type = "datetime"
	TypeDynamic  Type = "dynamic"
	TypeLong     Type = "long"
)

// Column is one column of the table.
type Column struct {
	Name string
	Type Type
	// Kinds are the record kinds that fill the column; nil means every kind (when the record
	// carries the value).
	Kinds []alert.Kind
	// Doc says what the column holds, for the README and the DCR file.
	Doc string
}

var alertKinds = []alert.Kind{alert.KindAlert, alert.KindActivityLogAlert, alert.KindGraphAlert}

// Columns is the table's column set in output order. The DCR file shipped with the Log
// Analytics sink declares exactly these (a test holds the two together).
var Columns = []Column{
	{"AlertType", TypeString, alertKinds, "the alert type, e.g. VM_SuspiciousCommandLine"},
	{"AlertUri", TypeString, alertKinds, "link to the alert in the Azure portal"},
	{"CompromisedEntity", TypeString, alertKinds, "the resource the alert names as compromised"},
	{"Description", TypeString, nil, "the long description"},
	{"DisplayName", TypeString, nil, "alert display name, recommendation or control name"},
	{"EndTime", TypeDateTime, alertKinds, "end of the alert's activity (UTC)"},
	{"Entities", TypeDynamic, alertKinds, "the alert's entities as Defender wrote them ($id/$ref kept)"},
	{"ExtendedProperties", TypeDynamic, alertKinds, "the alert's extended properties, every value a string"},
	{"Kind", TypeString, nil, "alert, activitylogalert, graphalert, recommendation, subassessment, securescore, securescorecontrol, regulatorycompliance or unknown"},
	{"ProductName", TypeString, alertKinds, "the product that raised the alert"},
	{"Record", TypeDynamic, nil, "the original record, whole (a string when it was not JSON)"},
	{"RecordId", TypeString, nil, "SystemAlertId for alerts, the ARM id otherwise"},
	{"RecordSize", TypeLong, nil, "bytes of the original record; above 65536 the service truncates Record"},
	{"ResourceId", TypeString, nil, "the Azure resource the record is about"},
	{"Severity", TypeString, nil, "Informational, Low, Medium or High"},
	{"StartTime", TypeDateTime, alertKinds, "start of the alert's activity (UTC)"},
	{"Status", TypeString, nil, "alerts: Active, InProgress, Resolved, Dismissed; assessments: Healthy, Unhealthy, NotApplicable; compliance: Passed, Failed, Skipped"},
	{"SubscriptionId", TypeString, nil, "the Azure subscription"},
	{"SystemAlertId", TypeString, alertKinds, "the alert's id, stable across its status changes"},
	{"Tactics", TypeDynamic, alertKinds, "MITRE ATT&CK tactics (the alert's Intent), an array"},
	{"Techniques", TypeDynamic, alertKinds, "MITRE ATT&CK techniques, an array"},
	{"TimeGenerated", TypeDateTime, nil, "the record's own time: the alert's TimeGenerated (else StartTime), an assessment's status change; when the record has none, the time of ingestion"},
}

// Formatter renders rows. It is safe for concurrent use.
type Formatter struct{}

var _ format.Formatter = Formatter{}

// New returns a Formatter.
func New() Formatter { return Formatter{} }

// timeLayout is what Log Analytics parses as a datetime: UTC, milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z"

// Format appends rec's row to dst: one JSON object, columns in Columns order.
func (Formatter) Format(dst []byte, rec *alert.Record) ([]byte, error) {
	if rec == nil {
		return dst, errors.New("loganalytics: nil record")
	}
	w := rowWriter{dst: append(dst, '{')}
	a := rec.Alert
	if a != nil {
		w.str("AlertType", a.AlertType)
		w.str("AlertUri", a.AlertURI)
		w.str("CompromisedEntity", a.CompromisedEntity)
	}
	w.str("Description", rec.Description)
	w.str("DisplayName", rec.DisplayName)
	if a != nil {
		w.time("EndTime", a.EndTime)
		if len(a.EntitiesJSON) > 0 {
			w.json("Entities", a.EntitiesJSON)
		}
		w.props("ExtendedProperties", a.ExtendedProperties)
	}
	w.str("Kind", string(rec.Kind))
	if a != nil {
		w.str("ProductName", a.ProductName)
	}
	w.key("Record")
	w.dst = rec.AppendRawJSON(w.dst)
	w.str("RecordId", rec.ID)
	w.key("RecordSize")
	w.dst = strconv.AppendInt(w.dst, int64(len(rec.Raw)), 10)
	w.str("ResourceId", rec.ResourceID)
	w.str("Severity", rec.Severity.String())
	if a != nil {
		w.time("StartTime", a.StartTime)
	}
	w.str("Status", rec.Status)
	w.str("SubscriptionId", rec.SubscriptionID)
	if a != nil {
		w.str("SystemAlertId", a.SystemAlertID)
		w.list("Tactics", a.Intent)
		w.list("Techniques", a.Techniques)
	}
	w.time("TimeGenerated", rec.Time)
	return append(w.dst, '}'), nil
}

type rowWriter struct {
	dst   []byte
	count int
}

func (w *rowWriter) key(name string) {
	if w.count > 0 {
		w.dst = append(w.dst, ',')
	}
	w.count++
	w.dst = append(w.dst, '"')
	w.dst = append(w.dst, name...)
	w.dst = append(w.dst, '"', ':')
}

func (w *rowWriter) str(name, v string) {
	if v == "" {
		return
	}
	w.key(name)
	w.dst = jsonx.AppendQuote(w.dst, v)
}

func (w *rowWriter) time(name string, t time.Time) {
	if t.IsZero() {
		return
	}
	w.key(name)
	w.dst = append(w.dst, '"')
	w.dst = t.UTC().AppendFormat(w.dst, timeLayout)
	w.dst = append(w.dst, '"')
}

// json writes raw compacted, or as a JSON string when it is not JSON, so that the row stays
// one valid object whatever the record holds.
func (w *rowWriter) json(name string, raw []byte) {
	w.key(name)
	w.dst = jsonx.AppendJSONOrString(w.dst, raw)
}

func (w *rowWriter) list(name string, vs []string) {
	if len(vs) == 0 {
		return
	}
	w.key(name)
	w.dst = append(w.dst, '[')
	for i, v := range vs {
		if i > 0 {
			w.dst = append(w.dst, ',')
		}
		w.dst = jsonx.AppendQuote(w.dst, v)
	}
	w.dst = append(w.dst, ']')
}

func (w *rowWriter) props(name string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.key(name)
	w.dst = append(w.dst, '{')
	for i, k := range keys {
		if i > 0 {
			w.dst = append(w.dst, ',')
		}
		w.dst = jsonx.AppendQuote(w.dst, k)
		w.dst = append(w.dst, ':')
		w.dst = jsonx.AppendQuote(w.dst, m[k])
	}
	w.dst = append(w.dst, '}')
}
