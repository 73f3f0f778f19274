// Package servicenow renders a Defender for Cloud record as the incident a ServiceNow table
// should hold for it: a small JSON document naming the correlation id (the alert's
// SystemAlertId), the lifecycle status, the fields kept in step with the alert, the fields
// written only when the incident is created, and the close fields for a resolved or dismissed
// alert. It is pure: the transport (internal/sink/servicenow) decides, from what the incident
// holds, whether anything must be sent at all.
//
// The incident's description starts with a fixed header (title, severity, status) written on
// single lines that no record value can break; ParseHeader reads it back, so the transport
// knows which severity and status the incident last heard of without keeping state.
package servicenow

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/format"
	"github.com/defender-siem/forwarder/internal/sink"
)

// Status is an incident-relevant lifecycle value, Defender's alert status vocabulary.
type Status string

// The lifecycle values a document carries.
const (
	StatusActive     Status = "Active"
	StatusInProgress Status = "InProgress"
	StatusResolved   Status = "Resolved"
	StatusDismissed  Status = "Dismissed"
)

// Done reports whether s means the alert needs no more work.
func (s Status) Done() bool { return s == StatusResolved || s == StatusDismissed }

// Document is what Format writes, one JSON object per record.
type Document struct {
	// CorrelationID identifies the incident: the SystemAlertId for alerts, a digest of the
	// assessment id for recommendations (ARM ids are longer than the field holds).
	CorrelationID string `json:"correlation_id"`
	// Kind is the record's kind.
	Kind alert.Kind `json:"kind"`
	// Status is the record's lifecycle status.
	Status Status `json:"status"`
	// Severity is Defender's severity name, empty when the record has none.
	Severity string `json:"severity"`
	// Fields are kept in step with the record: short_description and description.
	Fields map[string]string `json:"fields"`
	// Priority holds impact and urgency: written on create and when the severity changes, so
	// that a priority the SOC set by hand survives re-exports that do not change it.
	Priority map[string]string `json:"priority"`
	// Create holds the fields written only when the incident is created: correlation_id,
	// correlation_display, assignment group, caller, category and the fixed extra fields.
	Create map[string]string `json:"create"`
	// Close holds close_code and close_notes when Status is Resolved or Dismissed.
	Close map[string]string `json:"close,omitempty"`
	// OpenOnly says no incident is to be created while Status is Resolved or Dismissed: a
	// healthy assessment needs no ticket. Alerts are created in any status, so that an
	// export replayed out of order still finds the incident it belongs to.
	OpenOnly bool `json:"open_only,omitempty"`
}

// Decode reads a document Format wrote and checks that it can drive an incident.
func Decode(b []byte) (Document, error) {
	var d Document
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("servicenow: not an incident document: %w", err)
	}
	if err := checkCorrelationID(d.CorrelationID); err != nil {
		return d, err
	}
	switch d.Status {
	case StatusActive, StatusInProgress, StatusResolved, StatusDismissed:
	default:
		return d, fmt.Errorf("servicenow: incident document with status %q", d.Status)
	}
	if d.Fields["short_description"] == "" {
		return d, errors.New("servicenow: incident document without a short_description")
	}
	return d, nil
}

// MaxCorrelationID is the length of the task table's correlation_id column. A longer id
// would be cut by the instance and never found again, creating an incident per export.
const MaxCorrelationID = 100

var correlationRE = regexp.MustCompile(`^[A-Za-z0-9._:@/+-]+$`)

// checkCorrelationID keeps the id usable in an encoded query, where ^ separates terms.
func checkCorrelationID(id string) error {
	switch {
	case id == "":
		return errors.New("servicenow: the record has no id to correlate an incident with")
	case len(id) > MaxCorrelationID:
		return fmt.Errorf("servicenow: id of %d characters is longer than correlation_id holds (%d)", len(id), MaxCorrelationID)
	case !correlationRE.MatchString(id):
		return fmt.Errorf("servicenow: id %q holds characters an encoded query cannot carry (allowed: letters, digits and ._:@/+-)", id)
	}
	return nil
}

