package alert

import (
	"bytes"
	"cmp"
	"errors"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/jsonx"
)

// ScannedEntity is an entity as ScanEntities reads it: its type (lower-cased, as
// Entity.Type) and the JSON value of each field asked for, in the order asked, as written (nil
// when absent). ScannedFirst reads the texts, so that only the entities of the types asked
// for have theirs decoded.
type ScannedEntity struct {
	Type   string
	Values [][]byte
}

// ScanEntities reads the named fields of every entity in EntitiesJSON straight from the JSON,
// without building the maps DecodeEntities builds: the entities in the order EntityValues
// visits them (the list's own, then the ones written inside them), each with
// Values[i] = the value of fields[i], whose text ScannedFirst reads as EntityValues does.
// It is for formats that want a few values of a large alert.
//
// An element of the list that is a {"$ref":…} stands for the entity it names, as in
// DecodeEntities. ScanEntities reports false when the list needs what only DecodeEntities
// does: a list that is not well-formed, nesting past scanDepthLimit, more ids or references
// than scanRefLimit, a cycle of references, or references whose expansion could reach
// expandBudget (where DecodeEntities starts keeping them as written). The caller then decodes
// the entities; a fuzz test holds the two to the same values.
func (a *Alert) ScanEntities(fields ...string) ([]ScannedEntity, bool) {
	v := a.EntitiesJSON
	start, end := jsonx.Trim(v)
	if start >= end || v[start] != '[' {
		return nil, true
	}
	s := scans.Get().(*entityScan)
	defer s.release()
	s.reset(fields, v[:end])
	if stop, err := s.value(start, 0); err != nil || stop != end || !s.resolve() {
		// Not well-formed (DecodeEntities gives no entities then), or past what the walk does.
		return nil, false
	}
	out := make([]ScannedEntity, 0, len(s.top)+len(s.nested))
	for _, it := range s.top {
		switch {
		case it.ref < 0:
			out = append(out, it.ent)
		case s.refs[it.ref].target >= 0:
			out = append(out, s.defs[s.refs[it.ref].target].ent)
		default:
			// A reference to no entity stays {"$ref":…}, which has no type.
			out = append(out, ScannedEntity{Values: make([][]byte, len(fields))})
		}
	}
	return append(out, s.nested...), true
}

// scans keeps the walks' working lists between calls: CEF scans every large alert, and
// growing them again each time was half of a scan's allocations.
var scans = sync.Pool{New: func() any { return new(entityScan) }}

// reset readies a pooled scan for the list root and the names fields, keeping its lists'
// room, and the name table when it was built for the same names.
func (s *entityScan) reset(fields []string, root []byte) {
	if !slices.Equal(s.fields, fields) {
		s.fields = append(s.fields[:0], fields...)
		s.names = append(append(s.names[:0], fields...), "Type")
		s.byLen, s.slowNames = [64]uint64{}, false
		for k, name := range s.names {
			if k < 64 && len(name) < len(s.byLen) && isASCII([]byte(name)) {
				s.byLen[len(name)] |= 1 << k
			} else {
				s.slowNames = true
			}
		}
	}
	s.root = root
	s.top, s.nested, s.defs, s.refs = s.top[:0], s.nested[:0], s.defs[:0], s.refs[:0]
	s.count, s.objects = 0, 0 // release cleared the stack's matches
	s.slab = nil              // handed out with the entities
}

// release drops what the scan saw, so that a pooled scan keeps no alert alive, and pools it.
func (s *entityScan) release() {
	clear(s.top)
	clear(s.nested)
	clear(s.defs)
	clear(s.refs)
	clear(s.stack)
	s.root, s.slab = nil, nil
	scans.Put(s)
}

// scanDepthLimit keeps ScanEntities well inside maxEntityDepth, past which DecodeEntities
// keeps values as raw JSON; scanRefLimit bounds the quadratic work of resolve.
const (
	scanDepthLimit = maxEntityDepth - 4
	scanRefLimit   = 1 << 10
)

