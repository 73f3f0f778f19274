package alert

import (
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Entities use .NET reference handling: an object carrying "$id":"N" may be referred to
// elsewhere in the same alert by {"$ref":"N"}. Real exports repeat ids (lists merged from
// several alerts), point at ids that are not there, and nothing stops a hostile record from
// building cycles or reference chains that multiply on expansion. So a reference resolves to
// the nearest object with that id that precedes it in the document (else the last one after
// it); a reference to a missing id, or one that would make the structure contain itself, or
// one met after the expansion budget is spent, is kept as written.

// maxEntityDepth bounds how deep entity values are decoded into Go values; anything deeper
// is kept as its compact JSON text in a json.RawMessage, which re-encodes unchanged.
const maxEntityDepth = 64

// expandBudget bounds the work spent resolving references in one alert, far above what a
// real alert needs (a few hundred nodes).
const expandBudget = 1 << 17

// refNode is a {"$ref":…} object awaiting resolution.
type refNode struct {
	key    string // the "$ref" key as written, to keep an unresolved reference as it was
	id     string
	target int // index in entityDecoder.objs, or -1
}

// idObj is an object that carries an "$id", so that expansion knows which objects it is
// inside of and can refuse references back to them.
type idObj struct {
	m   map[string]any
	idx int
}

type entityDecoder struct {
	objs    []*idObj
	defs    map[string]int
	pending []*refNode
	budget  int
}

// parseEntities decodes an Entities value: a JSON array, or a string holding one.
func parseEntities(v []byte) []Entity {
	if inner := jsonInString(v); inner != nil {
		v = inner
	}
	if len(v) == 0 || v[0] != '[' {
		return nil
	}
	d := &entityDecoder{defs: map[string]int{}, budget: expandBudget}
	list, _ := d.decode(v, 0, 0)
	items, _ := list.([]any)
	for _, r := range d.pending {
		if t, ok := d.defs[r.id]; ok {
			r.target = t
		}
	}
	var out []Entity
	for _, it := range items {
		x, _ := d.expand(it, nil)
		m, ok := x.(map[string]any)
		if !ok {
			continue
		}
		out = append(out, Entity{Type: strings.ToLower(stringField(m, "Type")), Fields: m})
	}
	return out
}

// decode turns the well-formed JSON value at d[i] into Go values (map[string]any, []any,
// string, json.Number, bool, nil) in one pass and returns the index past it.
func (dec *entityDecoder) decode(d []byte, i, depth int) (any, int) {
	i = skipWS(d, i)
	if i >= len(d) {
		return nil, len(d)
	}
	if depth > maxEntityDepth {
		end, err := skipValue(d, i, 0)
		if err != nil {
			return nil, len(d)
		}
		var buf strings.Builder
		_ = compactTo(&buf, d[i:end])
		return json.RawMessage(buf.String()), end
	}
	switch c := d[i]; c {
	case '"':
		end, _, err := skipString(d, i)
		if err != nil {
			return nil, len(d)
		}
		s, _ := decodeString(d[i:end])
		return s, end
	case '{':
		return dec.object(d, i, depth)
	case '[':
		arr := []any{}
		i = skipWS(d, i+1)
		if i < len(d) && d[i] == ']' {
			return arr, i + 1
		}
		for i < len(d) {
			var v any
			v, i = dec.decode(d, i, depth+1)
			arr = append(arr, v)
			i = skipWS(d, i)
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
		end, err := skipNumber(d, i)
		if err != nil {
			return nil, len(d)
		}
		return json.Number(d[i:end]), end
	}
}

func (dec *entityDecoder) object(d []byte, i, depth int) (any, int) {
	m := map[string]any{}
	var refKey, refID, id string
	isRef, hasID := false, false
	i = skipWS(d, i+1)
	if i < len(d) && d[i] == '}' {
		return m, i + 1
	}
	for i < len(d) {
		ke, esc, err := skipString(d, i)
		if err != nil {
			return m, len(d)
		}
		rawKey := d[i+1 : ke-1]
		k := decodeKey(rawKey, esc)
		i = skipWS(d, ke) + 1 // past the colon
		vs := skipWS(d, i)
		var v any
		v, i = dec.decode(d, vs, depth+1)
		m[k] = v
		if s, ok := v.(string); ok {
			switch fieldOf(rawKey, esc) {
			case fDollarRef:
				refKey, refID, isRef = k, s, true
			case fDollarID:
				id, hasID = s, true
			}
		}
		i = skipWS(d, i)
		if i >= len(d) || d[i] != ',' {
			break
		}
		i = skipWS(d, i+1)
	}
	end := i + 1
	if isRef && len(m) == 1 {
		r := &refNode{key: refKey, id: refID, target: -1}
		if t, ok := dec.defs[refID]; ok {
			r.target = t
		} else {
			dec.pending = append(dec.pending, r)
		}
		return r, end
	}
	if hasID {
		o := &idObj{m: m, idx: len(dec.objs)}
		dec.objs = append(dec.objs, o)
		dec.defs[id] = o.idx
		return o, end
	}
	return m, end
}

// expand returns v with references resolved, copying only the maps and slices on the way to
// a reference, and reports whether the result differs from v.
func (dec *entityDecoder) expand(v any, inside []int) (any, bool) {
	dec.budget--
	switch x := v.(type) {
	case map[string]any:
		var out map[string]any
		for k, c := range x {
			if nc, changed := dec.expand(c, inside); changed {
				if out == nil {
					out = maps.Clone(x)
				}
				out[k] = nc
			}
		}
		if out == nil {
			return x, false
		}
		return out, true
	case []any:
		var out []any
		for i, c := range x {
			if nc, changed := dec.expand(c, inside); changed {
				if out == nil {
					out = slices.Clone(x)
				}
				out[i] = nc
			}
		}
		if out == nil {
			return x, false
		}
		return out, true
	case *idObj:
		m, _ := dec.expand(x.m, append(inside, x.idx))
		return m, true
	case *refNode:
		if x.target < 0 || dec.budget <= 0 || slices.Contains(inside, x.target) {
			return map[string]any{x.key: x.id}, true
		}
		return dec.expand(dec.objs[x.target], inside)
	}
	return v, false
}

func compactTo(b *strings.Builder, raw []byte) error {
	var buf = make([]byte, 0, len(raw))
	out, err := appendCompact(buf, raw)
	if err != nil {
		return err
	}
	b.Write(out)
	return nil
}

// appendCompact appends raw (well-formed JSON) without insignificant whitespace.
func appendCompact(dst, raw []byte) ([]byte, error) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '"':
			end, _, err := skipString(raw, i)
			if err != nil {
				return dst, err
			}
			dst = append(dst, raw[i:end]...)
			i = end - 1
		default:
			dst = append(dst, c)
		}
	}
	return dst, nil
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

// maxEntityWalk bounds how deep EntityValues looks for entities nested in other entities.
const maxEntityWalk = 16

// EntityValues returns the distinct non-empty values of the given fields (names matched in
// any letter case) of the alert's entities of type entityType (also in any case), in order:
// the alert's own entity list first, entity by entity and field by field, then entities
// nested inside them (an ip inside a dns entity, a filehash inside a file). Typical uses:
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
	add := func(m map[string]any) {
		for _, f := range fields {
			s := stringField(m, f)
			if s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	for _, e := range a.Entities {
		if strings.EqualFold(e.Type, entityType) {
			add(e.Fields)
		}
	}
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if depth > maxEntityWalk {
			return
		}
		switch x := v.(type) {
		case map[string]any:
			if strings.EqualFold(stringField(x, "Type"), entityType) {
				add(x)
			}
			for _, k := range sortedKeys(x) {
				walk(x[k], depth+1)
			}
		case []any:
			for _, c := range x {
				walk(c, depth+1)
			}
		}
	}
	for _, e := range a.Entities {
		for _, k := range sortedKeys(e.Fields) {
			walk(e.Fields[k], 1)
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