// Config holds the field mapping.
type Config struct {
	// CorrelationDisplay names the source in correlation_display. Default
	// "Microsoft Defender for Cloud".
	CorrelationDisplay string
	// Impact and Urgency map each severity to the choice value written. Defaults: High 1,
	// Medium 2, Low 3, Informational 3, and 3 for records without a severity.
	Impact  map[alert.Severity]string
	Urgency map[alert.Severity]string
	// AssignmentGroup, CallerID, Category and Subcategory are written on create when set
	// (a sys_id, or a display value when the transport sends sysparm_input_display_value).
	AssignmentGroup string
	CallerID        string
	Category        string
	Subcategory     string
	// Fields are fixed extra fields written on create, by column name.
	Fields map[string]string
	// CloseCode is the close_code of an incident whose alert Defender resolved; default
	// "Solution provided". DismissCloseCode is the one for a dismissed alert (a false
	// positive); default "No resolution provided". Choices are instance data: read yours from
	// sys_choice (name=incident^element=close_code).
	CloseCode        string
	DismissCloseCode string
	// CloseNotes is the close_notes template: {status}, {name}, {id} and {link} are replaced
	// by the record's status, display name, id and portal link. Default
	// "{status} in Microsoft Defender for Cloud. {link}".
	CloseNotes string
	// MaxShortDescription and MaxDescription cap those fields in UTF-16 code units, as the
	// instance counts them; the instance would cut longer values itself, and the cut value
	// would differ from the next export's on every comparison. Defaults 160 and 4000.
	MaxShortDescription int
	MaxDescription      int
	// MaxEntities caps the entity lines in the description. Default 30.
	MaxEntities int
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		CorrelationDisplay: "Microsoft Defender for Cloud",
		Impact: map[alert.Severity]string{
			alert.SeverityHigh: "1", alert.SeverityMedium: "2", alert.SeverityLow: "3",
			alert.SeverityInformational: "3", alert.SeverityNone: "3",
		},
		Urgency: map[alert.Severity]string{
			alert.SeverityHigh: "1", alert.SeverityMedium: "2", alert.SeverityLow: "3",
			alert.SeverityInformational: "3", alert.SeverityNone: "3",
		},
		CloseCode:           "Solution provided",
		DismissCloseCode:    "No resolution provided",
		CloseNotes:          "{status} in Microsoft Defender for Cloud. {link}",
		MaxShortDescription: 160,
		MaxDescription:      4000,
		MaxEntities:         30,
	}
}

var columnRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// reserved are the columns the document manages; a fixed field may not override them.
var reserved = map[string]bool{
	"correlation_id": true, "short_description": true, "description": true, "state": true,
	"close_code": true, "close_notes": true, "work_notes": true, "impact": true, "urgency": true,
	"sys_id": true, "number": true,
}

// Validate reports every problem with the settings at once.
func (c Config) Validate() error {
	var errs []error
	for _, sev := range []alert.Severity{alert.SeverityHigh, alert.SeverityMedium, alert.SeverityLow, alert.SeverityInformational, alert.SeverityNone} {
		for _, m := range []struct {
			name string
			v    map[alert.Severity]string
		}{{"Impact", c.Impact}, {"Urgency", c.Urgency}} {
			v := m.v[sev]
			if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 3 {
				name := sev.String()
				if name == "" {
					name = "None"
				}
				errs = append(errs, fmt.Errorf("servicenow: %s for %s %q: want 1, 2 or 3", m.name, name, v))
			}
		}
	}
	if c.CloseCode == "" || c.DismissCloseCode == "" {
		errs = append(errs, errors.New("servicenow: CloseCode and DismissCloseCode are required: the instance refuses to resolve an incident without a close code"))
	}
	if strings.TrimSpace(c.CloseNotes) == "" {
		errs = append(errs, errors.New("servicenow: CloseNotes is required: the instance refuses to resolve an incident without close notes"))
	}
	names := make([]string, 0, len(c.Fields))
	for k := range c.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch {
		case !columnRE.MatchString(k):
			errs = append(errs, fmt.Errorf("servicenow: Fields__%s: not a column name (lower-case letters, digits, _)", k))
		case reserved[k]:
			errs = append(errs, fmt.Errorf("servicenow: Fields__%s: this column is written by the forwarder itself", k))
		}
	}
	if c.MaxShortDescription < 16 {
		errs = append(errs, fmt.Errorf("servicenow: MaxShortDescription %d: want 16 or more", c.MaxShortDescription))
	}
	if c.MaxDescription < 256 {
		errs = append(errs, fmt.Errorf("servicenow: MaxDescription %d: want 256 or more", c.MaxDescription))
	}
	if c.MaxEntities < 0 {
		errs = append(errs, fmt.Errorf("servicenow: MaxEntities %d: want 0 or more", c.MaxEntities))
	}
	return errors.Join(errs...)
}