type entityScan struct {
	fields []string
	root   []byte
	top    []scanItem
	nested []ScannedEntity
	stack  []fieldMatch // names' matches of the object being read at each depth (see object)
	names  []string     // fields, then "Type"
	byLen  [64]uint64   // bit k set at index len(names[k]): the names an ASCII key can equal
	// slowNames is set when a name is not in byLen (non-ASCII, long, or past 64 names).
	slowNames bool
	objects   uint32    // objects started, which tells a fieldMatch of this object from a stale one
	defs      []scanDef // objects with an $id, in the order they end
	refs      []scanRef // {"$ref":…} objects, in document order
	count     int       // JSON values seen, as DecodeEntities counts them against expandBudget
	slab      [][]byte  // backs the entities' Values (see values)
	byID      []int32   // resolve's order of defs
}

// scanItem is an element of the list: an entity, or the reference refs[ref].
type scanItem struct {
	ent ScannedEntity
	ref int
}

type scanDef struct {
	id         string
	start, end int // span in root
	values     int // JSON values in the span
	ent        ScannedEntity
	state      int8 // of resolve's walk: 0 new, 1 being sized, 2 sized
	size       int  // at most what DecodeEntities' expansion of it can reach
}

type scanRef struct {
	id     string
	start  int
	target int // index in defs, or -1
}

// errScanLimit stops a walk that went past what ScanEntities does.
var errScanLimit = errors.New("past the scan's limits")

// value walks the value at root[i], found at depth (the list is depth 0, its elements 1), and
// returns the index past it. Objects and arrays are walked with jsonx's member cursor rather
// than jsonx.WalkMembers, so that a member costs no call through a closure.
func (s *entityScan) value(i, depth int) (int, error) {
	d := s.root
	s.count++
	if depth > scanDepthLimit || len(s.refs) > scanRefLimit || len(s.defs) > scanRefLimit {
		return i, errScanLimit
	}
	if i < len(d) {
		switch d[i] {
		case '{':
			return s.object(i, depth)
		case '[':
			return s.array(i, depth)
		}
	}
	return jsonx.Skip(d, i, depth)
}

func (s *entityScan) array(i, depth int) (int, error) {
	d := s.root
	i, empty := jsonx.Open(d, i)
	if empty {
		return i, nil
	}
	for {
		ve, err := s.value(i, depth+1)
		if err != nil {
			return ve, err
		}
		next, closed, err := jsonx.AfterMember(d, ve, ']')
		if err != nil || closed {
			return next, err
		}
		i = next
	}
}

// fieldMatch follows fieldValue over the map DecodeEntities builds: the last member named
// exactly, else the last member of the smallest key equal to the name in any case. It holds
// the match of object number obj; one left from an earlier object reads as no match, so that
// a depth's matches are reused without being cleared for every object.
type fieldMatch struct {
	exact, fold []byte
	foldKey     []byte // decoded
	folded      bool
	obj         uint32
}

func (m *fieldMatch) offer(obj uint32, name string, key, val []byte, ascii bool) {
	if ascii && len(key) != len(name) {
		return // ASCII folding keeps lengths
	}
	exact := string(key) == name
	if !exact && !foldEqual(key, name) {
		return
	}
	if m.obj != obj {
		*m = fieldMatch{obj: obj}
	}
	switch {
	case exact:
		m.exact = val
	case !m.folded || bytes.Compare(key, m.foldKey) <= 0:
		m.foldKey, m.fold, m.folded = key, val, true
	}
}

func (m *fieldMatch) value(obj uint32) []byte {
	switch {
	case m.obj != obj:
		return nil
	case m.exact != nil:
		return m.exact
	}
	return m.fold
}

