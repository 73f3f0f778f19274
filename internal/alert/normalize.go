package alert

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/defender-siem/forwarder/internal/jsonx"
)

// parseAlertRecord normalises both alert shapes. The flat export shape and the REST shape's
// properties object use the same names in different letter cases, and names are matched
// case-insensitively, so one reader serves both.
func parseAlertRecord(top *fieldSet, rec *Record, opt Options, rest bool) {
	a := &Alert{}
	src := top
	var props fieldSet
	names := &flatTimeNames
	if rest {
		_ = props.collect(top[fProperties])
		src = &props
		names = &armTimeNames
	}
	generatedNote := fillAlert(src, a, opt, names)
	if rest {
		if a.SystemAlertID == "" {
			a.SystemAlertID = top.str(fName)
		}
		if a.SubscriptionID == "" {
			a.SubscriptionID = subscriptionFromID(top.str(fID))
		}
	}
	rec.Alert = a
	rec.ID = a.SystemAlertID
	if rec.ID == "" {
		rec.ID = top.str(fID)
	}
	fillRecordFromAlert(rec, a)
	// Record.Time is TimeGenerated, else the start; the note says when a field that was
	// there could not be read. A TimeGenerated read at once needs no second look.
	if !a.TimeGenerated.IsZero() && generatedNote == "" {
		return
	}
	_, rec.TimeFallback = chooseTime(
		timeSource{names[0], src[fTimeGenerated]}, timeSource{names[1], src[fTimeGeneratedUtc]},
		timeSource{names[2], src[fStartTimeUtc]}, timeSource{names[3], src[fStartTime]})
}

// The alert time members in the order Record.Time takes them, as the fallback note names
// them in each shape.
var (
	flatTimeNames = [4]string{"TimeGenerated", "TimeGeneratedUtc", "StartTimeUtc", "StartTime"}
	armTimeNames  = [4]string{"properties.timeGenerated", "properties.timeGeneratedUtc", "properties.startTimeUtc", "properties.startTime"}
)

func fillRecordFromAlert(rec *Record, a *Alert) {
	rec.DisplayName = a.DisplayName
	rec.Severity = a.Severity
	rec.Status = a.Status
	rec.Time = a.TimeGenerated
	if rec.Time.IsZero() {
		rec.Time = a.StartTime
	}
	rec.SubscriptionID = a.SubscriptionID
	rec.ResourceID = a.ResourceID
	rec.Description = a.Description
}

// fillAlert reads the alert fields of fs into a. It returns chooseTime's note for
// TimeGenerated.
func fillAlert(fs *fieldSet, a *Alert, opt Options, names *[4]string) (generatedNote string) {
	a.SystemAlertID = fs.str(fSystemAlertID)
	a.AlertType = fs.str(fAlertType)
	a.Severity = ParseSeverity(fs.first(fSeverity, fAlertSeverity, fReportedSeverity))
	a.Status = normStatus(fs.str(fStatus))
	a.StartTime, _ = chooseTime(timeSource{names[2], fs[fStartTimeUtc]}, timeSource{names[3], fs[fStartTime]})
	a.TimeGenerated, generatedNote = chooseTime(timeSource{names[0], fs[fTimeGenerated]}, timeSource{names[1], fs[fTimeGeneratedUtc]})
	a.ResourceID = fs.first(fAzureResourceID, fResourceID)
	if a.ResourceID == "" {
		a.ResourceID = azureResourceIdentifier(fs[fResourceIdentifiers])
	}
	a.SubscriptionID = strings.ToLower(fs.str(fAzureResourceSubscriptionID))
	if a.SubscriptionID == "" {
		a.SubscriptionID = subscriptionFromID(a.ResourceID)
	}
	a.EntitiesJSON = entitiesJSON(fs[fEntities])
	if !opt.SkipEntities {
		a.DecodeEntities()
	}
	if opt.SummaryOnly {
		return generatedNote
	}
	a.DisplayName = fs.first(fAlertDisplayName, fAlertName, fDisplayName)
	a.EndTime, _ = chooseTime(timeSource{v: fs[fEndTimeUtc]}, timeSource{v: fs[fEndTime]})
	a.Description = fs.str(fDescription)
	a.RemediationSteps = stringList(fs[fRemediationSteps], false)
	a.Intent = stringList(fs[fIntent], true)
	if a.Intent == nil {
		a.Intent = stringList(fs[fTactics], true)
	}
	a.Techniques = stringList(fs[fTechniques], true)
	a.SubTechniques = stringList(fs[fSubTechniques], true)
	a.CompromisedEntity = fs.str(fCompromisedEntity)
	a.AlertURI = fs.first(fAlertURI, fAlertLink)
	a.VendorName = fs.str(fVendorName)
	a.ProductName = fs.str(fProductName)
	a.ProductComponent = fs.str(fProductComponentName)
	if !opt.SkipExtendedProperties {
		a.ExtendedProperties = extendedProperties(fs[fExtendedProperties], opt.OnlyExtendedProperties)
	}
	return generatedNote
}