// Formatter renders records as incident documents. It is safe for concurrent use.
type Formatter struct {
	cfg Config
}

var _ format.Formatter = (*Formatter)(nil)

// New returns a Formatter for a valid cfg.
func New(cfg Config) (*Formatter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Formatter{cfg: cfg}, nil
}

// Format appends rec's incident document to dst. Records of a kind without a lifecycle
// (scores, compliance, unknown) and records whose id cannot correlate are refused.
func (f *Formatter) Format(dst []byte, rec *alert.Record) ([]byte, error) {
	d, err := f.Document(rec)
	if err != nil {
		return dst, sink.Permanent(sink.ReasonUnformattable, err)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return dst, sink.Permanent(sink.ReasonUnformattable, fmt.Errorf("servicenow: %w", err))
	}
	return append(dst, b...), nil
}

// ExtendedPropertiesRead is none: the incident's fields are the alert's own.
func (f *Formatter) ExtendedPropertiesRead() []string { return nil }

// Document builds rec's incident document.
func (f *Formatter) Document(rec *alert.Record) (Document, error) {
	if rec == nil {
		return Document{}, errors.New("servicenow: nil record")
	}
	var d Document
	switch rec.Kind {
	case alert.KindAlert, alert.KindActivityLogAlert, alert.KindGraphAlert:
		d = f.alertDocument(rec)
	case alert.KindRecommendation:
		d = f.recommendationDocument(rec)
	default:
		return Document{}, fmt.Errorf("servicenow: a %s record has no incident lifecycle; take alerts and recommendations only (Kinds)", rec.Kind)
	}
	if err := checkCorrelationID(d.CorrelationID); err != nil {
		return Document{}, err
	}
	d.Kind = rec.Kind
	d.Severity = rec.Severity.String()
	d.Priority = map[string]string{"impact": f.cfg.Impact[rec.Severity], "urgency": f.cfg.Urgency[rec.Severity]}
	d.Create = map[string]string{
		"correlation_id":      d.CorrelationID,
		"correlation_display": f.cfg.CorrelationDisplay,
	}
	for k, v := range map[string]string{
		"assignment_group": f.cfg.AssignmentGroup, "caller_id": f.cfg.CallerID,
		"category": f.cfg.Category, "subcategory": f.cfg.Subcategory,
	} {
		if v != "" {
			d.Create[k] = v
		}
	}
	for k, v := range f.cfg.Fields {
		d.Create[k] = v
	}
	if d.Status.Done() {
		code := f.cfg.CloseCode
		if d.Status == StatusDismissed {
			code = f.cfg.DismissCloseCode
		}
		d.Close = map[string]string{"close_code": code, "close_notes": f.closeNotes(d, rec)}
	}
	return d, nil
}

func (f *Formatter) closeNotes(d Document, rec *alert.Record) string {
	link := ""
	if rec.Alert != nil {
		link = rec.Alert.AlertURI
	}
	r := strings.NewReplacer("{status}", string(d.Status), "{name}", line(rec.DisplayName), "{id}", line(rec.ID), "{link}", line(link))
	return strings.TrimSpace(text(r.Replace(f.cfg.CloseNotes)))
}

// alertStatus maps Defender's alert status onto the lifecycle; an unknown future value
// counts as active, so that the alert is still worked on.
func alertStatus(s string) Status {
	switch {
	case strings.EqualFold(s, "InProgress"):
		return StatusInProgress
	case strings.EqualFold(s, "Resolved"):
		return StatusResolved
	case strings.EqualFold(s, "Dismissed"):
		return StatusDismissed
	}
	return StatusActive
}

