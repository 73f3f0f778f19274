package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/jsonx"
)

func addSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	files = append(files, filepath.Join("testdata", "elastic_mdc_eventhub_test-alert.log"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "[]", `{"records":[]}`, "\xEF\xBB\xBF{}", `[{"records":[{"AlertType":"a","SystemAlertId":"b"}]},1,"x"]`,
		`{"AlertType":"a","SystemAlertId":"b","Entities":[{"$id":"1","x":{"$ref":"1"}},{"$ref":"1"},{"$ref":"2"}]}`,
		`{"AlertType":"a","SystemAlertId":"b","Entities":"[{\"$id\":\"1\"}]","Intent":"[\"x\"]"}`,
		`{"AlertType":"a","SystemAlertId":"b","Entities":[{"$ref":"2"},{"$id":"1","c":{"$id":"2","p":{"$ref":"1"}}}]}`,
		`{"category":"Security","operationName":"x","properties":{"eventProperties":"{\"severity\":\"High\"}"}}`,
		`{"records":[{"a":1}],"records":[{"b":2}]}`, `{"a":1}{`, "[1,2",
	} {
		f.Add([]byte(s))
	}
}

// FuzzSplit checks that Split never panics, agrees with encoding/json about what is JSON, and
// returns records that are well-formed sub-slices of the message.
func FuzzSplit(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		recs, err := Split(msg)
		trimmed := msg
		if bytes.HasPrefix(trimmed, []byte("\xEF\xBB\xBF")) {
			trimmed = trimmed[3:]
		}
		if valid := json.Valid(trimmed); valid != (err == nil) {
			t.Fatalf("Split error %v, but encoding/json says valid=%v", err, valid)
		}
		if err != nil {
			if !errors.Is(err, ErrUndecodable) || recs != nil {
				t.Fatalf("error %v with %d records", err, len(recs))
			}
			return
		}
		for i, r := range recs {
			if !json.Valid(r) {
				t.Fatalf("record %d is not valid JSON: %q", i, r)
			}
			if !subSlice(msg, r) {
				t.Fatalf("record %d is not a sub-slice of the message", i)
			}
		}
		// ParseMessage reads a message of one record in one pass; it must give what
		// splitting and then parsing gives.
		parsed, perr := ParseMessage(msg)
		if perr != nil || len(parsed) != len(recs) {
			t.Fatalf("ParseMessage: %d records, %v; Split gave %d", len(parsed), perr, len(recs))
		}
		for i, r := range recs {
			want, err := Parse(r, i)
			if err != nil || !reflect.DeepEqual(parsed[i], want) {
				t.Fatalf("record %d: ParseMessage gave %+v, Split and Parse %+v (%v)", i, parsed[i], want, err)
			}
		}
	})
}

// FuzzParse checks that Parse never panics, never fails on well-formed JSON, keeps the raw
// bytes, produces a model that encodes (no cycles, no unencodable values), and reads the
// values encoding/json reads (checkAgainstReference).
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		rec, err := Parse(raw, 1)
		valid := json.Valid(bytes.TrimPrefix(raw, []byte("\xEF\xBB\xBF")))
		if valid && err != nil {
			t.Fatalf("Parse of valid JSON failed: %v", err)
		}
		if !valid && !errors.Is(err, ErrUndecodable) {
			t.Fatalf("Parse of invalid JSON: %v", err)
		}
		if !bytes.Equal(rec.Raw, raw) || rec.Index != 1 {
			t.Fatal("Raw or Index not kept")
		}
		if err != nil {
			return
		}
		// A record marked compact is copied, not compacted, by every format that forwards it:
		// the copy must be what compacting it gives, and what encoding/json's Compact gives.
		if rec.RawCompact {
			if got, ok := jsonx.AppendCompact(nil, raw); !ok || !bytes.Equal(got, raw) {
				t.Fatalf("RawCompact, but AppendCompact writes %q", got)
			}
			var std bytes.Buffer
			if json.Compact(&std, raw) != nil || !bytes.Equal(std.Bytes(), raw) || !utf8.Valid(raw) {
				t.Fatalf("RawCompact, but json.Compact writes %q", std.Bytes())
			}
		}
		if (rec.Alert != nil) != (rec.Kind == KindAlert || rec.Kind == KindActivityLogAlert || rec.Kind == KindGraphAlert) {
			t.Fatalf("Alert set for kind %s", rec.Kind)
		}
		if rec.Alert != nil {
			if _, err := json.Marshal(rec.Alert); err != nil {
				t.Fatalf("alert does not encode: %v", err)
			}
			_ = rec.Alert.EntityValues("ip", "Address")
		}
		checkAgainstReference(t, raw, rec)
		checkSummary(t, raw, rec)
	})
}

