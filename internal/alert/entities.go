package alert

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/jsonx"
)

// Entities use .NET reference handling: an object carrying "$id":"N" may be referred to
// elsewhere in the same alert by {"$ref":"N"}. Real exports repeat ids (lists merged from
// several alerts), point at ids that are not there, and nothing stops a hostile record from
// building cycles or reference chains that multiply on expansion. So a reference resolves to
// the nearest object with that id that precedes it in the document (else the last one after
// it), and the referenced object is shared, not copied. A reference is kept as written when
// its id is missing, when resolving it would make an object contain itself, or when it would
// take the expanded size of the entities (what a walk or an encoder visits) past a budget.

// maxEntityDepth bounds how deep entity values are decoded into Go values; anything deeper
// is kept as its compact JSON text in a json.RawMessage, which re-encodes unchanged.
const maxEntityDepth = 64

// expandBudget bounds the expanded size, in JSON values, of one alert's entities: far above
// what a real alert needs (a few thousand), far below what would stall an encoder.
const expandBudget = 1 << 17

// refNode is a {"$ref":…} object awaiting resolution.
type refNode struct {
	key    string // the "$ref" key as written, to keep an unresolved reference as it was
	id     string
	target int // index in entityDecoder.objs, or -1
}

// idObj is an object that carries an "$id".
type idObj struct {
	m          map[string]any
	start, end int  // the object's span in the entities' text, which tells nesting
	state      int8 // 0 unresolved, 1 resolving, 2 resolved
	size       int  // expanded size once resolved
}

// contains reports whether o is, or textually encloses, p.
func (o *idObj) contains(p *idObj) bool { return o.start <= p.start && p.end <= o.end }

type entityDecoder struct {
	src     string // the entities' JSON text; decoded strings are slices of it
	objs    []*idObj
	defs    map[string]int
	pending []*refNode
	active  []*idObj // objects being resolved, innermost last
	total   int      // expanded size linked so far, against expandBudget
	nested  []typedMap
	scratch []member // members of the objects being decoded
}

type member struct {
	k string
	v any
}

// typedMap is an entity written inside another one.
type typedMap struct {
	typ string
	m   map[string]any
}

// entitiesJSON returns the JSON array of an Entities value: the value itself, or the text of
// a string holding one (the Log Analytics shape); nil for anything else.
func entitiesJSON(v []byte) []byte {
	if inner := jsonInString(v); inner != nil {
		v = inner
	}
	if len(v) == 0 || v[0] != '[' {
		return nil
	}
	return v
}

// DecodeEntities sets Entities and NestedEntities from EntitiesJSON, resolving references,
// for an alert parsed with Options.SkipEntities (Parse otherwise does it). Elements that are
// not objects are skipped; EntitiesJSON that is not a well-formed JSON array gives no
// entities. It changes a, so call it before a is shared between goroutines.
func (a *Alert) DecodeEntities() {
	a.Entities, a.NestedEntities = decodeEntities(a.EntitiesJSON)
}

func decodeEntities(v []byte) (entities, nested []Entity) {
	start, end := jsonx.Trim(v)
	if start >= end || v[start] != '[' {
		return nil, nil
	}
	if stop, err := jsonx.Skip(v[:end], start, 0); err != nil || stop != end {
		return nil, nil
	}
	v = v[start:end]
	// One string for the whole list, so that keys and values without escapes are slices of
	// it instead of one allocation each.
	d := &entityDecoder{src: string(v), defs: map[string]int{}}
	list, _ := d.decode(v, 0, 0)
	items, _ := list.([]any)
	for _, r := range d.pending {
		if t, ok := d.defs[r.id]; ok {
			r.target = t
		}
	}
	for _, it := range items {
		x, n := d.resolve(it)
		d.total += n
		if m, ok := x.(map[string]any); ok {
			entities = append(entities, Entity{Type: strings.ToLower(stringField(m, "Type")), Fields: m})
		}
	}
	for _, n := range d.nested {
		nested = append(nested, Entity{Type: strings.ToLower(n.typ), Fields: n.m})
	}
	return entities, nested
}

