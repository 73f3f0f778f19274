package main

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/hostsim"
)

//go:embed testdata/*.json
var testdata embed.FS

// template is one sample alert with the spans that vary per copy: every occurrence of the
// alert id and every timestamp, so that copies differ where real alerts differ without
// changing the body's length.
type template struct {
	name  string
	body  []byte
	id    string
	ids   []int  // offsets of the id
	times []span // RFC 3339 UTC timestamps
}

// span is a timestamp's place in a body and how many fractional digits it is written with.
type span struct{ at, n, frac int }

// Shape names the alert mixes a scenario plays.
type Shape string

const (
	// ShapeTypical mixes alerts as Defender exports them: half small (1.5 KB) flat alerts
	// whose strings hold what every format must escape (quotes, backslashes, control
	// characters, U+2028, CEF, LEEF and syslog metacharacters, a long command line), 40%
	// 8.7 KB flat alerts with 27 entities, a tenth 2.6 KB ARM-shaped (4.5 KB on average).
	ShapeTypical Shape = "typical"
	// Shape64K is flat alerts whose Description makes each body exactly 64 KiB.
	Shape64K Shape = "64k"
)

// size64K is the body size of a Shape64K alert.
const size64K = 64 << 10

// corpus holds the templates of each shape.
type corpus struct {
	// hostile is the small flat alert with strings that must be escaped in every format;
	// flat is the plain sample the 64 KiB alert is padded from.
	hostile, flat, manyEntities, arm template
	big                              template
	rng                              *rand.Rand
}

// corpusSeed fixes the ids and times of a run's alerts: two runs play the same bytes.
const corpusSeed = 20261128

