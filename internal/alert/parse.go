package alert

import (
	"strings"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/jsonx"
)

// Parse turns the raw bytes of one record (as Split returns them) into a Record numbered
// index. It detects the record's kind and fills the fields the record carries; Raw is raw
// itself, untouched.
//
// Any well-formed JSON value parses: an object of no known kind, or a value that is not an
// object at all, becomes KindUnknown with only Raw and Index set. A text field written as a
// number or boolean keeps its JSON text; one that is null, an array or an object is ignored,
// and a time that cannot be read is passed over and noted in Record.TimeFallback. The only
// error is for bytes that are not well-formed JSON; it wraps ErrUndecodable.
func Parse(raw []byte, index int) (Record, error) {
	return Options{}.Parse(raw, index)
}

// Options select parsing work that not every destination needs. The zero value does all of
// it; Parse and ParseMessage use the zero value.
type Options struct {
	// SkipEntities leaves Alert.Entities nil and only sets Alert.EntitiesJSON, which
	// DecodeEntities turns into entities on demand. Decoding entities is most of the cost of
	// a large alert, and formats that ship the raw record never read them.
	SkipEntities bool
	// SkipExtendedProperties leaves Alert.ExtendedProperties nil for alerts of the export
	// and ARM shapes (Graph alerts, whose map the parser builds from its own fields, keep
	// it). Rendering every property as a string is about a tenth of parsing an alert, and
	// formats that ship the raw record never read them.
	SkipExtendedProperties bool
	// OnlyExtendedProperties, when not nil, keeps in Alert.ExtendedProperties only the
	// properties of these names (exactly as written) for alerts of the export and ARM shapes;
	// the map is nil when none of them is there. Formats that read two or three properties
	// then do not pay for rendering all of them.
	OnlyExtendedProperties []string
	// SummaryOnly reads, of an alert of the export or ARM shape, only what identifies, routes
	// and times it: SystemAlertID, AlertType, Severity, Status, StartTime, TimeGenerated,
	// ResourceID, SubscriptionID and EntitiesJSON (the Record's fields follow from those;
	// its DisplayName and Description stay empty). The descriptive text is most of what the
	// parser decodes of a small alert, and formats that forward the raw record never read it.
	// Activity Log and Graph alerts, and the other kinds, are read whole.
	SummaryOnly bool
}

// Parse is the package's Parse with the options o.
func (o Options) Parse(raw []byte, index int) (Record, error) {
	rec, _, err := o.parse(raw, index)
	return rec, err
}

// parse is Parse that also reports whether raw is an Azure Monitor {"records":[…]} envelope
// rather than a record (see Split), so that ParseMessage can read a message of one record in
// a single pass.
func (o Options) parse(raw []byte, index int) (rec Record, envelope bool, err error) {
	rec = Record{Kind: KindUnknown, Raw: raw, Index: index}
	start, end := jsonx.Trim(raw)
	if start >= end {
		return rec, false, jsonx.SyntaxError(start, "empty record")
	}
	d := raw[:end]
	if d[start] != '{' {
		stop, err := jsonx.Skip(d, start, 0)
		if err != nil {
			return rec, false, err
		}
		if stop != end {
			return rec, false, jsonx.SyntaxError(stop, "data after the record")
		}
		return rec, false, nil
	}
	var top fieldSet
	members := 0
	var walk jsonx.Walk
	stop, err := walk.EachMember(d[start:], 0, func(key, val []byte, esc bool) {
		members++
		if id := fieldOf(key, esc); id >= 0 {
			top[id] = val
		}
	})
	if err != nil {
		return rec, false, err
	}
	if start+stop != end {
		return rec, false, jsonx.SyntaxError(start+stop, "data after the record")
	}
	if members == 1 && len(top[fRecords]) > 0 && top[fRecords][0] == '[' {
		return rec, true, nil
	}
	rec.RawCompact = start == 0 && end == len(raw) && !walk.Spaced() && utf8.Valid(raw)
	var armAlert bool
	rec.Kind, armAlert = detectKind(&top)
	switch rec.Kind {
	case KindAlert:
		parseAlertRecord(&top, &rec, o, armAlert)
	case KindActivityLogAlert:
		parseActivityLogAlert(&top, &rec, o)
	case KindGraphAlert:
		parseGraphAlert(d[start:], &rec, o)
	case KindRecommendation, KindSubAssessment:
		parseAssessment(&top, &rec)
	case KindSecureScore, KindSecureScoreControl:
		parseScore(&top, &rec)
	case KindRegulatoryCompliance:
		parseCompliance(&top, &rec)
	}
	return rec, false, nil
}

