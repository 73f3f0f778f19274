package alert

import "github.com/defender-siem/forwarder/internal/jsonx"

// Field names the parser looks for, in any letter case. Every JSON object the parser reads is
// scanned once into a fieldSet indexed by these ids, so each object costs one pass and one
// small map lookup per member whatever the number of fields wanted.
const (
	fVendorName = iota
	fAlertType
	fProductName
	fProductComponentName
	fStartTimeUtc
	fEndTimeUtc
	fStartTime
	fEndTime
	fTimeGenerated
	fTimeGeneratedUtc
	fSeverity
	fAlertSeverity
	fReportedSeverity
	fStatus
	fSystemAlertID
	fIntent
	fTactics
	fAzureResourceID
	fAzureResourceSubscriptionID
	fResourceID
	fCompromisedEntity
	fAlertDisplayName
	fAlertName
	fDisplayName
	fDescription
	fEntities
	fResourceIdentifiers
	fRemediationSteps
	fExtendedProperties
	fAlertURI
	fAlertLink
	fTechniques
	fSubTechniques
	fID
	fName
	fType
	fDollarType
	fProperties
	fAssessmentEnrichment
	fSubAssessmentEnrichment
	fSecurityEnrichment
	fResourceDetails
	fMetadata
	fCode
	fStatusChangeDate
	fState
	fCategory
	fOperationName
	fEventTimestamp
	fTime
	fSubscriptionID
	fLevel
	fEventName
	fValue
	fEventDataID
	fCorrelationID
	fEventProperties
	fDollarID
	fDollarRef
	fRecords
	fODataType
	fProviderAlertID
	fServiceSource
	fLastUpdateDateTime
	numFields
)

var fieldIndex = map[string]int{
	"vendorname":                       fVendorName,
	"alerttype":                        fAlertType,
	"productname":                      fProductName,
	"productcomponentname":             fProductComponentName,
	"starttimeutc":                     fStartTimeUtc,
	"endtimeutc":                       fEndTimeUtc,
	"starttime":                        fStartTime,
	"endtime":                          fEndTime,
	"timegenerated":                    fTimeGenerated,
	"timegeneratedutc":                 fTimeGeneratedUtc,
	"severity":                         fSeverity,
	"alertseverity":                    fAlertSeverity,
	"reportedseverity":                 fReportedSeverity,
	"status":                           fStatus,
	"systemalertid":                    fSystemAlertID,
	"intent":                           fIntent,
	"tactics":                          fTactics,
	"azureresourceid":                  fAzureResourceID,
	"azureresourcesubscriptionid":      fAzureResourceSubscriptionID,
	"resourceid":                       fResourceID,
	"compromisedentity":                fCompromisedEntity,
	"alertdisplayname":                 fAlertDisplayName,
	"alertname":                        fAlertName,
	"displayname":                      fDisplayName,
	"description":                      fDescription,
	"entities":                         fEntities,
	"resourceidentifiers":              fResourceIdentifiers,
	"remediationsteps":                 fRemediationSteps,
	"extendedproperties":               fExtendedProperties,
	"alerturi":                         fAlertURI,
	"alertlink":                        fAlertLink,
	"techniques":                       fTechniques,
	"subtechniques":                    fSubTechniques,
	"id":                               fID,
	"name":                             fName,
	"type":                             fType,
	"$type":                            fDollarType,
	"properties":                       fProperties,
	"assessmenteventdataenrichment":    fAssessmentEnrichment,
	"subassessmenteventdataenrichment": fSubAssessmentEnrichment,
	"securityeventdataenrichment":      fSecurityEnrichment,
	"resourcedetails":                  fResourceDetails,
	"metadata":                         fMetadata,
	"code":                             fCode,
	"statuschangedate":                 fStatusChangeDate,
	"state":                            fState,
	"category":                         fCategory,
	"operationname":                    fOperationName,
	"eventtimestamp":                   fEventTimestamp,
	"time":                             fTime,
	"subscriptionid":                   fSubscriptionID,
	"level":                            fLevel,
	"eventname":                        fEventName,
	"value":                            fValue,
	"eventdataid":                      fEventDataID,
	"correlationid":                    fCorrelationID,
	"eventproperties":                  fEventProperties,
	"$id":                              fDollarID,
	"$ref":                             fDollarRef,
	"records":                          fRecords,
	"@odata.type":                      fODataType,
	"provideralertid":                  fProviderAlertID,
	"servicesource":                    fServiceSource,
	"lastupdatedatetime":               fLastUpdateDateTime,
}

// maxFieldName is the longest name in fieldIndex; longer keys cannot match.
const maxFieldName = 32

type fieldName struct {
	lower string
	id    int
}

// fieldsByLen groups fieldIndex by name length, so that a key is compared with the few names
// of its length instead of being lower-cased and hashed.
var fieldsByLen = func() [maxFieldName + 1][]fieldName {
	var t [maxFieldName + 1][]fieldName
	for name, id := range fieldIndex {
		t[len(name)] = append(t[len(name)], fieldName{name, id})
	}
	return t
}()

// fieldOf returns the field id of an object key given as jsonx.EachMember passes it, or -1.
func fieldOf(raw []byte, esc bool) int {
	if esc {
		raw = []byte(jsonx.DecodeKey(raw, esc))
	}
	if len(raw) > maxFieldName {
		return -1
	}
	for _, f := range fieldsByLen[len(raw)] {
		if equalFoldLower(raw, f.lower) {
			return f.id
		}
	}
	return -1
}

// equalFoldLower reports whether b equals the lower-case ASCII name lower, ignoring the
// case of ASCII letters in b.
func equalFoldLower(b []byte, lower string) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// fieldSet holds the raw value of every wanted member of one object; a later member with the
// same name (in any case) replaces an earlier one, as encoding/json does.
type fieldSet [numFields][]byte

// collect scans the object obj into fs. A value that is not an object leaves fs empty, which
// is how wrong JSON types are ignored.
func (fs *fieldSet) collect(obj []byte) error {
	*fs = fieldSet{}
	if len(obj) == 0 || obj[0] != '{' {
		return nil
	}
	_, err := jsonx.EachMember(obj, 0, func(key, val []byte, esc bool) {
		if id := fieldOf(key, esc); id >= 0 {
			fs[id] = val
		}
	})
	return err
}

// str returns the text of field id: a string's value, a number's or a boolean's JSON text
// (ids are sometimes written as numbers), or "" when the field is absent, null, an array or
// an object.
func (fs *fieldSet) str(id int) string {
	return scalarText(fs[id])
}

// scalarText is str for one raw JSON value.
func scalarText(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	switch c := v[0]; {
	case c == '"':
		s, _ := jsonx.DecodeString(v)
		return s
	case c == 't' || c == 'f' || c == '-' || c >= '0' && c <= '9':
		return string(v)
	}
	return ""
}

// present reports whether field id is there with a value other than null.
func (fs *fieldSet) present(id int) bool {
	v := fs[id]
	return len(v) > 0 && v[0] != 'n'
}

// first returns the first non-empty string among the fields ids.
func (fs *fieldSet) first(ids ...int) string {
	for _, id := range ids {
		if s := fs.str(id); s != "" {
			return s
		}
	}
	return ""
}

// strOrValue returns a string field, or the "value" member when the field is an Activity Log
// localizable object such as {"value":"Security","localizedValue":"Security"}.
func (fs *fieldSet) strOrValue(id int) string {
	v := fs[id]
	if len(v) > 0 && v[0] == '{' {
		var inner fieldSet
		if inner.collect(v) != nil {
			return ""
		}
		return inner.str(fValue)
	}
	return fs.str(id)
}