func loadCorpus() (*corpus, error) {
	var c corpus
	var errs []error
	for _, t := range []struct {
		dst  *template
		file string
		key  string
	}{
		{&c.hostile, "alert_flat_hostile.json", "SystemAlertId"},
		{&c.flat, "alert_flat.json", "SystemAlertId"},
		{&c.manyEntities, "alert_many_entities.json", "SystemAlertId"},
		{&c.arm, "alert_arm.json", "systemAlertId"},
	} {
		tp, err := loadTemplate(t.file, t.key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*t.dst = tp
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	big, err := pad(c.flat, size64K)
	if err != nil {
		return nil, err
	}
	c.big = big
	c.rng = rand.New(rand.NewPCG(corpusSeed, 0))
	return &c, nil
}

// loadTemplate reads a sample, compacts it (Event Hubs bodies from Defender are compact) and
// finds the alert id under key.
func loadTemplate(file, key string) (template, error) {
	raw, err := testdata.ReadFile("testdata/" + file)
	if err != nil {
		return template{}, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return template{}, fmt.Errorf("%s: %w", file, err)
	}
	id, err := findString(buf.Bytes(), key)
	if err != nil {
		return template{}, fmt.Errorf("%s: %w", file, err)
	}
	return newTemplate(file, buf.Bytes(), id), nil
}

// timestamp matches the times Defender writes: RFC 3339 in UTC, with or without fractions.
var timestamp = regexp.MustCompile(`"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z"`)

func newTemplate(name string, body []byte, id string) template {
	t := template{name: name, body: body, id: id}
	for i := 0; ; {
		j := bytes.Index(body[i:], []byte(id))
		if j < 0 {
			break
		}
		t.ids = append(t.ids, i+j)
		i += j + len(id)
	}
	for _, m := range timestamp.FindAllSubmatchIndex(body, -1) {
		frac := 0
		if m[4] >= 0 {
			frac = m[5] - m[4] - 1
		}
		t.times = append(t.times, span{at: m[0] + 1, n: m[1] - m[0] - 2, frac: frac})
	}
	return t
}

// findString returns the value of the first "key":"value" member in compact JSON.
func findString(body []byte, key string) (string, error) {
	marker := []byte(`"` + key + `":"`)
	i := bytes.Index(body, marker)
	if i < 0 {
		return "", fmt.Errorf("no %s string member", key)
	}
	rest := body[i+len(marker):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 {
		return "", fmt.Errorf("empty %s", key)
	}
	return string(rest[:end]), nil
}

// padText is what a long alert description looks like: prose with command lines and paths,
// some of which need escaping in JSON.
const padText = `The process C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe ran \"-NoProfile -EncodedCommand SQBFAFgA\" as NT AUTHORITY\\SYSTEM; parent cmd.exe /c \"whoami /all & net user\". `

// pad returns t with its Description lengthened so that the body is exactly size bytes.
func pad(t template, size int) (template, error) {
	marker := []byte(`"Description":"`)
	i := bytes.Index(t.body, marker)
	if i < 0 {
		return template{}, fmt.Errorf("%s: no Description to pad", t.name)
	}
	at := i + len(marker)
	need := size - len(t.body)
	if need < 0 {
		return template{}, fmt.Errorf("%s is already larger than %d bytes", t.name, size)
	}
	var fill []byte
	for len(fill)+len(padText) <= need {
		fill = append(fill, padText...)
	}
	// Plain letters for the rest, so that no escape is cut in two.
	fill = append(fill, bytes.Repeat([]byte{'x'}, need-len(fill))...)
	body := make([]byte, 0, size)
	body = append(append(append(body, t.body[:at]...), fill...), t.body[at:]...)
	return newTemplate(t.name+" padded", body, t.id), nil
}

// instance returns a copy of t's body with a fresh alert id of the same form and every time
// moved by the same random amount (within about two years, to the millisecond), both drawn
// from rng.
func (t template) instance(rng *rand.Rand) []byte {
	body := bytes.Clone(t.body)
	id := freshID(rng, t.id)
	for _, at := range t.ids {
		copy(body[at:], id)
	}
	shift := time.Duration(rng.Int64N(int64(2*365*24*time.Hour/time.Millisecond))) * time.Millisecond
	for _, s := range t.times {
		old := string(body[s.at : s.at+s.n])
		layout := "2006-01-02T15:04:05Z"
		if s.frac > 0 {
			layout = "2006-01-02T15:04:05." + strings.Repeat("0", s.frac) + "Z"
		}
		ts, err := time.Parse(layout, old)
		if err != nil {
			continue // not a time after all (the pattern is loose): leave it as written
		}
		if v := ts.Add(shift).Format(layout); len(v) == s.n {
			copy(body[s.at:], v)
		}
	}
	return body
}

// freshID draws an id like like: each decimal digit replaced by a random decimal digit, each
// hexadecimal letter position by a random hex digit of the same case, everything else kept.
func freshID(rng *rand.Rand, like string) string {
	const hexUpper, hexLower = "0123456789ABCDEF", "0123456789abcdef"
	b := []byte(like)
	for i, ch := range b {
		switch {
		case ch >= '0' && ch <= '9':
			b[i] = byte('0' + rng.IntN(10))
		case ch >= 'A' && ch <= 'F':
			b[i] = hexUpper[rng.IntN(16)]
		case ch >= 'a' && ch <= 'f':
			b[i] = hexLower[rng.IntN(16)]
		}
	}
	return string(b)
}

// bodies returns n alert bodies of the shape, each with its own id.
func (c *corpus) bodies(shape Shape, n int) ([][]byte, error) {
	out := make([][]byte, n)
	for i := range out {
		switch shape {
		case ShapeTypical:
			// Per ten alerts: five small flat, four with many entities, one ARM-shaped,
			// interleaved so that every batch has the same mix.
			switch i % 10 {
			case 0, 2, 4, 6, 8:
				out[i] = c.hostile.instance(c.rng)
			case 1, 3, 5, 7:
				out[i] = c.manyEntities.instance(c.rng)
			default:
				out[i] = c.arm.instance(c.rng)
			}
		case Shape64K:
			out[i] = c.big.instance(c.rng)
		default:
			return nil, fmt.Errorf("unknown alert shape %q: want %s or %s", shape, ShapeTypical, Shape64K)
		}
	}
	return out, nil
}

// envelopes builds count host invocation bodies of batch events each, as partition
// partition would receive them: consecutive sequence numbers and offsets, fresh ids.
func (c *corpus) envelopes(shape Shape, batch, count int, partition string) (envs [][]byte, records int, err error) {
	seq := int64(1)
	offset := int64(0)
	for range count {
		bodies, err := c.bodies(shape, batch)
		if err != nil {
			return nil, 0, err
		}
		b := hostsim.Batch{
			DataType: hostsim.DataTypeString, Bodies: bodies, PartitionID: partition,
			Namespace: "bench.servicebus.windows.net", EventHub: "defender-export", ConsumerGroup: "$Default",
			FirstSequence: seq, FirstOffset: offset, Enqueued: time.Now().UTC(), MethodName: "ForwardAlerts",
		}
		env, err := b.Envelope(nil)
		if err != nil {
			return nil, 0, err
		}
		for _, body := range bodies {
			offset += int64(len(body))
		}
		seq += int64(batch)
		envs = append(envs, env)
		records += batch
	}
	return envs, records, nil
}