const (
	typeAlert            = "Microsoft.Security/Locations/alerts"
	typeAssessment       = "Microsoft.Security/assessments"
	typeSubAssessment    = "Microsoft.Security/assessments/subAssessments"
	typeSecureScore      = "Microsoft.Security/secureScores"
	typeSecureScoreCtl   = "Microsoft.Security/secureScores/secureScoreControls"
	operationActivate    = "Microsoft.Security/locations/alerts/activate/action"
	dollarTypeSubAssess  = "subAssessmentEvent"
	securityProviderPref = "microsoft.security/"
)

func isString(v []byte) bool { return len(v) > 0 && v[0] == '"' }
func isObject(v []byte) bool { return len(v) > 0 && v[0] == '{' }

// detectKind tells what a record is from its shape as a whole: first the members that name a
// kind outright (type, $type, the enrichment objects, the Activity Log operation), then, for
// alerts, the alert fields the record carries in either shape, then the ARM id. A member of
// an odd JSON type (a null alert type, a numeric id) weakens the evidence but never decides
// alone. armAlert reports an alert in the ARM shape, whose fields sit in properties.
func detectKind(top *fieldSet) (kind Kind, armAlert bool) {
	typ := top.str(fType)
	switch {
	case isGraphAlert(top):
		return KindGraphAlert, false
	case strings.EqualFold(typ, typeAlert):
		return KindAlert, true
	case isString(top[fAlertType]) && isString(top[fSystemAlertID]):
		return KindAlert, false
	case strings.EqualFold(top.str(fDollarType), dollarTypeSubAssess),
		strings.EqualFold(typ, typeSubAssessment),
		isObject(top[fSubAssessmentEnrichment]):
		return KindSubAssessment, false
	case strings.EqualFold(typ, typeAssessment), isObject(top[fAssessmentEnrichment]):
		return KindRecommendation, false
	case strings.EqualFold(typ, typeSecureScoreCtl):
		return KindSecureScoreControl, false
	case strings.EqualFold(typ, typeSecureScore):
		return KindSecureScore, false
	case isRegulatoryType(typ):
		return KindRegulatoryCompliance, false
	case isActivityLogAlert(top):
		return KindActivityLogAlert, false
	case looksLikeAlert(top):
		return KindAlert, false
	}
	var props fieldSet
	if isObject(top[fProperties]) && props.collect(top[fProperties]) == nil && looksLikeAlert(&props) {
		return KindAlert, true
	}
	// An Activity Log event of another category also names an alert in its id.
	if k := kindFromID(top.str(fID)); k != KindUnknown && (k != KindAlert || !top.present(fOperationName)) {
		return k, k == KindAlert
	}
	return KindUnknown, false
}

// Alert evidence: a name only alerts use counts twice, a field alerts share with few other
// records once; an object counts as an alert from two points on. So one alert-only name is
// enough, and so are two shared ones (product and vendor, say), but severity, status or a
// description alone are not, and neither is a member that is null.
var (
	alertOnlyFields   = [...]int{fAlertType, fSystemAlertID, fAlertDisplayName, fAlertName}
	alertSharedFields = [...]int{
		fVendorName, fProductName, fProductComponentName, fCompromisedEntity, fEntities,
		fIntent, fStartTimeUtc, fEndTimeUtc, fAlertURI, fAlertLink, fRemediationSteps,
		fExtendedProperties, fResourceIdentifiers,
	}
)

func looksLikeAlert(fs *fieldSet) bool {
	n := 0
	for _, id := range alertOnlyFields {
		if fs.present(id) {
			n += 2
		}
	}
	for _, id := range alertSharedFields {
		if fs.present(id) {
			n++
		}
	}
	if fs.present(fSeverity) || fs.present(fAlertSeverity) || fs.present(fReportedSeverity) {
		n++
	}
	return n >= 2
}

// kindFromID tells a Microsoft.Security ARM resource's kind from its id, for a record whose
// type member is missing or not a string.
func kindFromID(id string) Kind {
	i := indexFold(id, "/providers/Microsoft.Security/")
	if i < 0 {
		return KindUnknown
	}
	rest := strings.ToLower(id[i:])
	switch {
	case strings.Contains(rest, "/regulatorycompliancestandards/") && strings.Contains(rest, "/regulatorycomplianceassessments/"):
		return KindRegulatoryCompliance
	case strings.Contains(rest, "/subassessments/"):
		return KindSubAssessment
	case strings.Contains(rest, "/assessments/"):
		return KindRecommendation
	case strings.Contains(rest, "/securescorecontrols/"):
		return KindSecureScoreControl
	case strings.Contains(rest, "/securescores/"):
		return KindSecureScore
	case strings.Contains(rest, "/locations/") && strings.Contains(rest, "/alerts/"):
		return KindAlert
	}
	return KindUnknown
}

