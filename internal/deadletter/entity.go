package deadletter

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/sink"
)

// Azure Table storage limits. Azurite enforces only some of them (it measures entities in UTF-8
// and does not count properties), so the encoder enforces all of them itself.
const (
	// maxEntityBytes is Azure's entity limit, measured with entitySize.
	maxEntityBytes = 1 << 20
	// entityMargin keeps every entity clear of the limit: the published size formula is an
	// estimate, and entities measured by it have been refused some tens of bytes short of 1 MiB.
	entityMargin = 4 << 10
	// maxBodyBytes bounds an entity's JSON body. Azure does not count the body, but Azurite
	// refuses an entity whose JSON body exceeds 1 MiB in UTF-8, where base64 makes binary data
	// a third larger; keeping both limits lets the same entities work on both.
	maxBodyBytes = 1<<20 - entityMargin
	// maxBinaryBytes is the largest binary property.
	maxBinaryBytes = 64 << 10
	// maxStringUnits is the largest string property, in UTF-16 code units.
	maxStringUnits = 32 << 10
	// maxProperties is the number of custom properties an entity may carry (PartitionKey,
	// RowKey and Timestamp are not counted).
	maxProperties = 252
	// maxKeyUnits is the largest PartitionKey or RowKey, in UTF-16 code units (1 KiB).
	maxKeyUnits = 512
	// chunkBytes is the size of one payload property.
	chunkBytes = maxBinaryBytes
	// maxPayloadBytes is the largest payload Get will inflate, far above the largest Event
	// Hubs message (20 MiB on Dedicated), so a corrupt size cannot make it allocate without
	// bound.
	maxPayloadBytes = 256 << 20
	// maxErrorLenLimit bounds Config.MaxErrorLen well inside one string property.
	maxErrorLenLimit = 16 << 10
	// partSeparator joins a letter's id and a continuation number. '~' sorts after every
	// character a derived id uses, so a letter's main entity comes before its continuations.
	partSeparator = "~"
)

// Encodings of the stored payload.
const (
	encodingIdentity = "identity"
	encodingGzip     = "gzip"
)

// Errors callers can test for with errors.Is.
var (
	// ErrNotFound means no letter has that destination and id.
	ErrNotFound = errors.New("deadletter: letter not found")
	// ErrCorrupt means a stored letter cannot be read back whole: a chunk or continuation is
	// missing, or the payload's size or SHA-256 does not match what was written.
	ErrCorrupt = errors.New("deadletter: stored letter is corrupt")
	// ErrInvalidLetter means a letter cannot be stored as given (a destination or id that is
	// not a valid key). Retrying cannot help.
	ErrInvalidLetter = errors.New("deadletter: invalid letter")
)

// Property names of stored entities.
const (
	propPart          = "Part"
	propKind          = "Kind"
	propReason        = "Reason"
	propError         = "Error"
	propAttempts      = "Attempts"
	propFirstFailure  = "FirstFailure"
	propLastFailure   = "LastFailure"
	propParked        = "Parked"
	propEHPartition   = "EventHubPartition"
	propSequence      = "SequenceNumber"
	propOffset        = "Offset"
	propEnqueued      = "EnqueuedTime"
	propIndex         = "RecordIndex"
	propAlertID       = "AlertId"
	propSeverity      = "Severity"
	propPayloadSize   = "PayloadSize"
	propPayloadSHA256 = "PayloadSHA256"
	propEncoding      = "PayloadEncoding"
	propStoredSize    = "StoredSize"
	propChunks        = "Chunks"
	propParts         = "Parts"
	chunkPrefix       = "Payload"
)

// summaryProps are the properties List selects: everything but the payload chunks.
var summaryProps = []string{
	"PartitionKey", "RowKey", propPart, propKind, propReason, propError, propAttempts,
	propFirstFailure, propLastFailure, propParked, propEHPartition, propSequence, propOffset,
	propEnqueued, propIndex, propAlertID, propSeverity, propPayloadSize, propPayloadSHA256,
}

// Caps on metadata strings that come from the record, which an attacker may control.
const (
	maxShortString = 256
	maxAlertID     = 1024
)

type propKindT uint8

const (
	kString propKindT = iota
	kInt32
	kInt64
	kBool
	kTime
	kBinary
)

// property is one typed entity property.
type property struct {
	name string
	kind propKindT
	str  string
	num  int64
	flag bool
	when time.Time
	bin  []byte
}