// parseActivityLogAlert normalises an Activity Log "Activate Alert" event. The alert's own
// fields sit in properties (severity, intent, compromisedEntity, remediationSteps…); in the
// resource-log shape they may instead sit in a JSON string properties.eventProperties.
func parseActivityLogAlert(top *fieldSet, rec *Record, opt Options) {
	var props, ev fieldSet
	_ = props.collect(top[fProperties])
	if inner := jsonInString(props[fEventProperties]); inner != nil {
		_ = ev.collect(inner)
	} else {
		_ = ev.collect(props[fEventProperties])
	}
	// pick prefers properties and falls back to eventProperties.
	pick := func(id int) []byte {
		if v := props[id]; len(v) > 0 && !bytes.Equal(v, []byte("null")) {
			return v
		}
		return ev[id]
	}
	str := func(id int) string { return scalarText(pick(id)) }

	a := &Alert{}
	resourceID := top.str(fResourceID)
	a.SystemAlertID = str(fSystemAlertID)
	if a.SystemAlertID == "" {
		a.SystemAlertID = segmentAfter(resourceID, "/alerts/")
	}
	if a.SystemAlertID == "" {
		a.SystemAlertID = top.str(fCorrelationID)
	}
	a.AlertType = str(fAlertType)
	a.DisplayName = str(fAlertDisplayName)
	if a.DisplayName == "" {
		a.DisplayName = top.strOrValue(fEventName)
	}
	a.Severity = ParseSeverity(str(fSeverity))
	a.Status = normStatus(top.strOrValue(fStatus))
	a.TimeGenerated, _ = chooseTime(timeSource{"eventTimestamp", top[fEventTimestamp]}, timeSource{"time", top[fTime]})
	a.StartTime, _ = chooseTime(timeSource{v: pick(fStartTimeUtc)})
	if a.StartTime.IsZero() {
		a.StartTime = a.TimeGenerated
	}
	a.EndTime, _ = chooseTime(timeSource{v: pick(fEndTimeUtc)})
	a.Description = top.str(fDescription)
	if a.Description == "" {
		a.Description = str(fDescription)
	}
	a.RemediationSteps = stringList(pick(fRemediationSteps), false)
	a.Intent = stringList(pick(fIntent), true)
	a.Techniques = stringList(pick(fTechniques), true)
	a.SubTechniques = stringList(pick(fSubTechniques), true)
	a.CompromisedEntity = str(fCompromisedEntity)
	a.ResourceID = resourceID
	a.SubscriptionID = strings.ToLower(top.str(fSubscriptionID))
	if a.SubscriptionID == "" {
		a.SubscriptionID = subscriptionFromID(resourceID)
	}
	a.AlertURI = str(fAlertURI)
	a.VendorName = str(fVendorName)
	a.ProductName = str(fProductName)
	a.ProductComponent = str(fProductComponentName)
	if !opt.SkipExtendedProperties {
		a.ExtendedProperties = extendedProperties(top[fProperties], opt.OnlyExtendedProperties)
	}
	a.EntitiesJSON = entitiesJSON(pick(fEntities))
	if !opt.SkipEntities {
		a.DecodeEntities()
	}

	rec.Alert = a
	rec.ID = a.SystemAlertID
	if rec.ID == "" {
		rec.ID = top.str(fID)
	}
	fillRecordFromAlert(rec, a)
	_, rec.TimeFallback = chooseTime(timeSource{"eventTimestamp", top[fEventTimestamp]},
		timeSource{"time", top[fTime]}, timeSource{"properties.startTimeUtc", pick(fStartTimeUtc)})
}

