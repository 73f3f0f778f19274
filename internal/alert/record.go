package alert

import (
	"time"

	"github.com/defender-siem/forwarder/internal/jsonx"
)

// Kind names what a record is. The values are stable: they appear in settings
// (Destinations__<name>__Kinds), in dead-letter entities and in SIEM metadata such as the HEC
// sourcetype and the syslog MSGID.
type Kind string

// The record kinds Defender for Cloud exports, plus KindUnknown for anything else, which is
// kept raw and still forwarded.
const (
	KindAlert                Kind = "alert"
	KindRecommendation       Kind = "recommendation"
	KindSubAssessment        Kind = "subassessment"
	KindSecureScore          Kind = "securescore"
	KindSecureScoreControl   Kind = "securescorecontrol"
	KindRegulatoryCompliance Kind = "regulatorycompliance"
	KindActivityLogAlert     Kind = "activitylogalert"
	// KindGraphAlert is an alert read from the Microsoft Graph Security API (alerts_v2), a
	// microsoft.graph.security.alert object, as the Graph poll feeds it to the pipeline.
	KindGraphAlert Kind = "graphalert"
	KindUnknown    Kind = "unknown"
)

// Kinds lists every kind in a fixed order, for validation and documentation.
var Kinds = []Kind{
	KindAlert, KindRecommendation, KindSubAssessment, KindSecureScore,
	KindSecureScoreControl, KindRegulatoryCompliance, KindActivityLogAlert, KindGraphAlert, KindUnknown,
}

// Severity is Defender's severity scale. The zero value means the record carries none.
type Severity int

// Severities in increasing order, so that filters can compare them.
const (
	SeverityNone Severity = iota
	SeverityInformational
	SeverityLow
	SeverityMedium
	SeverityHigh
)

// Record is one Defender export record: an alert, a recommendation, a score…
//
// Fields other than Kind and Raw are filled when the record carries them; formatters must cope
// with any of them being empty.
type Record struct {
	// Kind is what the record is.
	Kind Kind
	// Raw is the record's original JSON bytes, untouched (a sub-slice of the message when the
	// message held several records). Never nil for a parsed record.
	Raw []byte
	// RawCompact is set by Parse when Raw is already in the form jsonx.AppendCompact writes:
	// one JSON value, valid UTF-8, with no whitespace between tokens (Defender's own
	// serialisation). AppendRawJSON then copies Raw instead of compacting it a second time.
	RawCompact bool
	// Index is the record's position inside its Event Hub message (0 for a message holding one
	// record), part of the record's coordinates for dead letters.
	Index int

	// ID is the record's identifier: SystemAlertId for alerts, the ARM id otherwise. An id
	// written as a JSON number is its JSON text.
	ID string
	// DisplayName is what a person reads first: the alert display name, the recommendation
	// display name, the control name…
	DisplayName string
	// Severity is the record's severity, when it has one.
	Severity Severity
	// Status is the record's status as Defender writes it (alerts: "New" is reported as
	// "Active"; assessments: Healthy/Unhealthy/NotApplicable; compliance: Passed/Failed…).
	Status string
	// Time is when the record's event happened: an alert's TimeGenerated (or StartTimeUtc),
	// an assessment's status change date, an activity log event's time. Zero when unknown.
	Time time.Time
	// TimeFallback, when not empty, says that a time field the record carries could not be
	// read, and which field Time came from instead ("TimeGenerated unreadable, StartTimeUtc
	// used"), or that no other was readable ("…, no other time field"): the pipeline warns
	// about it once per invocation. Empty when Time came from the first field that is there,
	// or the record carries no time (absent, null or empty fields are not unreadable).
	TimeFallback string
	// SubscriptionID is the Azure subscription the record is about, lower-case as written.
	SubscriptionID string
	// ResourceID is the Azure resource the record is about.
	ResourceID string
	// Description is the record's long description, when present.
	Description string

	// Alert holds the normalised alert for KindAlert, KindActivityLogAlert and KindGraphAlert,
	// nil otherwise.
	Alert *Alert
}

// Alert is a security alert normalised from either export shape.
type Alert struct {
	SystemAlertID     string
	AlertType         string
	DisplayName       string
	Severity          Severity
	Status            string
	StartTime         time.Time
	EndTime           time.Time
	TimeGenerated     time.Time
	Description       string
	RemediationSteps  []string
	Intent            []string // kill-chain tactics, split on commas
	Techniques        []string
	SubTechniques     []string
	CompromisedEntity string
	ResourceID        string
	SubscriptionID    string
	AlertURI          string
	VendorName        string
	ProductName       string
	ProductComponent  string
	// ExtendedProperties holds the alert's extended properties, every value rendered as a string
	// (numbers keep their JSON text). Nil when parsed with Options.SkipExtendedProperties.
	ExtendedProperties map[string]string
	// Entities are the alert's entities with every $ref replaced by the entity it names.
	// Nil when the alert has none, or when it was parsed with Options.SkipEntities.
	Entities []Entity
	// NestedEntities are the entities written inside other entities (a filehash inside a
	// file, an ip inside a dns entity), in the order they are written, each once. Together
	// with Entities they are every entity of the alert.
	NestedEntities []Entity
	// EntitiesJSON is the JSON array the entities were decoded from, as the record wrote it
	// (the text inside the string for the Log Analytics shape, where Entities is a string);
	// nil when the alert has no entity list. DecodeEntities turns it into Entities and
	// NestedEntities.
	EntitiesJSON []byte
}

// Entity is one alert entity (ip, host, account, process, file…). Fields holds its properties
// with keys as written; nested entities referenced by $ref are resolved to the referenced
// Entity's Fields.
//
// Values are what JSON decodes to (string, json.Number, bool, nil, []any, map[string]any),
// except that values nested more than 64 levels deep stay as json.RawMessage. A resolved
// reference shares the referenced map rather than copying it, so Fields must be treated as
// read-only.
type Entity struct {
	// Type is the entity's discriminator, lower-cased ("ip", "host", "account", …).
	Type string
	// Fields are the entity's properties as decoded from JSON.
	Fields map[string]any
}

// AppendRawJSON appends Raw as one compact JSON value, exactly as jsonx.AppendJSONOrString
// writes it (a JSON string of the bytes when they are not JSON). Formats that forward the
// original record call it; for a record Parse found compact it is a copy, which is most of
// the HEC formatter's saving on every alert.
func (r *Record) AppendRawJSON(dst []byte) []byte {
	if r.RawCompact {
		return append(dst, r.Raw...)
	}
	return jsonx.AppendJSONOrString(dst, r.Raw)
}
