package alert

import (
	"bytes"
	"encoding/json"
	"slices"
	"sort"
	"strings"

	"github.com/defender-siem/forwarder/internal/jsonx"
)

// The Graph Security API's alert (alerts_v2) is a different object from the export's alert:
// camelCase Graph names, lower-case enum values, evidence instead of entities, and the XDR
// verdict (classification, determination) that the export does not carry. It is normalised
// into the same Alert so that every format renders it; what has no place there goes into
// ExtendedProperties under its Graph name.

const (
	graphAlertODataType = "#microsoft.graph.security.alert"
	graphTypePrefix     = "#microsoft.graph.security."
)

// isGraphAlert tells a Graph alert by its @odata.type or, when a client dropped the
// annotations, by members only Graph alerts have together: serviceSource with providerAlertId
// or lastUpdateDateTime.
func isGraphAlert(top *fieldSet) bool {
	if strings.EqualFold(top.str(fODataType), graphAlertODataType) {
		return true
	}
	return isString(top[fServiceSource]) && (isString(top[fProviderAlertID]) || isString(top[fLastUpdateDateTime]))
}

// graphExtended are the Graph members kept in ExtendedProperties, under their Graph names.
var graphExtended = []string{
	"actorDisplayName", "assignedTo", "category", "classification", "createdDateTime",
	"detectionSource", "detectorId", "determination", "id", "incidentId", "incidentWebUrl",
	"lastUpdateDateTime", "productName", "providerAlertId", "resolvedDateTime", "serviceSource",
	"tenantId", "threatDisplayName", "threatFamilyName",
}

// graphMembers holds an object's members by lower-cased name; a later duplicate replaces an
// earlier one.
type graphMembers map[string][]byte

func collectGraph(obj []byte) graphMembers {
	m := graphMembers{}
	if len(obj) == 0 || obj[0] != '{' {
		return m
	}
	_, _ = jsonx.EachMember(obj, 0, func(key, val []byte, esc bool) {
		m[strings.ToLower(jsonx.DecodeKey(key, esc))] = val
	})
	return m
}

func (m graphMembers) str(name string) string { return scalarText(m[strings.ToLower(name)]) }

func parseGraphAlert(obj []byte, rec *Record, opt Options) {
	m := collectGraph(obj)
	a := &Alert{}
	a.SystemAlertID = m.str("providerAlertId")
	if a.SystemAlertID == "" {
		a.SystemAlertID = m.str("id")
	}
	a.AlertType = m.str("detectorId")
	a.DisplayName = m.str("title")
	a.Severity = ParseSeverity(m.str("severity"))
	a.Status = graphStatus(m.str("status"))
	a.StartTime, _ = chooseTime(timeSource{v: m["firstactivitydatetime"]})
	a.EndTime, _ = chooseTime(timeSource{v: m["lastactivitydatetime"]})
	a.TimeGenerated, _ = chooseTime(timeSource{v: m["createddatetime"]})
	a.Description = m.str("description")
	if s := m.str("recommendedActions"); s != "" {
		a.RemediationSteps = []string{s}
	}
	if c := m.str("category"); c != "" {
		a.Intent = []string{c}
	}
	a.Techniques, a.SubTechniques = splitTechniques(stringList(m["mitretechniques"], false))
	a.AlertURI = m.str("alertWebUrl")
	a.VendorName = "Microsoft"
	a.ProductName = m.str("productName")
	if a.ProductName == "" {
		a.ProductName = m.str("serviceSource")
	}
	a.ProductComponent = m.str("detectionSource")
	a.ExtendedProperties = map[string]string{}
	for _, k := range graphExtended {
		if v := m.str(k); v != "" {
			a.ExtendedProperties[k] = v
		}
	}
	if tags := stringList(m["systemtags"], false); len(tags) > 0 {
		a.ExtendedProperties["systemTags"] = strings.Join(tags, ", ")
	}
	ev := graphEvidence(m["evidence"])
	a.ResourceID, a.CompromisedEntity = ev.resourceID, ev.compromised
	a.SubscriptionID = subscriptionFromID(a.ResourceID)
	a.EntitiesJSON = ev.entities
	if !opt.SkipEntities {
		a.DecodeEntities()
	}

	rec.Alert = a
	rec.ID = m.str("id")
	if rec.ID == "" {
		rec.ID = a.SystemAlertID
	}
	fillRecordFromAlert(rec, a)
	// A Graph alert changes in place: its time is that of the version, its last update.
	rec.Time, rec.TimeFallback = chooseTime(timeSource{"lastUpdateDateTime", m["lastupdatedatetime"]}, timeSource{"createdDateTime", m["createddatetime"]})
}

// graphStatus writes Graph's status values in the export's words (new is Active, as the
// export's New is reported), so that filters and lifecycle mappings read both the same.
func graphStatus(s string) string {
	switch strings.ToLower(s) {
	case "new":
		return "Active"
	case "inprogress":
		return "InProgress"
	case "resolved":
		return "Resolved"
	}
	return s
}