// checkSummary holds a SummaryOnly parse to the full one on what it promises to keep.
func checkSummary(t *testing.T, raw []byte, full Record) {
	t.Helper()
	sum, err := Options{SummaryOnly: true}.Parse(raw, 1)
	if err != nil {
		t.Fatalf("SummaryOnly parse failed where the full one did not: %v", err)
	}
	if sum.Kind != full.Kind || sum.ID != full.ID || !sum.Time.Equal(full.Time) || sum.TimeFallback != full.TimeFallback ||
		sum.Severity != full.Severity || sum.Status != full.Status || sum.SubscriptionID != full.SubscriptionID ||
		sum.ResourceID != full.ResourceID || !bytes.Equal(sum.Raw, full.Raw) || sum.RawCompact != full.RawCompact {
		t.Fatalf("SummaryOnly record\n%+v\nfull\n%+v", sum, full)
	}
	if (sum.Alert == nil) != (full.Alert == nil) {
		t.Fatal("SummaryOnly parse differs in having an alert")
	}
	if a, b := sum.Alert, full.Alert; a != nil {
		if a.SystemAlertID != b.SystemAlertID || a.AlertType != b.AlertType || a.Severity != b.Severity ||
			a.Status != b.Status || !a.StartTime.Equal(b.StartTime) || !a.TimeGenerated.Equal(b.TimeGenerated) ||
			a.ResourceID != b.ResourceID || a.SubscriptionID != b.SubscriptionID || !bytes.Equal(a.EntitiesJSON, b.EntitiesJSON) {
			t.Fatalf("SummaryOnly alert\n%+v\nfull\n%+v", *a, *b)
		}
	}
}

// refMembers reads the JSON object raw with encoding/json, member by member in order, and
// keeps the last value of each name lower-cased in ASCII, as the parser matches names. It
// returns nil when raw is not an object.
func refMembers(raw []byte) map[string]json.RawMessage {
	d := json.NewDecoder(bytes.NewReader(bytes.TrimPrefix(raw, []byte("\xEF\xBB\xBF"))))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	out := map[string]json.RawMessage{}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil
		}
		out[asciiLower(tok.(string))] = v
	}
	return out
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// refText is the text the model keeps of a member: a string's value, a number's or a
// boolean's JSON text, "" otherwise.
func refText(v json.RawMessage) string {
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var x any
	if len(v) == 0 || d.Decode(&x) != nil {
		return ""
	}
	switch y := x.(type) {
	case string:
		return y
	case json.Number:
		return string(y)
	case bool:
		return strconv.FormatBool(y)
	}
	return ""
}

// refAlert is what encoding/json reads of the alert fields of one object (the record, or its
// properties for the ARM shape).
func refAlert(m map[string]json.RawMessage) map[string]string {
	first := func(names ...string) string {
		for _, n := range names {
			if s := refText(m[n]); s != "" {
				return s
			}
		}
		return ""
	}
	status := refText(m["status"])
	if strings.EqualFold(status, "New") {
		status = "Active"
	}
	return map[string]string{
		"AlertType": refText(m["alerttype"]), "DisplayName": first("alertdisplayname", "alertname", "displayname"),
		"Severity": ParseSeverity(first("severity", "alertseverity", "reportedseverity")).String(),
		"Status":   status, "Description": refText(m["description"]), "VendorName": refText(m["vendorname"]),
		"ProductName": refText(m["productname"]), "ProductComponent": refText(m["productcomponentname"]),
		"CompromisedEntity": refText(m["compromisedentity"]),
	}
}