// str returns the decoded JSON string d[i:end] (quotes included).
func (dec *entityDecoder) str(d []byte, i, end int, esc bool) string {
	if !esc && end-i >= 2 {
		content := d[i+1 : end-1]
		if isASCII(content) || utf8.Valid(content) {
			return dec.src[i+1 : end-1]
		}
	}
	s, _ := jsonx.DecodeString(d[i:end])
	return s
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// decode turns the well-formed JSON value at d[i] into Go values (map[string]any, []any,
// string, json.Number, bool, nil, and the private idObj and refNode until resolution) in
// one pass, and returns the index past it.
func (dec *entityDecoder) decode(d []byte, i, depth int) (any, int) {
	i = jsonx.SkipSpace(d, i)
	if i >= len(d) {
		return nil, len(d)
	}
	if depth > maxEntityDepth {
		end, err := jsonx.Skip(d, i, 0)
		if err != nil {
			return nil, len(d)
		}
		out := jsonx.AppendStripped(make([]byte, 0, end-i), d[i:end])
		return json.RawMessage(out), end
	}
	switch c := d[i]; c {
	case '"':
		end, esc, err := jsonx.SkipString(d, i)
		if err != nil {
			return nil, len(d)
		}
		return dec.str(d, i, end, esc), end
	case '{':
		return dec.object(d, i, depth)
	case '[':
		arr := []any{}
		i = jsonx.SkipSpace(d, i+1)
		if i < len(d) && d[i] == ']' {
			return arr, i + 1
		}
		for i < len(d) {
			var v any
			v, i = dec.decode(d, i, depth+1)
			arr = append(arr, v)
			i = jsonx.SkipSpace(d, i)
			if i >= len(d) || d[i] != ',' {
				break
			}
			i++
		}
		return arr, i + 1
	case 't':
		return true, i + 4
	case 'f':
		return false, i + 5
	case 'n':
		return nil, i + 4
	default:
		end, err := jsonx.Skip(d, i, depth)
		if err != nil {
			return nil, len(d)
		}
		return json.Number(dec.src[i:end]), end
	}
}

func (dec *entityDecoder) object(d []byte, i, depth int) (any, int) {
	start := i
	// Members are gathered first so that the map is made at its final size, and not at all
	// for a reference.
	mark := len(dec.scratch)
	var refKey, refID, id, typ string
	isRef, hasID, hasType := false, false, false
	i = jsonx.SkipSpace(d, i+1)
	if i < len(d) && d[i] == '}' {
		return map[string]any{}, i + 1
	}
	for i < len(d) {
		ke, esc, err := jsonx.SkipString(d, i)
		if err != nil {
			i = len(d)
			break
		}
		k := dec.str(d, i, ke, esc)
		i = jsonx.SkipSpace(d, ke) + 1 // past the colon
		var v any
		v, i = dec.decode(d, i, depth+1)
		dec.scratch = append(dec.scratch, member{k, v})
		if s, ok := v.(string); ok {
			switch {
			case len(k) == 4 && strings.EqualFold(k, "type"):
				typ, hasType = s, true
			case len(k) < 3 || k[0] != '$':
			case strings.EqualFold(k, "$ref"):
				refKey, refID, isRef = k, s, true
			case strings.EqualFold(k, "$id"):
				id, hasID = s, true
			}
		}
		i = jsonx.SkipSpace(d, i)
		if i >= len(d) || d[i] != ',' {
			break
		}
		i = jsonx.SkipSpace(d, i+1)
	}
	end := i + 1
	members := dec.scratch[mark:]
	if isRef && len(members) == 1 {
		dec.scratch = dec.scratch[:mark]
		r := &refNode{key: refKey, id: refID, target: -1}
		if t, ok := dec.defs[refID]; ok {
			r.target = t
		} else {
			dec.pending = append(dec.pending, r)
		}
		return r, end
	}
	m := make(map[string]any, len(members))
	for _, mb := range members {
		m[mb.k] = mb.v
	}
	clear(members)
	dec.scratch = dec.scratch[:mark]
	// Objects inside the list's elements (depth 1) that name a type are nested entities.
	if hasType && depth > 1 {
		dec.nested = append(dec.nested, typedMap{typ, m})
	}
	if hasID {
		o := &idObj{m: m, start: start, end: end}
		dec.objs = append(dec.objs, o)
		dec.defs[id] = len(dec.objs) - 1
		return o, end
	}
	return m, end
}

// child resolves one value held by a map or a slice; replace says whether the container must
// hold nc in its place (an $id object or a reference) rather than keep it (a map or slice is
// resolved in place).
func (dec *entityDecoder) child(c any) (nc any, replace bool, n int) {
	switch c.(type) {
	case map[string]any, []any:
		_, n = dec.resolve(c)
		return c, false, n
	case *idObj, *refNode:
		nc, n = dec.resolve(c)
		return nc, true, n
	}
	return c, false, 1
}

// resolve replaces, in place, every idObj and refNode inside v by the map it stands for and
// returns v's replacement with its expanded size.
//
// The result has no cycles: a reference is linked only to a fully resolved object that does
// not enclose any object still being resolved, and a resolved object never gains links. An
// object can only come to contain itself through a reference to itself or to an object
// enclosing it, which is what the enclosure test refuses.
func (dec *entityDecoder) resolve(v any) (any, int) {
	switch x := v.(type) {
	case map[string]any:
		n := 1
		for k, c := range x {
			nc, replace, cn := dec.child(c)
			if replace {
				x[k] = nc
			}
			n += cn
		}
		return x, n
	case []any:
		n := 1
		for i, c := range x {
			nc, replace, cn := dec.child(c)
			if replace {
				x[i] = nc
			}
			n += cn
		}
		return x, n
	case *idObj:
		// Reached where it is written: part of its container whatever its state.
		dec.resolveObj(x)
		return x.m, x.size
	case *refNode:
		kept := map[string]any{x.key: x.id}
		if x.target < 0 {
			return kept, 2
		}
		t := dec.objs[x.target]
		for _, a := range dec.active {
			if t.contains(a) {
				return kept, 2
			}
		}
		dec.resolveObj(t)
		if t.state != 2 || dec.total+t.size > expandBudget {
			return kept, 2
		}
		dec.total += t.size
		return t.m, t.size
	}
	return v, 1
}

func (dec *entityDecoder) resolveObj(o *idObj) {
	if o.state != 0 {
		return
	}
	o.state = 1
	dec.active = append(dec.active, o)
	_, o.size = dec.resolve(o.m)
	dec.active = dec.active[:len(dec.active)-1]
	o.state = 2
}

// fieldValue returns the value of m's member name, matching the name exactly first and then
// in any letter case (the smallest such key, so that the choice does not depend on map order).
func fieldValue(m map[string]any, name string) (any, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	var best string
	found := false
	for k := range m {
		if strings.EqualFold(k, name) && (!found || k < best) {
			best, found = k, true
		}
	}
	if !found {
		return nil, false
	}
	return m[best], true
}

// stringField returns m's member name as text when it is a string, number or boolean.
func stringField(m map[string]any, name string) string {
	v, ok := fieldValue(m, name)
	if !ok {
		return ""
	}
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return string(x)
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	return ""
}

// EntityValues returns the distinct non-empty values of the given fields (names matched in
// any letter case) of the alert's entities of type entityType (also in any case), in order:
// Entities first, entity by entity and field by field, then NestedEntities. Typical uses:
//
//	a.EntityValues("ip", "Address")
//	a.EntityValues("host", "HostName", "NetBiosName")
//	a.EntityValues("account", "Name")
//	a.EntityValues("process", "CommandLine")
//	a.EntityValues("file", "Name")
//	a.EntityValues("filehash", "Value")
//	a.EntityValues("url", "Url")
func (a *Alert) EntityValues(entityType string, fields ...string) []string {
	if a == nil {
		return nil
	}
	var out []string
	for _, list := range [2][]Entity{a.Entities, a.NestedEntities} {
		for _, e := range list {
			if !strings.EqualFold(e.Type, entityType) {
				continue
			}
			for _, f := range fields {
				s := stringField(e.Fields, f)
				if s != "" && !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
		}
	}
	return out
}