// jsonInString returns the JSON held in the string value v, as the Log Analytics and
// Activity Log shapes carry arrays and objects, or nil when v is not a string holding
// well-formed JSON.
func jsonInString(v []byte) []byte {
	s, ok := jsonx.DecodeString(v)
	if !ok {
		return nil
	}
	b := []byte(s)
	start, end := jsonx.Trim(b)
	if start >= end || (b[start] != '[' && b[start] != '{') {
		return nil
	}
	stop, err := jsonx.Skip(b[:end], start, 0)
	if err != nil || stop != end {
		return nil
	}
	return b[start:end]
}

// stringList reads a list of strings written as a JSON array, as a string holding a JSON
// array, or as a plain string. With commas, strings are also split on commas, which is how
// Defender joins several tactics ("Persistence, PrivilegeEscalation"). Values are trimmed,
// empty ones and non-strings are dropped.
func stringList(v []byte, commas bool) []string {
	if len(v) == 0 {
		return nil
	}
	var out []string
	add := func(s string) {
		if commas {
			for part := range strings.SplitSeq(s, ",") {
				if part = strings.TrimSpace(part); part != "" {
					out = append(out, part)
				}
			}
			return
		}
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	switch v[0] {
	case '[':
		_, _ = jsonx.EachElement(v, 0, func(el []byte) {
			if s, ok := jsonx.DecodeString(el); ok {
				add(s)
			}
		})
	case '"':
		if inner := jsonInString(v); inner != nil && inner[0] == '[' {
			return stringList(inner, commas)
		}
		s, _ := jsonx.DecodeString(v)
		add(s)
	}
	return out
}

// azureResourceIdentifier returns the azureResourceId of the first AzureResource entry of a
// resourceIdentifiers array.
func azureResourceIdentifier(v []byte) string {
	if inner := jsonInString(v); inner != nil {
		v = inner
	}
	if len(v) == 0 || v[0] != '[' {
		return ""
	}
	var found string
	_, _ = jsonx.EachElement(v, 0, func(el []byte) {
		if found != "" || !isObject(el) {
			return
		}
		var fs fieldSet
		if fs.collect(el) != nil || !strings.EqualFold(fs.str(fType), "AzureResource") {
			return
		}
		found = fs.str(fAzureResourceID)
	})
	return found
}

// extendedProperties renders every member of the object v (or of a string holding a JSON
// object) as a string: strings as they are, null as "", other values as compact JSON text,
// so numbers keep exactly the digits Defender wrote. With only not nil it keeps the members
// of those names, and builds no map when there are none.
func extendedProperties(v []byte, only []string) map[string]string {
	if inner := jsonInString(v); inner != nil {
		v = inner
	}
	if !isObject(v) {
		return nil
	}
	var out map[string]string
	if only == nil {
		out = map[string]string{}
	}
	var buf bytes.Buffer
	_, _ = jsonx.EachMember(v, 0, func(key, val []byte, esc bool) {
		var k string
		if only == nil || esc {
			k = jsonx.DecodeKey(key, esc)
		}
		if only != nil {
			i := slices.IndexFunc(only, func(name string) bool {
				if esc {
					return k == name
				}
				return string(key) == name
			})
			if i < 0 {
				return
			}
			k = only[i]
			if out == nil {
				out = make(map[string]string, len(only))
			}
		}
		switch val[0] {
		case '"':
			out[k], _ = jsonx.DecodeString(val)
		case 'n':
			out[k] = ""
		case '{', '[':
			buf.Reset()
			if json.Compact(&buf, val) == nil {
				out[k] = buf.String()
			}
		default:
			out[k] = string(val)
		}
	})
	return out
}
