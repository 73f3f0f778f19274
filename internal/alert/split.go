package alert

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
	start, end := trimMessage(msg)
	if start >= end {
		return nil, syntaxErr(start, "empty message")
	}
	d := msg[:end]
	stop, err := skipValue(d, start, 0)
	if err != nil {
		return nil, err
	}
	if stop != end {
		return nil, syntaxErr(stop, "data after the top-level value")
	}
	v := d[start:end]
	switch v[0] {
	case '{':
		if recs, ok := envelope(v); ok {
			return recs, nil
		}
		return [][]byte{v}, nil
	case '[':
		var out [][]byte
		err := eachElement(v, 0, func(el []byte) {
			if el[0] == '{' {
				if recs, ok := envelope(el); ok {
					out = append(out, recs...)
					return
				}
			}
			out = append(out, el)
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	default:
		return [][]byte{v}, nil
	}
}

// envelope reports whether obj is an Azure Monitor {"records":[…]} envelope and returns its
// records. obj has been checked already.
func envelope(obj []byte) ([][]byte, bool) {
	var arr []byte
	members := 0
	_ = eachMember(obj, 0, func(key, val []byte, esc bool) {
		members++
		if fieldOf(key, esc) == fRecords {
			arr = val
		}
	})
	if members != 1 || len(arr) == 0 || arr[0] != '[' {
		return nil, false
	}
	recs := [][]byte{}
	_ = eachElement(arr, 0, func(el []byte) { recs = append(recs, el) })
	return recs, true
}

// ParseMessage splits msg (see Split) and parses every record (see Parse), numbering them in
// message order. Its only error is the one Split returns for a message that is not JSON.
func ParseMessage(msg []byte) ([]Record, error) {
	raws, err := Split(msg)
	if err != nil {
		return nil, err
	}
	recs := make([]Record, len(raws))
	for i, raw := range raws {
		rec, err := Parse(raw, i)
		if err != nil {
			return nil, err
		}
		recs[i] = rec
	}
	return recs, nil
}