// entity is one Table storage entity, properties in a fixed order so the JSON is deterministic.
type entity struct {
	pk, rk string
	props  []property
}

// utf16Len is how many UTF-16 code units s takes once JSON-encoded (invalid UTF-8 bytes become
// U+FFFD, one unit each).
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// size is the entity's size as Azure counts it: 4 bytes, the keys in UTF-16, and for every
// property 8 bytes, its name in UTF-16 and its value (strings in UTF-16 plus 4, binary plus 4).
func (e *entity) size() int {
	n := 4 + 2*(utf16Len(e.pk)+utf16Len(e.rk))
	for i := range e.props {
		n += propSize(&e.props[i])
	}
	return n
}

func propSize(p *property) int {
	n := 8 + 2*utf16Len(p.name)
	switch p.kind {
	case kString:
		n += 4 + 2*utf16Len(p.str)
	case kInt32:
		n += 4
	case kInt64, kTime:
		n += 8
	case kBool:
		n++
	case kBinary:
		n += 4 + len(p.bin)
	}
	return n
}

// check enforces every Azure limit on the entity, including those Azurite lets through.
func (e *entity) check() error {
	var errs []error
	for _, k := range [...]struct{ name, v string }{{"PartitionKey", e.pk}, {"RowKey", e.rk}} {
		if err := checkKey(k.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k.name, err))
		}
	}
	if len(e.props) > maxProperties {
		errs = append(errs, fmt.Errorf("%d properties, more than %d", len(e.props), maxProperties))
	}
	for i := range e.props {
		p := &e.props[i]
		if !validPropertyName(p.name) {
			errs = append(errs, fmt.Errorf("property name %q is not an identifier", p.name))
		}
		switch {
		case p.kind == kString && utf16Len(p.str) > maxStringUnits:
			errs = append(errs, fmt.Errorf("property %s: string longer than %d UTF-16 units", p.name, maxStringUnits))
		case p.kind == kBinary && len(p.bin) > maxBinaryBytes:
			errs = append(errs, fmt.Errorf("property %s: %d bytes, more than %d", p.name, len(p.bin), maxBinaryBytes))
		}
	}
	if s := e.size(); s > maxEntityBytes-entityMargin {
		errs = append(errs, fmt.Errorf("entity size %d bytes, more than %d", s, maxEntityBytes-entityMargin))
	}
	if n := len(e.marshal()); n > maxBodyBytes {
		errs = append(errs, fmt.Errorf("entity body %d bytes, more than %d", n, maxBodyBytes))
	}
	return errors.Join(errs...)
}

// validPropertyName accepts C#-style identifiers of at most 255 characters, which is what Azure
// requires of property names.
func validPropertyName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// checkKey applies the PartitionKey/RowKey rules: not empty, at most 1 KiB in UTF-16, no '/',
// '\\', '#', '?' and no control characters.
func checkKey(k string) error {
	if k == "" {
		return errors.New("empty key")
	}
	if !utf8.ValidString(k) {
		return errors.New("key is not valid UTF-8")
	}
	if utf16Len(k) > maxKeyUnits {
		return fmt.Errorf("key longer than %d UTF-16 units", maxKeyUnits)
	}
	for _, r := range k {
		if forbiddenKeyRune(r) {
			return fmt.Errorf("key holds the forbidden character %U", r)
		}
	}
	return nil
}

func forbiddenKeyRune(r rune) bool {
	return r == '/' || r == '\\' || r == '#' || r == '?' || r <= 0x1F || (r >= 0x7F && r <= 0x9F)
}

