package main

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/defender-siem/forwarder/internal/dev/hostsim"
)

//go:embed testdata/*.json
var testdata embed.FS

// template is one sample alert with the id that identifies it, so that copies can be given
// ids of their own.
type template struct {
	name string
	body []byte
	id   string
}

// Shape names the alert mixes a scenario plays.
type Shape string

const (
	// ShapeTypical mixes alerts as Defender exports them: half small flat alerts, 40% flat
	// alerts with many entities, a tenth in the ARM shape (about 4 KB on average).
	ShapeTypical Shape = "typical"
	// Shape64K is flat alerts whose Description makes each body exactly 64 KiB.
	Shape64K Shape = "64k"
)

// size64K is the body size of a Shape64K alert.
const size64K = 64 << 10

// corpus holds the templates of each shape.
type corpus struct {
	flat, manyEntities, arm template
	big                     template
}

func loadCorpus() (*corpus, error) {
	var c corpus
	var errs []error
	for _, t := range []struct {
		dst  *template
		file string
		key  string
	}{
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
	return template{name: file, body: buf.Bytes(), id: id}, nil
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
	return template{name: t.name + " padded", body: body, id: t.id}, nil
}

// instance returns a copy of t's body with a fresh alert id (same length as the original).
func (t template) instance() []byte {
	prefix, _, _ := strings.Cut(t.id, "_")
	id := prefix + "_" + strings.ToUpper(uuid.NewString())
	if len(id) != len(t.id) {
		id = uuid.NewString()
	}
	return bytes.ReplaceAll(t.body, []byte(t.id), []byte(id))
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
				out[i] = c.flat.instance()
			case 1, 3, 5, 7:
				out[i] = c.manyEntities.instance()
			default:
				out[i] = c.arm.instance()
			}
		case Shape64K:
			out[i] = c.big.instance()
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