func (f *Formatter) alertDocument(rec *alert.Record) Document {
	a := rec.Alert
	if a == nil {
		a = &alert.Alert{}
	}
	id := a.SystemAlertID
	if id == "" {
		id = rec.ID
	}
	name := firstLine(a.DisplayName, rec.DisplayName, a.AlertType, "Microsoft Defender for Cloud alert")
	d := Document{CorrelationID: id, Status: alertStatus(first(a.Status, rec.Status))}
	var b descBuilder
	b.header("Microsoft Defender for Cloud alert", rec.Severity, d.Status)
	b.kv("Alert type", a.AlertType)
	b.kv("Resource", first(a.ResourceID, rec.ResourceID))
	b.kv("Compromised entity", a.CompromisedEntity)
	b.kv("Subscription", first(a.SubscriptionID, rec.SubscriptionID))
	if !a.StartTime.IsZero() {
		b.kv("Start time (UTC)", a.StartTime.UTC().Format("2006-01-02 15:04:05"))
	}
	b.kv("Tactics", strings.Join(a.Intent, ", "))
	b.kv("Techniques", strings.Join(append(append([]string(nil), a.Techniques...), a.SubTechniques...), ", "))
	b.kv("Portal link", a.AlertURI)
	b.kv("Alert ID", id)
	b.section("", first(a.Description, rec.Description))
	if len(a.RemediationSteps) > 0 {
		var steps []string
		for i, s := range a.RemediationSteps {
			steps = append(steps, strconv.Itoa(i+1)+". "+text(s))
		}
		b.section("Remediation steps:", strings.Join(steps, "\n"))
	}
	if ents := entityLines(a, f.cfg.MaxEntities); len(ents) > 0 {
		b.section("Entities:", strings.Join(ents, "\n"))
	}
	d.Fields = map[string]string{
		"short_description": cut(name, f.cfg.MaxShortDescription),
		"description":       cut(b.String(), f.cfg.MaxDescription),
	}
	return d
}

// recommendationStatus: an unhealthy resource is work to do; healthy or not applicable ends it.
func recommendationStatus(s string) Status {
	if strings.EqualFold(s, "Unhealthy") {
		return StatusActive
	}
	return StatusResolved
}

// RecommendationCorrelationID is the correlation id of an assessment: "mdc-assessment-" and
// 32 hex digits of the SHA-256 of its lower-cased ARM id.
func RecommendationCorrelationID(armID string) string {
	if armID == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(strings.ToLower(armID)))
	return "mdc-assessment-" + hex.EncodeToString(sum[:16])
}

func (f *Formatter) recommendationDocument(rec *alert.Record) Document {
	d := Document{CorrelationID: RecommendationCorrelationID(rec.ID), Status: recommendationStatus(rec.Status), OpenOnly: true}
	var b descBuilder
	b.header("Microsoft Defender for Cloud recommendation", rec.Severity, d.Status)
	b.kv("Assessment status", rec.Status)
	b.kv("Resource", rec.ResourceID)
	b.kv("Subscription", rec.SubscriptionID)
	b.kv("Assessment ID", rec.ID)
	b.section("", rec.Description)
	d.Fields = map[string]string{
		"short_description": cut(firstLine(rec.DisplayName, "Microsoft Defender for Cloud recommendation"), f.cfg.MaxShortDescription),
		"description":       cut(b.String(), f.cfg.MaxDescription),
	}
	return d
}

// The header's lines, in order; ParseHeader reads them by position.
const (
	severityPrefix = "Severity: "
	statusPrefix   = "Status: "
)

// ParseHeader reads the severity and status an incident description written by Format
// carries. ok is false when the description does not start with that header (the SOC
// rewrote it, or another tool wrote the incident).
func ParseHeader(description string) (severity string, status Status, ok bool) {
	lines := strings.SplitN(strings.ReplaceAll(description, "\r\n", "\n"), "\n", 4)
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "Microsoft Defender for Cloud ") {
		return "", "", false
	}
	sev, ok1 := strings.CutPrefix(lines[1], severityPrefix)
	st, ok2 := strings.CutPrefix(lines[2], statusPrefix)
	if !ok1 || !ok2 {
		return "", "", false
	}
	if sev == "-" {
		sev = ""
	}
	return strings.TrimSpace(sev), Status(strings.TrimSpace(st)), true
}

// descBuilder writes the description: the header, key lines, then blank-line separated
// sections.
type descBuilder struct {
	b strings.Builder
}