// marshal renders the entity as the JSON body aztables sends, with OData type annotations for
// the types JSON cannot carry.
func (e *entity) marshal() []byte {
	size := 64 + len(e.pk) + len(e.rk)
	for i := range e.props {
		size += 48 + len(e.props[i].name) + len(e.props[i].str) + base64.StdEncoding.EncodedLen(len(e.props[i].bin))
	}
	b := make([]byte, 0, size)
	b = append(b, `{"PartitionKey":`...)
	b = appendJSONString(b, e.pk)
	b = append(b, `,"RowKey":`...)
	b = appendJSONString(b, e.rk)
	for i := range e.props {
		p := &e.props[i]
		var typ string
		b = append(b, ',', '"')
		b = append(b, p.name...)
		b = append(b, '"', ':')
		switch p.kind {
		case kString:
			b = appendJSONString(b, p.str)
		case kInt32:
			b = strconv.AppendInt(b, p.num, 10)
		case kInt64:
			typ = "Edm.Int64"
			b = append(b, '"')
			b = strconv.AppendInt(b, p.num, 10)
			b = append(b, '"')
		case kBool:
			b = strconv.AppendBool(b, p.flag)
		case kTime:
			typ = "Edm.DateTime"
			b = append(b, '"')
			b = p.when.UTC().AppendFormat(b, "2006-01-02T15:04:05.0000000Z")
			b = append(b, '"')
		case kBinary:
			typ = "Edm.Binary"
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, p.bin)
			b = append(b, '"')
		}
		if typ != "" {
			b = append(b, ',', '"')
			b = append(b, p.name...)
			b = append(b, `@odata.type":"`...)
			b = append(b, typ...)
			b = append(b, '"')
		}
	}
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// RowKey derives a letter id from its coordinates: sortable by enqueued time, unique per
// (partition, sequence number, record index), and the same for the same coordinates, so a
// retried batch overwrites its own letters. Characters a key may not hold are percent-encoded
// in the partition id, which keeps distinct partitions distinct.
func RowKey(c Coordinates) string {
	b := make([]byte, 0, 64)
	b = c.EnqueuedTime.UTC().AppendFormat(b, "20060102T150405.0000000Z")
	b = append(b, '-')
	b = appendKeySafe(b, c.Partition, 64)
	b = append(b, '-')
	b = appendPadded(b, c.SequenceNumber, 20)
	b = append(b, '-')
	b = appendPadded(b, int64(c.Index), 6)
	return string(b)
}

// appendKeySafe keeps letters, digits, '.', '_' and '-' and percent-encodes every other byte,
// so the result is a valid key fragment that cannot contain the continuation separator.
func appendKeySafe(b []byte, s string, limit int) []byte {
	const hexdig = "0123456789ABCDEF"
	if len(s) > limit {
		// Partition ids are short numbers; a long one is cut and marked by its hash so two
		// long ids still differ.
		sum := sha256.Sum256([]byte(s))
		s = s[:limit] + "." + hex.EncodeToString(sum[:8])
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexdig[c>>4], hexdig[c&15])
	}
	return b
}

// appendPadded writes n zero-padded to width digits; a negative n gets a '-' before its digits,
// which keeps it valid though not ordered (sequence numbers are never negative).
func appendPadded(b []byte, n int64, width int) []byte {
	var tmp [24]byte
	digits := strconv.AppendUint(tmp[:0], absU(n), 10)
	if n < 0 {
		b = append(b, '-')
	}
	for i := len(digits); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, digits...)
}

func absU(n int64) uint64 {
	if n < 0 {
		return uint64(-(n + 1)) + 1
	}
	return uint64(n)
}

// partKey is the RowKey of a letter's n-th continuation (n ≥ 1).
func partKey(id string, n int) string {
	return fmt.Sprintf("%s%s%03d", id, partSeparator, n)
}

// truncate cuts s to at most max bytes on a rune boundary, marking the cut.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const mark = "…[truncated]"
	cut := max - len(mark)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// storedTime reports whether t can be stored: Azure's DateTime starts in 1601.
func storedTime(t time.Time) bool {
	return !t.IsZero() && t.Year() >= 1601 && t.Year() <= 9999
}

// gzipWriters are reused: a deflate writer allocates close to 1 MB of tables.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed) // the level is valid
	return zw
}}

// Sizes that steer compression: tiny payloads are not worth it, and for large ones a sample
// tells whether the data compresses at all (already-compressed or random bytes do not), which
// saves deflating megabytes for nothing.
const (
	minCompress    = 256
	compressSample = 64 << 10
)

// encodePayload compresses p when that makes it smaller.
func encodePayload(p []byte) (stored []byte, encoding string) {
	if len(p) < minCompress {
		return p, encodingIdentity
	}
	if len(p) > 4*compressSample {
		if n := gzipLen(p[:compressSample]); n > compressSample*9/10 {
			return p, encodingIdentity
		}
	}
	var buf bytes.Buffer
	buf.Grow(len(p)/4 + 64)
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	_, _ = zw.Write(p) // a bytes.Buffer does not fail
	_ = zw.Close()
	if buf.Len() >= len(p) {
		return p, encodingIdentity
	}
	return buf.Bytes(), encodingGzip
}