// splitTechniques separates MITRE technique ids (T1564) from sub-technique ids (T1564.001),
// adding each sub-technique's parent, as the export lists them.
func splitTechniques(ids []string) (techniques, subs []string) {
	for _, id := range ids {
		parent, _, isSub := strings.Cut(id, ".")
		if isSub {
			subs = append(subs, id)
		}
		if parent != "" && !slices.Contains(techniques, parent) {
			techniques = append(techniques, parent)
		}
	}
	return techniques, subs
}

type graphEvidenceInfo struct {
	entities    []byte // the evidence as entities (JSON array), nil when there is none
	resourceID  string
	compromised string
}

// graphEvidenceTypes maps an evidence type (its @odata.type without the namespace and the
// "Evidence" suffix, lower-cased) to the entity type the export uses for the same thing, and
// the members that fill the export's names: the formats look entities up by those.
var graphEvidenceTypes = map[string]struct {
	typ    string
	fields [][2]string // export name, Graph path (dot-separated)
}{
	"ip":            {"ip", [][2]string{{"Address", "ipAddress"}}},
	"device":        {"host", [][2]string{{"HostName", "deviceDnsName"}, {"AzureID", "vmMetadata.resourceId"}}},
	"user":          {"account", [][2]string{{"Name", "userAccount.accountName"}, {"NTDomain", "userAccount.domainName"}, {"UPNSuffix", "userAccount.userPrincipalName"}}},
	"file":          {"file", [][2]string{{"Name", "fileDetails.fileName"}, {"Directory", "fileDetails.filePath"}}},
	"process":       {"process", [][2]string{{"CommandLine", "processCommandLine"}, {"ProcessId", "processId"}}},
	"url":           {"url", [][2]string{{"Url", "url"}}},
	"azureresource": {"azure-resource", [][2]string{{"ResourceId", "resourceId"}}},
	"mailbox":       {"mailbox", [][2]string{{"MailboxPrimaryAddress", "primaryAddress"}}},
	"registrykey":   {"registry-key", [][2]string{{"Key", "registryKey"}, {"Hive", "registryHive"}}},
}

// graphEvidence turns alerts_v2 evidence into entities in the export's terms: each evidence
// object keeps its Graph members and gains Type and the export's names for what it
// identifies. It also finds the alert's Azure resource and its compromised entity.
func graphEvidence(v []byte) graphEvidenceInfo {
	var info graphEvidenceInfo
	var list []map[string]any
	if len(v) == 0 || v[0] != '[' {
		return info
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var items []any
	if dec.Decode(&items) != nil {
		return info
	}
	for _, it := range items {
		ev, ok := it.(map[string]any)
		if !ok {
			continue
		}
		odt, _ := getFold(ev, "@odata.type").(string)
		short := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(odt, graphTypePrefix), "Evidence"))
		out := make(map[string]any, len(ev)+3)
		for k, x := range ev {
			out[k] = x
		}
		typ := short
		if t, ok := graphEvidenceTypes[short]; ok {
			typ = t.typ
			for _, f := range t.fields {
				if x := pathValue(ev, f[1]); x != nil {
					out[f[0]] = x
				}
			}
		}
		if typ == "" {
			typ = "unknown"
		}
		out["Type"] = typ
		if info.resourceID == "" {
			if s, ok := out["ResourceId"].(string); ok {
				info.resourceID = s
			} else if s, ok := out["AzureID"].(string); ok {
				info.resourceID = s
			}
		}
		if info.compromised == "" && hasRole(ev, "compromised") {
			for _, k := range []string{"HostName", "resourceName", "Name", "Address"} {
				if s, ok := out[k].(string); ok && s != "" {
					info.compromised = s
					break
				}
			}
		}
		list = append(list, out)
	}
	if len(list) == 0 {
		return info
	}
	// encoding/json writes map keys sorted, so the same evidence always makes the same text.
	b, err := json.Marshal(list)
	if err == nil {
		info.entities = b
	}
	return info
}

// getFold returns m's member named key in any letter case (an exact match first): names are
// matched case-insensitively everywhere else in the parser too.
func getFold(m map[string]any, key string) any {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

// pathValue returns the scalar at a dot-separated path in m, or nil.
func pathValue(m map[string]any, path string) any {
	var cur any = m
	for _, p := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = getFold(mm, p)
	}
	switch x := cur.(type) {
	case string:
		if x == "" {
			return nil
		}
		return x
	case json.Number:
		return x
	}
	return nil
}

func hasRole(ev map[string]any, role string) bool {
	roles, _ := getFold(ev, "roles").([]any)
	for _, r := range roles {
		if s, ok := r.(string); ok && strings.EqualFold(s, role) {
			return true
		}
	}
	return false
}

// GraphExtendedKeys lists the ExtendedProperties keys a Graph alert may carry, sorted, for
// documentation and tests.
func GraphExtendedKeys() []string {
	keys := append(slices.Clone(graphExtended), "systemTags")
	sort.Strings(keys)
	return keys
}