// isRegulatoryType accepts the export's
// Microsoft.Security/regulatoryComplianceStandards/regulatoryComplianceControls/regulatoryComplianceAssessments
// and the REST examples' singular Microsoft.Security/regulatoryComplianceAssessment.
func isRegulatoryType(typ string) bool {
	l := strings.ToLower(typ)
	return strings.HasPrefix(l, securityProviderPref) &&
		(strings.HasSuffix(l, "/regulatorycomplianceassessments") ||
			strings.HasSuffix(l, "/regulatorycomplianceassessment"))
}

// isActivityLogAlert recognises the Activity Log "Activate Alert" event in both of its
// shapes: the REST/portal shape, where operationName and category are {"value":…} objects,
// and the resource-log shape streamed through diagnostic settings, where they are strings.
// Every event of the Security category is a Defender for Cloud alert.
func isActivityLogAlert(top *fieldSet) bool {
	op := top.strOrValue(fOperationName)
	if strings.EqualFold(op, operationActivate) {
		return true
	}
	return op != "" && strings.EqualFold(top.strOrValue(fCategory), "Security")
}

// normStatus reports the export's "New" as "Active", the REST API's name for the same state.
func normStatus(s string) string {
	if strings.EqualFold(s, "New") {
		return "Active"
	}
	return s
}

// subscriptionFromID returns the lower-cased subscription id out of an ARM id such as
// /subscriptions/<id>/resourceGroups/…, or "".
func subscriptionFromID(id string) string {
	const seg = "subscriptions/"
	i := indexFold(id, seg)
	if i < 0 || (i > 0 && id[i-1] != '/') {
		return ""
	}
	rest := id[i+len(seg):]
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		rest = rest[:j]
	}
	return strings.ToLower(rest)
}

// indexFold is strings.Index ignoring ASCII case.
func indexFold(s, sub string) int {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if strings.EqualFold(s[i:i+n], sub) {
			return i
		}
	}
	return -1
}

// segmentAfter returns the path segment that follows marker in id (ignoring case), or "".
func segmentAfter(id, marker string) string {
	i := indexFold(id, marker)
	if i < 0 {
		return ""
	}
	rest := id[i+len(marker):]
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

func parseAssessment(top *fieldSet, rec *Record) {
	var props, status, meta, details fieldSet
	_ = props.collect(top[fProperties])
	_ = status.collect(props[fStatus])
	_ = meta.collect(props[fMetadata])
	_ = details.collect(props[fResourceDetails])

	rec.ID = top.str(fID)
	rec.DisplayName = props.first(fDisplayName)
	if rec.DisplayName == "" {
		rec.DisplayName = meta.str(fDisplayName)
	}
	rec.Severity = ParseSeverity(meta.str(fSeverity))
	if rec.Severity == SeverityNone {
		rec.Severity = ParseSeverity(status.str(fSeverity))
	}
	rec.Status = status.str(fCode)
	if rec.Kind == KindSubAssessment {
		rec.Time, rec.TimeFallback = chooseTime(timeSource{"properties.timeGenerated", props[fTimeGenerated]})
		rec.Description = props.str(fDescription)
	} else {
		rec.Time, rec.TimeFallback = chooseTime(timeSource{"properties.status.statusChangeDate", status[fStatusChangeDate]})
		rec.Description = meta.first(fDescription)
		if rec.Description == "" {
			rec.Description = status.str(fDescription)
		}
	}
	rec.ResourceID = details.first(fID, fResourceID, fAzureResourceID)
	if rec.ResourceID == "" {
		// An assessment's id is <resource id>/providers/Microsoft.Security/assessments/<name>.
		if i := indexFold(rec.ID, "/providers/Microsoft.Security/assessments/"); i > 0 {
			rec.ResourceID = rec.ID[:i]
		}
	}
	rec.SubscriptionID = subscriptionFromID(rec.ResourceID)
	if rec.SubscriptionID == "" {
		rec.SubscriptionID = subscriptionFromID(rec.ID)
	}
}

func parseScore(top *fieldSet, rec *Record) {
	var props fieldSet
	_ = props.collect(top[fProperties])
	rec.ID = top.str(fID)
	rec.DisplayName = props.str(fDisplayName)
	rec.SubscriptionID = subscriptionFromID(rec.ID)
}

func parseCompliance(top *fieldSet, rec *Record) {
	var props fieldSet
	_ = props.collect(top[fProperties])
	rec.ID = top.str(fID)
	rec.Description = props.str(fDescription)
	// Compliance assessments carry no display name; their description is the assessment's
	// title ("Log Analytics agent should be installed on …").
	rec.DisplayName = props.first(fDisplayName, fDescription)
	rec.Status = props.str(fState)
	rec.SubscriptionID = subscriptionFromID(rec.ID)
}