// foldEqual is strings.EqualFold for a decoded key, without converting the key when it is
// ASCII (Unicode folding can pair names of different lengths, so those take the slow way).
func foldEqual(key []byte, name string) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return strings.EqualFold(string(key), name)
		}
	}
	if len(key) != len(name) {
		return false
	}
	for i, c := range key {
		if lowerASCII(c) != lowerASCII(name[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// object reads the object at root[i] as DecodeEntities' object does: a lone string $ref
// member makes it a reference, a string $id a definition, a string type member a nested
// entity below depth 1. Its field matches live on s.stack at its depth's place, by index,
// since walking a member's value may grow the stack; objects at one depth are read one after
// the other, so they can share that place.
func (s *entityScan) object(i, depth int) (int, error) {
	d := s.root
	start, countBefore := i, s.count-1
	n := len(s.names) // the last one is "Type"
	base := depth * n
	if len(s.stack) < base+n {
		// Entities nest a few levels deep: room for eight at once, then append's doubling.
		if s.stack == nil {
			s.stack = make([]fieldMatch, 0, 8*n)
		}
		s.stack = append(s.stack, make([]fieldMatch, base+n-len(s.stack))...)
	}
	s.objects++
	obj := s.objects
	var m objectMembers
	end, closed := jsonx.Open(d, i) // an empty object is closed at once
	for i = end; !closed; {
		key, esc, vs, err := jsonx.MemberKey(d, i)
		if err != nil {
			return vs, err
		}
		ve, err := s.value(vs, depth+1)
		if err != nil {
			return ve, err
		}
		if esc {
			key = []byte(jsonx.DecodeKey(key, esc))
		}
		s.member(key, d[vs:ve], base, obj, &m)
		if i, closed, err = jsonx.AfterMember(d, ve, '}'); err != nil {
			return i, err
		}
		end = i
	}
	matches := s.stack[base : base+n]
	if m.isRef && m.count == 1 {
		s.refs = append(s.refs, scanRef{id: m.ref, start: start, target: -1})
		if depth == 1 {
			s.top = append(s.top, scanItem{ref: len(s.refs) - 1})
		}
		return end, nil
	}
	if depth > 1 && !m.hasType && !m.hasID {
		return end, nil // neither an entity nor a definition: its fields are nobody's
	}
	ent := ScannedEntity{
		Type: lowerType(matches[n-1].value(obj)), Values: s.values(matches, obj),
	}
	if depth == 1 {
		s.top = append(s.top, scanItem{ent: ent, ref: -1})
	} else if m.hasType {
		s.nested = append(s.nested, ScannedEntity{Type: lowerType(m.typ), Values: ent.Values})
	}
	if m.hasID {
		s.defs = append(s.defs, scanDef{id: m.id, start: start, end: end, values: s.count - countBefore, ent: ent})
	}
	return end, nil
}

// objectMembers is what object keeps of an object's members besides the field matches.
type objectMembers struct {
	count   int
	ref, id string
	typ     []byte // the last type member's value, read only if the object is a nested entity
	isRef   bool
	hasID   bool
	hasType bool
}

// member offers the member key (decoded) with the value val to the names' matches at base,
// and notes a type, $ref or $id in m.
func (s *entityScan) member(key, val []byte, base int, obj uint32, m *objectMembers) {
	m.count++
	ascii := isASCII(key)
	switch {
	case !ascii || s.slowNames:
		for k, name := range s.names {
			s.stack[base+k].offer(obj, name, key, val, ascii)
		}
	case len(key) < len(s.byLen): // an ASCII key longer than that equals no name
		for b := s.byLen[len(key)]; b != 0; b &= b - 1 {
			k := bits.TrailingZeros64(b)
			s.stack[base+k].offer(obj, s.names[k], key, val, true)
		}
	}
	// type, $ref and $id: an ASCII key of another length is none of them.
	if val[0] != '"' || len(key) < 3 || (ascii && len(key) > 4) {
		return
	}
	switch {
	case foldEqual(key, "type"):
		m.typ = val
		m.hasType = true
	case key[0] != '$':
	case foldEqual(key, "$ref"):
		m.ref, _ = jsonx.DecodeString(val)
		m.isRef = true
	case foldEqual(key, "$id"):
		m.id, _ = jsonx.DecodeString(val)
		m.hasID = true
	}
}

// resolve finds each reference's definition as DecodeEntities does (the latest one finished
// before the reference, else the last one), and reports false unless DecodeEntities' budget
// can never refuse a link: the values of the list plus, for every reference, twice an upper
// bound of its target's expanded size (once inside its container, once in the running
// total) must stay within expandBudget. A cycle of references has no bound.
func (s *entityScan) resolve() bool {
	if len(s.refs) == 0 {
		return true
	}
	// defs end in the order they were appended, so among the definitions of one id the later
	// index is the later end: sorting them by id, then index, makes both searches binary.
	byID := s.byID[:0]
	for i := range s.defs {
		byID = append(byID, int32(i))
	}
	s.byID = byID
	slices.SortFunc(byID, func(a, b int32) int {
		if c := strings.Compare(s.defs[a].id, s.defs[b].id); c != 0 {
			return c
		}
		return int(a - b)
	})
	for r := range s.refs {
		ref := &s.refs[r]
		lo, _ := slices.BinarySearchFunc(byID, ref.id, func(i int32, id string) int { return strings.Compare(s.defs[i].id, id) })
		hi := lo
		for hi < len(byID) && s.defs[byID[hi]].id == ref.id {
			hi++
		}
		ref.target = -1
		if lo == hi {
			continue
		}
		same := byID[lo:hi]
		// The first of them ending after the reference starts; the one before it, if any, is
		// the latest finished before it.
		k, _ := slices.BinarySearchFunc(same, ref.start, func(i int32, start int) int {
			if s.defs[i].end <= start {
				return -1
			}
			return 1
		})
		if k > 0 {
			ref.target = int(same[k-1])
		} else {
			ref.target = int(same[len(same)-1])
		}
	}
	total := s.count
	for _, ref := range s.refs {
		if ref.target < 0 {
			continue
		}
		n, ok := s.size(ref.target)
		if !ok {
			return false
		}
		total += 2 * n
		if total > expandBudget {
			return false
		}
	}
	return true
}

// size bounds the expanded size of defs[i]: its own values, with each reference inside it
// replaced by its target's bound.
func (s *entityScan) size(i int) (int, bool) {
	def := &s.defs[i]
	switch def.state {
	case 1:
		return 0, false
	case 2:
		return def.size, true
	}
	def.state = 1
	n := def.values
	// refs are in document order, and none holds another: those inside def are a run.
	first, _ := slices.BinarySearchFunc(s.refs, def.start, func(r scanRef, start int) int { return cmp.Compare(r.start, start) })
	for _, ref := range s.refs[first:] {
		if ref.start >= def.end {
			break
		}
		if ref.target < 0 {
			continue
		}
		t, ok := s.size(ref.target)
		if !ok || n > expandBudget {
			return 0, false
		}
		n += t
	}
	def.state, def.size = 2, n
	return n, true
}

// values puts the matched fields' values in a slice carved from one slab per scan: a large
// alert has dozens of entities, and a slice each was a tenth of CEF's allocations.
func (s *entityScan) values(matches []fieldMatch, obj uint32) [][]byte {
	n := len(s.fields)
	if cap(s.slab)-len(s.slab) < n {
		s.slab = make([][]byte, 0, 16*n)
	}
	l := len(s.slab)
	out := s.slab[l : l+n : l+n]
	s.slab = s.slab[:l+n]
	for i := range s.fields {
		out[i] = matches[i].value(obj)
	}
	return out
}

// lowerType is strings.ToLower(scalarText(v)) for an entity's type member, without an
// allocation for the types Defender writes: those arrive lower-case and unescaped.
func lowerType(v []byte) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		if t, ok := entityTypes[string(v[1:len(v)-1])]; ok {
			return t
		}
	}
	return strings.ToLower(scalarText(v))
}

// entityTypes are entity types that Defender for Cloud and Defender XDR alerts carry. The
// list is only a cache: a type missing from it reads the same, with an allocation.
var entityTypes = func() map[string]string {
	m := map[string]string{}
	for _, t := range []string{
		"account", "host", "ip", "file", "filehash", "process", "url", "dns", "malware",
		"network-connection", "registry-key", "registry-value", "security-group",
		"cloud-application", "cloud-logon-session", "azure-resource", "gcp-resource",
		"aws-resource", "mailbox", "mail-message", "mailcluster", "submission-mail",
		"iot-device", "blob", "blob-container", "container", "container-image",
		"container-registry", "k8s-cluster", "k8s-namespace", "k8s-pod", "k8s-service",
		"k8s-deployment", "k8s-replicaset", "k8s-secret", "k8s-serviceaccount",
		"location", "hostlogonsession",
	} {
		m[t] = t
	}
	return m
}()

// ScannedFirst is what EntityValues(entityType, names...) lists first among the values that
// accept (nil: any) takes, over entities read by ScanEntities, fields being indexes into the
// names given to it; "" when there is none. It decodes no value past the one it returns: a
// format has room for one value of a type.
func ScannedFirst(ents []ScannedEntity, entityType string, accept func(string) bool, fields ...int) string {
	for _, e := range ents {
		if !strings.EqualFold(e.Type, entityType) {
			continue
		}
		for _, f := range fields {
			if v := scalarText(e.Values[f]); v != "" && (accept == nil || accept(v)) {
				return v
			}
		}
	}
	return ""
}