func (d *descBuilder) header(title string, sev alert.Severity, st Status) {
	s := sev.String()
	if s == "" {
		s = "-"
	}
	d.b.WriteString(title + "\n" + severityPrefix + s + "\n" + statusPrefix + string(st))
}

func (d *descBuilder) kv(k, v string) {
	if v = line(v); v != "" {
		d.b.WriteString("\n" + k + ": " + v)
	}
}

func (d *descBuilder) section(title, body string) {
	body = text(body)
	if body == "" {
		return
	}
	d.b.WriteString("\n\n")
	if title != "" {
		d.b.WriteString(title + "\n")
	}
	d.b.WriteString(body)
}

func (d *descBuilder) String() string { return d.b.String() }

// entityLines summarises each entity on one line, by what identifies it, each line once.
func entityLines(a *alert.Alert, limit int) []string {
	var out []string
	seen := map[string]bool{}
	more := 0
	for _, e := range a.Entities {
		s := entitySummary(e)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		if len(out) >= limit {
			more++
			continue
		}
		out = append(out, s)
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("(%d more)", more))
	}
	return out
}

// entityKeys lists, per entity type, the fields that identify it.
var entityKeys = map[string][]string{
	"ip":                 {"Address"},
	"host":               {"HostName", "NetBiosName", "DnsDomain", "AzureID"},
	"account":            {"NTDomain", "Name", "UPNSuffix", "AadUserId", "Sid"},
	"process":            {"ProcessId", "CommandLine"},
	"file":               {"Directory", "Name"},
	"filehash":           {"Algorithm", "Value"},
	"dns":                {"DomainName"},
	"url":                {"Url"},
	"malware":            {"Name", "Category"},
	"azure-resource":     {"ResourceId"},
	"network-connection": {"Protocol"},
	"blob":               {"Url", "Name"},
	"container-image":    {"ImageId"},
	"container":          {"Name", "ContainerId"},
	"gcp-resource":       {"ResourceName", "ProjectId"},
}

func entitySummary(e alert.Entity) string {
	keys, ok := entityKeys[e.Type]
	if !ok {
		keys = []string{"Name", "Id", "ResourceId", "Address", "Url"}
	}
	var parts []string
	for _, k := range keys {
		v, ok := e.Fields[k]
		if !ok {
			continue
		}
		var s string
		switch t := v.(type) {
		case string:
			s = t
		case json.Number:
			s = t.String()
		case float64:
			s = strconv.FormatFloat(t, 'f', -1, 64)
		case bool:
			s = strconv.FormatBool(t)
		}
		if s = line(s); s != "" {
			parts = append(parts, k+"="+s)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "- " + line(e.Type) + ": " + strings.Join(parts, ", ")
}

func first(vs ...string) string {
	for _, v := range vs {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

// firstLine is the first of vs that is not empty as one line.
func firstLine(vs ...string) string {
	for _, v := range vs {
		if v = line(v); v != "" {
			return v
		}
	}
	return ""
}

// line makes v one line: every control or line-separating character becomes a space, so a
// value cannot start a header line of its own.
func line(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	v = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == '\u0085' {
			return ' '
		}
		return r
	}, v)
	return strings.TrimSpace(v)
}

// text keeps line breaks (as LF) but no other control character, and no trailing spaces on
// a line, so that what the instance stores compares equal to what the next export renders.
func text(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	v = strings.ReplaceAll(v, "\r\n", "\n")
	v = strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return r
		case r == '\r' || r == '\u2028' || r == '\u2029' || r == '\u0085':
			return '\n'
		case unicode.IsControl(r):
			return ' '
		}
		return r
	}, v)
	ls := strings.Split(v, "\n")
	for i := range ls {
		ls[i] = strings.TrimRight(ls[i], " ")
	}
	return strings.Trim(strings.Join(ls, "\n"), "\n ")
}

// cut shortens s to at most max UTF-16 code units, ending it with "…" when it was cut.
func cut(s string, max int) string {
	if utf16Len(s) <= max {
		return s
	}
	n := 0
	for i, r := range s {
		w := 1
		if r >= 0x10000 {
			w = 2
		}
		if n+w > max-1 {
			return strings.TrimRight(s[:i], " \n") + "…"
		}
		n += w
	}
	return s
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r >= 0x10000 {
			n++
		}
	}
	return n
}