func modelAlert(a *Alert) map[string]string {
	return map[string]string{
		"AlertType": a.AlertType, "DisplayName": a.DisplayName, "Severity": a.Severity.String(),
		"Status": a.Status, "Description": a.Description, "VendorName": a.VendorName,
		"ProductName": a.ProductName, "ProductComponent": a.ProductComponent,
		"CompromisedEntity": a.CompromisedEntity,
	}
}

// checkAgainstReference compares what Parse read of a record with what encoding/json reads
// of the same bytes.
func checkAgainstReference(t *testing.T, raw []byte, rec Record) {
	top := refMembers(raw)
	if top == nil {
		if rec.Kind != KindUnknown {
			t.Fatalf("a value that is not an object parsed as %s", rec.Kind)
		}
		return
	}
	props := refMembers(top["properties"])
	switch rec.Kind {
	case KindAlert:
		// The alert's fields come from the record itself (flat shape) or from its properties
		// (ARM shape): all of them from one of the two.
		got := modelAlert(rec.Alert)
		flat := refAlert(top)
		if !reflect.DeepEqual(got, flat) && (props == nil || !reflect.DeepEqual(got, refAlert(props))) {
			t.Fatalf("alert fields %q, encoding/json reads %q (flat) or properties %q", got, flat, refAlert(props))
		}
		src := top
		if !reflect.DeepEqual(got, flat) {
			src = props
		}
		if id := refText(src["systemalertid"]); id != "" && (rec.Alert.SystemAlertID != id || rec.ID != id) {
			t.Fatalf("SystemAlertID %q, ID %q; encoding/json reads %q", rec.Alert.SystemAlertID, rec.ID, id)
		}
		// A time encoding/json's RFC 3339 reader takes must come out the same.
		if s, ok := refTextOK(src["timegenerated"]); ok {
			if want, err := time.Parse(time.RFC3339Nano, s); err == nil && !rec.Alert.TimeGenerated.Equal(want) {
				t.Fatalf("TimeGenerated %v, time.Parse reads %q as %v", rec.Alert.TimeGenerated, s, want)
			}
		}
		if s, ok := refTextOK(src["starttimeutc"]); ok {
			if want, err := time.Parse(time.RFC3339Nano, s); err == nil && !rec.Alert.StartTime.Equal(want) {
				t.Fatalf("StartTime %v, time.Parse reads %q as %v", rec.Alert.StartTime, s, want)
			}
		}
	case KindRecommendation, KindSubAssessment, KindSecureScore, KindSecureScoreControl, KindRegulatoryCompliance:
		if id := refText(top["id"]); rec.ID != id {
			t.Fatalf("ID %q, encoding/json reads %q", rec.ID, id)
		}
		if rec.Kind == KindSecureScore || rec.Kind == KindSecureScoreControl {
			if want := refText(props["displayname"]); rec.DisplayName != want {
				t.Fatalf("DisplayName %q, encoding/json reads %q", rec.DisplayName, want)
			}
		}
	case KindUnknown:
		if rec.ID != "" || rec.DisplayName != "" || !rec.Time.IsZero() {
			t.Fatalf("unknown record with fields: %+v", rec)
		}
	}
}