// gzipLen is how long p is once compressed.
func gzipLen(p []byte) int {
	var c countWriter
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&c)
	_, _ = zw.Write(p)
	_ = zw.Close()
	return int(c)
}

type countWriter int

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// decodePayload reverses encodePayload, refusing to inflate beyond the recorded size.
func decodePayload(stored []byte, encoding string, size int64) ([]byte, error) {
	switch encoding {
	case encodingIdentity, "":
		return stored, nil
	case encodingGzip:
		zr, err := gzip.NewReader(bytes.NewReader(stored))
		if err != nil {
			return nil, err
		}
		// Deflate expands at most about 1032:1, so a corrupt size cannot force a huge buffer.
		buf := bytes.NewBuffer(make([]byte, 0, min(size, 1032*int64(len(stored))+64)))
		if _, err := io.Copy(buf, io.LimitReader(zr, size+1)); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	default:
		return nil, fmt.Errorf("unknown payload encoding %q", encoding)
	}
}

// metaProps are the main entity's properties other than the payload chunks.
func metaProps(l *Letter, maxErr int) []property {
	c := &l.Coordinates
	props := make([]property, 0, 24)
	str := func(name, v string) {
		props = append(props, property{name: name, kind: kString, str: v})
	}
	props = append(props, property{name: propPart, kind: kInt32})
	str(propKind, truncate(l.Kind, maxShortString))
	str(propReason, truncate(string(l.Reason), maxShortString))
	str(propError, truncate(l.Error, maxErr))
	props = append(props, property{name: propAttempts, kind: kInt32, num: int64(clampInt32(l.Attempts))})
	if storedTime(l.FirstFailure) {
		props = append(props, property{name: propFirstFailure, kind: kTime, when: l.FirstFailure})
	}
	if storedTime(l.LastFailure) {
		props = append(props, property{name: propLastFailure, kind: kTime, when: l.LastFailure})
	}
	props = append(props, property{name: propParked, kind: kBool, flag: l.Parked})
	str(propEHPartition, truncate(c.Partition, maxShortString))
	props = append(props, property{name: propSequence, kind: kInt64, num: c.SequenceNumber})
	str(propOffset, truncate(c.Offset, maxShortString))
	if storedTime(c.EnqueuedTime) {
		props = append(props, property{name: propEnqueued, kind: kTime, when: c.EnqueuedTime})
	}
	props = append(props, property{name: propIndex, kind: kInt32, num: int64(clampInt32(c.Index))})
	str(propAlertID, truncate(l.AlertID, maxAlertID))
	str(propSeverity, truncate(l.Severity, maxShortString))
	return props
}

func clampInt32(n int) int {
	const lo, hi = -1 << 31, 1<<31 - 1
	return max(lo, min(hi, n))
}

// chunkBodyBytes is what a binary property adds to the JSON body marshal writes.
func chunkBodyBytes(p *property) int {
	return len(`,"`) + len(p.name) + len(`":"`) + base64.StdEncoding.EncodedLen(len(p.bin)) +
		len(`","`) + len(p.name) + len(`@odata.type":"Edm.Binary"`)
}

func chunkName(i int) string {
	return fmt.Sprintf("%s%02d", chunkPrefix, i)
}

