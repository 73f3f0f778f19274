package alert

import "github.com/defender-siem/forwarder/internal/jsonx"

// Split cuts one Event Hub message body into the raw bytes of its records. It accepts
//
//   - a single JSON object (one record),
//   - a JSON array (one record per element),
//   - an Azure Monitor envelope {"records":[…]} (one record per element), and
//   - an array that mixes envelopes with records (envelopes expanded in place),
//
// with an optional UTF-8 byte order mark and surrounding whitespace. Every record is a
// sub-slice of msg, never re-encoded. An array element that is not an object (a string, a
// number, a nested array) is still returned as a record; Parse gives it KindUnknown.
//
// An object counts as an envelope only when "records" (in any letter case) is its only
// member and holds an array: an object with other members is returned whole, so that no
// member is silently dropped. A message that is not well-formed JSON, or holds anything
// after its first value, returns an error wrapping ErrUndecodable and no records. An empty
// array or envelope returns no records and no error.
func Split(msg []byte) ([][]byte, error) {
	start, end := jsonx.Trim(msg)
	if start >= end {
		return nil, jsonx.SyntaxError(start, "empty message")
	}
	d := msg[:end]
	var out [][]byte
	var stop int
	var err error
	switch d[start] {
	case '{':
		var recs [][]byte
		var isEnv bool
		if stop, recs, isEnv, err = scanRecordOrEnvelope(d, start, 0); err == nil {
			if isEnv {
				out = recs
			} else {
				out = [][]byte{d[start:stop]}
			}
		}
	case '[':
		out = [][]byte{}
		stop, err = jsonx.WalkElements(d, start, func(vs int) (int, error) {
			if d[vs] != '{' {
				ve, err := jsonx.Skip(d, vs, 1)
				if err == nil {
					out = append(out, d[vs:ve])
				}
				return ve, err
			}
			ve, recs, isEnv, err := scanRecordOrEnvelope(d, vs, 1)
			if err == nil {
				if isEnv {
					out = append(out, recs...)
				} else {
					out = append(out, d[vs:ve])
				}
			}
			return ve, err
		})
	default:
		if stop, err = jsonx.Skip(d, start, 0); err == nil {
			out = [][]byte{d[start:stop]}
		}
	}
	if err != nil {
		return nil, err
	}
	if stop != end {
		return nil, jsonx.SyntaxError(stop, "data after the top-level value")
	}
	return out, nil
}

// scanRecordOrEnvelope checks the object at d[i], nested depth levels deep, in one pass and
// returns the index past it. When the object is an Azure Monitor {"records":[…]} envelope
// (records, in any letter case, as its only member, holding an array), it also returns the
// envelope's records.
func scanRecordOrEnvelope(d []byte, i, depth int) (int, [][]byte, bool, error) {
	var arr []byte
	members := 0
	n, err := jsonx.EachMember(d[i:], depth, func(key, val []byte, esc bool) {
		members++
		if members == 1 && val[0] == '[' && fieldOf(key, esc) == fRecords {
			arr = val
		}
	})
	if err != nil {
		// Checked again from the message's start so that the error's offset is the message's.
		end, err := jsonx.Skip(d, i, depth)
		return end, nil, false, err
	}
	if members != 1 || arr == nil {
		return i + n, nil, false, nil
	}
	recs := [][]byte{}
	_, _ = jsonx.EachElement(arr, 0, func(el []byte) { recs = append(recs, el) })
	return i + n, recs, true, nil
}

// ParseMessage splits msg (see Split) and parses every record (see Parse), numbering them in
// message order. Its only error is the one Split returns for a message that is not JSON.
func ParseMessage(msg []byte) ([]Record, error) {
	return Options{}.ParseMessage(msg)
}

// ParseMessage is the package's ParseMessage with the options o.
func (o Options) ParseMessage(msg []byte) ([]Record, error) {
	// Defender writes one record per message: parsing it checks it too, so it is read once
	// rather than split first and parsed again.
	if start, end := jsonx.Trim(msg); start < end && msg[start] == '{' {
		rec, envelope, err := o.parse(msg[start:end], 0)
		if err != nil {
			return nil, err
		}
		if !envelope {
			return []Record{rec}, nil
		}
	}
	raws, err := Split(msg)
	if err != nil {
		return nil, err
	}
	recs := make([]Record, len(raws))
	for i, raw := range raws {
		rec, err := o.Parse(raw, i)
		if err != nil {
			return nil, err
		}
		recs[i] = rec
	}
	return recs, nil
}