// refTextOK is refText for a member that is a JSON string.
func refTextOK(v json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// FuzzDecodeEntities compares the entity decoder with encoding/json (numbers as
// json.Number): the same entities, value for value, whenever no reference is resolved, and
// never a cycle or a value that does not encode.
func FuzzDecodeEntities(f *testing.F) {
	for _, name := range []string{"elastic_eventhub_alert.json", "mdc_readme_alert.json"} {
		var m struct{ Entities json.RawMessage }
		if err := json.Unmarshal(readTestdata(f, name), &m); err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(m.Entities))
	}
	addEntitySeeds(f)
	f.Fuzz(func(t *testing.T, v []byte) {
		ents, nested := decodeEntities(v)
		var ref []any
		d := json.NewDecoder(bytes.NewReader(v))
		d.UseNumber()
		err := d.Decode(&ref)
		if err == nil {
			// decodeEntities takes only a whole document, as json.Unmarshal does.
			if _, e := d.Token(); e != io.EOF {
				err = errors.New("data after the array")
			}
		}
		if err != nil || !json.Valid(v) {
			if ents != nil || nested != nil {
				t.Fatalf("entities from what encoding/json refuses as an array: %v", err)
			}
			return
		}
		var objs []map[string]any
		for _, el := range ref {
			if m, ok := el.(map[string]any); ok {
				objs = append(objs, m)
			}
		}
		if len(ents) != len(objs) {
			t.Fatalf("%d entities, encoding/json reads %d objects", len(ents), len(objs))
		}
		if _, err := json.Marshal(struct{ E, N []Entity }{ents, nested}); err != nil {
			t.Fatalf("entities do not encode: %v", err)
		}
		if hasRef(ref) {
			return
		}
		for i, e := range ents {
			b, err := json.Marshal(e.Fields)
			if err != nil {
				t.Fatal(err)
			}
			var back map[string]any
			d := json.NewDecoder(bytes.NewReader(b))
			d.UseNumber()
			if err := d.Decode(&back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, objs[i]) {
				t.Fatalf("entity %d = %v, encoding/json reads %v", i, back, objs[i])
			}
			if typ, ok := objs[i]["Type"].(string); ok && e.Type != strings.ToLower(typ) {
				t.Fatalf("entity %d Type %q, want %q", i, e.Type, strings.ToLower(typ))
			}
		}
	})
}

// hasRef reports whether v holds a {"$ref": "<id>"} object, which the decoder resolves.
func hasRef(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if _, ok := c.(string); ok && len(x) == 1 && strings.EqualFold(k, "$ref") {
				return true
			}
			if hasRef(c) {
				return true
			}
		}
	case []any:
		for _, c := range x {
			if hasRef(c) {
				return true
			}
		}
	}
	return false
}

// FuzzParseEpoch holds the epoch reader to exact rational arithmetic: a JSON number is
// seconds, or milliseconds from 1e11 on, truncated to the nanosecond.
func FuzzParseEpoch(f *testing.F) {
	for _, s := range []string{"0", "-0", "1683811029", "1683811029.017", "1683811029017", "1.683811029017e9",
		"-1.5", "99999999999", "100000000000", "253402300799", "253402300800", "253402300799999", "1e-20",
		"1e00001", "0.000000001", "12.3456789012345", "1E+2", "-0.0e0", "00", "1.", ".5", "1e", "--1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseEpoch(s)
		isNumber := json.Valid([]byte(s)) && len(s) > 0 && (s[0] == '-' || isDigit(s[0])) && !strings.ContainsAny(s, " \t\r\n")
		if !isNumber {
			if ok {
				t.Fatalf("parseEpoch(%q) = %v, but it is no JSON number", s, got)
			}
			return
		}
		r, exact := new(big.Rat).SetString(s)
		if !exact {
			return // an exponent too large for big.Rat: nothing to compare with
		}
		abs := new(big.Rat).Abs(r)
		scale := big.NewRat(1e9, 1)
		if abs.Cmp(big.NewRat(epochMillisFrom, 1)) >= 0 {
			scale = big.NewRat(1e6, 1)
		}
		ns := new(big.Rat).Mul(r, scale)
		total := new(big.Int).Quo(ns.Num(), ns.Denom()) // truncated toward zero
		sec, nsec := new(big.Int).QuoRem(total, big.NewInt(1e9), new(big.Int))
		if sec.CmpAbs(big.NewInt(maxEpochSeconds)) > 0 {
			if ok {
				t.Fatalf("parseEpoch(%q) = %v, past the year 9999", s, got)
			}
			return
		}
		want := time.Unix(sec.Int64(), nsec.Int64()).UTC()
		if !ok || !got.Equal(want) {
			t.Fatalf("parseEpoch(%q) = %v, %v; want %v", s, got, ok, want)
		}
	})
}