// encodeLetter turns a letter (ID and Destination already valid) into its main entity followed
// by its continuations. Every entity passes check.
func encodeLetter(l *Letter, maxErr int) ([]entity, error) {
	if len(l.Payload) > maxPayloadBytes {
		return nil, fmt.Errorf("%w: %s/%s: payload of %d bytes is larger than %d", ErrInvalidLetter, l.Destination, l.ID, len(l.Payload), maxPayloadBytes)
	}
	sum := sha256.Sum256(l.Payload)
	stored, encoding := encodePayload(l.Payload)

	main := entity{pk: l.Destination, rk: l.ID, props: metaProps(l, maxErr)}
	main.props = append(main.props,
		property{name: propPayloadSize, kind: kInt64, num: int64(len(l.Payload))},
		property{name: propPayloadSHA256, kind: kString, str: hex.EncodeToString(sum[:])},
		property{name: propEncoding, kind: kString, str: encoding},
		property{name: propStoredSize, kind: kInt64, num: int64(len(stored))},
		property{name: propChunks, kind: kInt32},
		property{name: propParts, kind: kInt32},
	)
	chunksAt, partsAt := len(main.props)-2, len(main.props)-1

	entities := []entity{main}
	cur := &entities[0]
	budget := maxEntityBytes - entityMargin
	curSize, curBody := cur.size(), len(cur.marshal())
	total, inCur := 0, 0
	for off := 0; off < len(stored); off += chunkBytes {
		p := property{name: chunkName(inCur), kind: kBinary, bin: stored[off:min(off+chunkBytes, len(stored))]}
		if curSize+propSize(&p) > budget || curBody+chunkBodyBytes(&p) > maxBodyBytes || len(cur.props)+1 > maxProperties {
			n := len(entities)
			entities = append(entities, entity{
				pk:    l.Destination,
				rk:    partKey(l.ID, n),
				props: []property{{name: propPart, kind: kInt32, num: int64(n)}, {name: propChunks, kind: kInt32}},
			})
			cur = &entities[n]
			curSize, curBody = cur.size(), len(cur.marshal())
			inCur = 0
			p.name = chunkName(0)
		}
		cur.props = append(cur.props, p)
		curSize += propSize(&p)
		curBody += chunkBodyBytes(&p)
		inCur++
		total++
	}
	entities[0].props[chunksAt].num = int64(total)
	entities[0].props[partsAt].num = int64(len(entities) - 1)
	for i := 1; i < len(entities); i++ {
		entities[i].props[1].num = int64(len(entities[i].props) - 2)
	}
	for i := range entities {
		if err := entities[i].check(); err != nil {
			return nil, fmt.Errorf("deadletter: encoding %s/%s: %w", l.Destination, entities[i].rk, err)
		}
	}
	return entities, nil
}

// stored is an entity read back: its JSON properties by name.
type stored map[string]json.RawMessage

func (s stored) str(name string) string {
	var v string
	if raw, ok := s[name]; ok {
		_ = json.Unmarshal(raw, &v)
	}
	return v
}

// int reads an Int32 (a JSON number) or an Int64 (a JSON string).
func (s stored) int(name string) (int64, bool) {
	raw, ok := s[name]
	if !ok {
		return 0, false
	}
	raw = bytes.Trim(raw, `"`)
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, err == nil
}

func (s stored) bool(name string) bool {
	var v bool
	if raw, ok := s[name]; ok {
		_ = json.Unmarshal(raw, &v)
	}
	return v
}

func (s stored) time(name string) time.Time {
	v := s.str(name)
	if v == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

func (s stored) binary(name string) ([]byte, bool) {
	raw, ok := s[name]
	if !ok {
		return nil, false
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(v)
	return b, err == nil
}

// summary fills every field of a letter except the payload.
func (s stored) summary() Letter {
	l := Letter{
		Destination:  s.str("PartitionKey"),
		ID:           s.str("RowKey"),
		Kind:         s.str(propKind),
		Reason:       sink.Reason(s.str(propReason)),
		Error:        s.str(propError),
		FirstFailure: s.time(propFirstFailure),
		LastFailure:  s.time(propLastFailure),
		Parked:       s.bool(propParked),
		AlertID:      s.str(propAlertID),
		Severity:     s.str(propSeverity),
		Coordinates: Coordinates{
			Partition:    s.str(propEHPartition),
			Offset:       s.str(propOffset),
			EnqueuedTime: s.time(propEnqueued),
		},
		PayloadSHA256: s.str(propPayloadSHA256),
	}
	n, _ := s.int(propAttempts)
	l.Attempts = int(n)
	l.Coordinates.SequenceNumber, _ = s.int(propSequence)
	n, _ = s.int(propIndex)
	l.Coordinates.Index = int(n)
	l.PayloadSize, _ = s.int(propPayloadSize)
	return l
}

// chunks appends the entity's payload chunks in order, checking that there are as many as it
// says.
func (s stored) chunks(dst []byte, want int64) ([]byte, error) {
	for i := int64(0); i < want; i++ {
		b, ok := s.binary(chunkName(int(i)))
		if !ok {
			return nil, fmt.Errorf("chunk %d missing or unreadable", i)
		}
		dst = append(dst, b...)
	}
	return dst, nil
}

// isContinuation reports whether a RowKey names a continuation entity.
func isContinuation(rk string) bool {
	return strings.Contains(rk, partSeparator)
}

func sha256Hex(p []byte) string {
	sum := sha256.Sum256(p)
	return hex.EncodeToString(sum[:])
}