// FuzzParseTimestamp holds the timestamp reader to time.Parse: where time.Parse reads RFC
// 3339 (with or without a zone), the reader reads the same instant; where the reader reads
// the RFC 3339 subset time.Parse knows (upper-case T and Z, second below 60, at most nine
// fractional digits), time.Parse agrees.
func FuzzParseTimestamp(f *testing.F) {
	for _, tc := range timeForms {
		if s, ok := refTextOK(json.RawMessage(tc.json)); ok {
			f.Add(s)
		}
	}
	f.Add("2023-05-11T13:15:45.1234567891Z")
	f.Add("0000-01-01T0:00:00Z")
	f.Add("2024-02-29T23:59:60+23:59")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseTimestamp(s)
		if ok && got.Location() != time.UTC {
			t.Fatalf("parseTimestamp(%q) not in UTC", s)
		}
		ref, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			ref, err = time.ParseInLocation(layoutNoZone, s, time.UTC)
		}
		if err == nil && ok && !got.Equal(ref) {
			t.Fatalf("parseTimestamp(%q) = %v; time.Parse reads %v", s, got, ref)
		}
		if ok && err != nil && strictSubset(s) {
			t.Fatalf("parseTimestamp(%q) = %v; time.Parse refuses it: %v", s, got, err)
		}
	})
}

// strictSubset reports whether s uses only what time.Parse's RFC 3339 layouts accept: 'T',
// 'Z' or a ±hh:mm offset, a second below 60, one to nine fractional digits.
func strictSubset(s string) bool {
	if len(s) < 19 || s[10] != 'T' || s[17:19] >= "60" {
		return false
	}
	rest := s[19:]
	if strings.HasPrefix(rest, ".") {
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		if n-1 > 9 {
			return false
		}
		rest = rest[n:]
	}
	return rest == "" || rest == "Z" || len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':'
}

func addEntitySeeds(f *testing.F) {
	for _, s := range []string{
		`[]`, `[1,"x",null,{}]`, `[{"Type":"ip","Address":"10.0.0.1","n":1.50e3}]`,
		`[{"$id":"1","Type":"host"},{"$ref":"1"},{"$REF":"2"}]`, `[{"a":{"$ref":"1"}},{"$id":"1","b":[{"$ref":"1"}]}]`,
		`[{"a":1,"a":2,"A":3}]`, `[{"s":"\u00e9\ud83d\ude00\ufffd","bad":"` + "\xff" + `"}]`,
		`[{"deep":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}]`, `[{"x":{"Type":"file","Name":"a"}}]`,
		`{"not":"an array"}`, `[{"a":1}`, ` [ { "a" : [ 1 , 2 ] } ] `,
	} {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`[{"Type":"host","HostName":"h1","hostname":"h2"},{"TYPE":"Host","netbiosname":"n","HOSTNAME":"h3"}]`,
		`[{"$id":"1","Type":"ip","Address":"10.0.0.1"},{"Type":"process","Host":{"$id":"2","Type":"host","HostName":"inner","Account":{"Type":"account","Name":"deep"}}}]`,
		`[{"Type":"url","Url":7},{"Type":"url","Url":true},{"Type":"url","Url":null},{"Type":5,"Url":"x"},[{"type":"url","url":"in-array"}]]`,
		`[{"Type":"file","Name":"a\u0041","Name":"b"},{"type":"file","type":"ip","Address":"::1"}]`,
		`[{"a":{"$ref":"1","Type":"host","HostName":"with-ref"}},{"$ref":"x"}]`,
	} {
		f.Add([]byte(s))
	}
}

// entityQueries are what CEF asks of entities, and some letter cases besides.
var entityQueries = []struct {
	typ    string
	fields []int
}{{"ip", []int{0}}, {"host", []int{1, 2}}, {"account", []int{3}}, {"file", []int{3}}, {"url", []int{4}}, {"HOST", []int{2, 1}}, {"process", []int{3, 0}}}

var entityFieldNames = []string{"Address", "HostName", "NetBiosName", "Name", "Url"}

// ScanEntities reads values from the entity list without decoding it; where it says it can,
// it must find what DecodeEntities and EntityValues find.
func FuzzScanEntities(f *testing.F) {
	addEntitySeeds(f)
	f.Fuzz(func(t *testing.T, list []byte) {
		a := &Alert{EntitiesJSON: list}
		ents, ok := a.ScanEntities(entityFieldNames...)
		if !ok {
			return
		}
		ref := &Alert{EntitiesJSON: list}
		ref.DecodeEntities()
		for _, q := range entityQueries {
			var names []string
			for _, i := range q.fields {
				names = append(names, entityFieldNames[i])
			}
			got, want := ScannedValues(ents, q.typ, q.fields...), ref.EntityValues(q.typ, names...)
			if !slices.Equal(got, want) {
				t.Fatalf("%s %v: ScanEntities %q, DecodeEntities %q", q.typ, names, got, want)
			}
			odd := func(v string) bool { return len(v)%2 == 1 }
			wantAny, wantOdd := "", ""
			if len(want) > 0 {
				wantAny = want[0]
			}
			if i := slices.IndexFunc(want, odd); i >= 0 {
				wantOdd = want[i]
			}
			if got := ScannedFirst(ents, q.typ, nil, q.fields...); got != wantAny {
				t.Fatalf("%s %v: ScannedFirst %q, want %q", q.typ, names, got, wantAny)
			}
			if got := ScannedFirst(ents, q.typ, odd, q.fields...); got != wantOdd {
				t.Fatalf("%s %v: ScannedFirst of odd length %q, want %q", q.typ, names, got, wantOdd)
			}
		}
		// Scans are pooled: one asking for other names, in another order, must not see the
		// names or the matches of the one before.
		other, ok := a.ScanEntities("Url", "Name")
		if !ok {
			t.Fatal("ScanEntities with fewer names refused what it read with more")
		}
		for _, q := range []struct {
			typ   string
			field int
			name  string
		}{{"url", 0, "Url"}, {"file", 1, "Name"}, {"account", 1, "Name"}} {
			if got, want := ScannedValues(other, q.typ, q.field), ref.EntityValues(q.typ, q.name); !slices.Equal(got, want) {
				t.Fatalf("%s %s after another scan: %q, want %q", q.typ, q.name, got, want)
			}
		}
	})
}

// The real export with entities (27 of them, $id and $ref throughout, one element of the list a
// reference) takes the scanning path, and it finds what decoding finds.
func TestScanEntitiesSamples(t *testing.T) {
	for _, name := range []string{"elastic_eventhub_alert.json"} {
		rec, err := Options{SkipEntities: true}.Parse(readTestdata(t, name), 0)
		if err != nil || rec.Alert == nil || rec.Alert.EntitiesJSON == nil {
			t.Fatalf("%s: %v", name, err)
		}
		ents, ok := rec.Alert.ScanEntities(entityFieldNames...)
		if !ok || len(ents) == 0 {
			t.Fatalf("%s: ScanEntities ok=%v, %d entities", name, ok, len(ents))
		}
		ref := *rec.Alert
		ref.DecodeEntities()
		for _, q := range entityQueries {
			var names []string
			for _, i := range q.fields {
				names = append(names, entityFieldNames[i])
			}
			if got, want := ScannedValues(ents, q.typ, q.fields...), ref.EntityValues(q.typ, names...); !slices.Equal(got, want) {
				t.Errorf("%s: %s %v: %q, want %q", name, q.typ, names, got, want)
			}
		}
		if hosts := ScannedValues(ents, "host", 1); len(hosts) == 0 {
			t.Errorf("%s: no host names found", name)
		}
	}
}
