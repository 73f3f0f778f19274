package deadletter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/golden"
	"github.com/defender-siem/forwarder/internal/sink"
)

func TestEntitySize(t *testing.T) {
	cases := []struct {
		name string
		e    entity
		want int
	}{
		{"keys only", entity{pk: "P", rk: "R"}, 4 + 2*2},
		{
			"one of each type",
			entity{pk: "P", rk: "R", props: []property{
				{name: "S", kind: kString, str: "ab"},            // 8 + 2 + 4 + 4
				{name: "I", kind: kInt32, num: 7},                // 8 + 2 + 4
				{name: "L", kind: kInt64, num: 1 << 40},          // 8 + 2 + 8
				{name: "B", kind: kBool, flag: true},             // 8 + 2 + 1
				{name: "T", kind: kTime, when: t0},               // 8 + 2 + 8
				{name: "X", kind: kBinary, bin: []byte{1, 2, 3}}, // 8 + 2 + 4 + 3
			}},
			8 + 18 + 14 + 18 + 11 + 18 + 17,
		},
		{
			// Strings count in UTF-16: é is one unit, 😀 two, whatever their UTF-8 length.
			"UTF-16",
			entity{pk: "é", rk: "😀", props: []property{{name: "Ab", kind: kString, str: "é😀x"}}},
			4 + 2*(1+2) + (8 + 4 + 4 + 2*4),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.e.size(); got != tc.want {
				t.Fatalf("size = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestCheckEnforcesAzureLimits covers limits Azurite does not enforce (entity size in UTF-16,
// property count, property names) and those it does (binary size, keys), since the encoder
// must never produce an entity Azure would refuse.
func TestCheckEnforcesAzureLimits(t *testing.T) {
	many := func(n int, mk func(i int) property) []property {
		var ps []property
		for i := 0; i < n; i++ {
			ps = append(ps, mk(i))
		}
		return ps
	}
	cases := []struct {
		name  string
		e     entity
		wantE string // "" means the entity is valid
	}{
		{"small", entity{pk: "d", rk: "r", props: []property{{name: "A", kind: kString, str: "x"}}}, ""},
		{"20 strings of 30000 chars: over 1 MiB in UTF-16, under it in UTF-8",
			entity{pk: "d", rk: "r", props: many(20, func(i int) property {
				return property{name: fmt.Sprintf("S%02d", i), kind: kString, str: strings.Repeat("a", 30000)}
			})}, "entity size"},
		{"252 properties", entity{pk: "d", rk: "r", props: many(252, func(i int) property {
			return property{name: fmt.Sprintf("P%d", i), kind: kBool}
		})}, ""},
		{"253 properties", entity{pk: "d", rk: "r", props: many(253, func(i int) property {
			return property{name: fmt.Sprintf("P%d", i), kind: kBool}
		})}, "more than 252"},
		{"binary of 64 KiB", entity{pk: "d", rk: "r", props: []property{{name: "B", kind: kBinary, bin: make([]byte, 64<<10)}}}, ""},
		{"binary over 64 KiB", entity{pk: "d", rk: "r", props: []property{{name: "B", kind: kBinary, bin: make([]byte, 64<<10+1)}}}, "more than 65536"},
		{"string over 32K units", entity{pk: "d", rk: "r", props: []property{{name: "S", kind: kString, str: strings.Repeat("😀", 16<<10+1)}}}, "UTF-16 units"},
		{"property name not an identifier", entity{pk: "d", rk: "r", props: []property{{name: "a-b", kind: kBool}}}, "not an identifier"},
		{"property name starting with a digit", entity{pk: "d", rk: "r", props: []property{{name: "1a", kind: kBool}}}, "not an identifier"},
		{"key with #", entity{pk: "d#", rk: "r"}, "forbidden character"},
		{"key with DEL", entity{pk: "d", rk: "r\x7f"}, "forbidden character"},
		{"key with C1 control", entity{pk: "d", rk: "r\u0085"}, "forbidden character"},
		{"key of 512 units", entity{pk: strings.Repeat("k", 512), rk: "r"}, ""},
		{"key of 513 units", entity{pk: strings.Repeat("k", 513), rk: "r"}, "longer than 512"},
		{"key of 257 surrogate pairs", entity{pk: strings.Repeat("😀", 257), rk: "r"}, "longer than 512"},
		{"empty key", entity{pk: "d", rk: ""}, "empty key"},
		{"JSON body over 1 MiB: 12 chunks of 64 KiB (Azurite counts base64)",
			entity{pk: "d", rk: "r", props: many(12, func(i int) property {
				return property{name: chunkName(i), kind: kBinary, bin: make([]byte, chunkBytes)}
			})}, "entity body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.e.check()
			switch {
			case tc.wantE == "" && err != nil:
				t.Fatalf("check = %v, want nil", err)
			case tc.wantE != "" && (err == nil || !strings.Contains(err.Error(), tc.wantE)):
				t.Fatalf("check = %v, want an error saying %q", err, tc.wantE)
			}
		})
	}
}

// encodeAndAssemble runs a letter through the encoder, the JSON the service stores, and the
// reader, the way Put and Get do without the network.
func encodeAndAssemble(t testing.TB, l Letter) ([]entity, Letter, error) {
	t.Helper()
	ents, err := encodeLetter(&l, 4096)
	if err != nil {
		return nil, Letter{}, err
	}
	byKey := map[string]stored{}
	for i := range ents {
		var s stored
		if err := json.Unmarshal(ents[i].marshal(), &s); err != nil {
			t.Fatalf("entity %s is not JSON: %v", ents[i].rk, err)
		}
		byKey[ents[i].rk] = s
	}
	got, err := assemble(byKey[l.ID], l.Destination, l.ID, func(n int) (stored, error) {
		s, ok := byKey[partKey(l.ID, n)]
		if !ok {
			return nil, ErrNotFound
		}
		return s, nil
	})
	return ents, got, err
}

func TestEncodeLetterRespectsLimits(t *testing.T) {
	hostile := strings.Repeat("😀\u2028\"\\</script>", 5000)
	for _, n := range []int{0, 1, 255, 256, chunkBytes - 1, chunkBytes, chunkBytes + 1, 1 << 20, 5 << 20, 20 << 20} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			l := letterAt("dest", t0, int64(n), randomBytes(t, n))
			l.ID = RowKey(l.Coordinates)
			l.Error, l.AlertID, l.Kind, l.Severity = hostile, hostile, hostile, hostile
			l.Coordinates.Partition, l.Coordinates.Offset = hostile, hostile
			ents, got, err := encodeAndAssemble(t, l)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Payload, l.Payload) {
				t.Fatalf("payload differs after the round trip")
			}
			chunks := 0
			for i := range ents {
				e := &ents[i]
				if err := e.check(); err != nil {
					t.Errorf("entity %d: %v", i, err)
				}
				if e.size() > maxEntityBytes-entityMargin || len(e.marshal()) > maxBodyBytes || len(e.props) > maxProperties {
					t.Errorf("entity %d: size %d, body %d, %d props", i, e.size(), len(e.marshal()), len(e.props))
				}
				for _, p := range e.props {
					if p.kind == kBinary {
						chunks++
					}
				}
			}
			if want := (n + chunkBytes - 1) / chunkBytes; chunks != want {
				t.Errorf("%d chunks, want %d for incompressible data", chunks, want)
			}
			if len(got.Error) > 4096 || !strings.HasSuffix(got.Error, "[truncated]") {
				t.Errorf("error not capped: %d bytes", len(got.Error))
			}
		})
	}
}

func TestEncodeCompresses(t *testing.T) {
	l := letterAt("d", t0, 1, bytes.Repeat([]byte(`{"AlertType":"VM_SuspiciousCommand","Severity":"High"},`), 100000))
	l.ID = "x"
	ents, got, err := encodeAndAssemble(t, l)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf("a 5.5 MB repetitive payload took %d entities, want 1 once compressed", len(ents))
	}
	if !bytes.Equal(got.Payload, l.Payload) {
		t.Fatal("payload differs")
	}
}

func TestRowKey(t *testing.T) {
	coords := []Coordinates{
		{Partition: "0", SequenceNumber: 0, EnqueuedTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{Partition: "31", SequenceNumber: 123456789, Index: 7, EnqueuedTime: time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.UTC)},
		{Partition: "3", SequenceNumber: math.MaxInt64, Index: 999999, EnqueuedTime: time.Date(2026, 1, 2, 4, 4, 5, 0, time.FixedZone("CET", 3600))},
		{Partition: "a/b#c?d\\e~f g\x00é", SequenceNumber: 5, Index: 1},
		{Partition: "", SequenceNumber: -1, Index: -2},
		{Partition: strings.Repeat("p", 70), SequenceNumber: 1},
	}
	var out bytes.Buffer
	for _, c := range coords {
		k := RowKey(c)
		if err := checkID(k); err != nil {
			t.Errorf("RowKey(%+v) = %q: %v", c, k, err)
		}
		if RowKey(c) != k {
			t.Errorf("RowKey is not deterministic for %+v", c)
		}
		fmt.Fprintf(&out, "%q\n", k)
	}
	golden.Check(t, "rowkeys.golden", out.Bytes())

	// Order follows enqueued time, then partition, sequence number and index.
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	ordered := []Coordinates{
		{Partition: "9", SequenceNumber: 999, EnqueuedTime: base},
		{Partition: "9", SequenceNumber: 999, Index: 1, EnqueuedTime: base},
		{Partition: "9", SequenceNumber: 1000, EnqueuedTime: base},
		{Partition: "0", SequenceNumber: 1, EnqueuedTime: base.Add(100 * time.Nanosecond)},
		{Partition: "0", SequenceNumber: 2, EnqueuedTime: base.Add(time.Second)},
		{Partition: "0", SequenceNumber: 3, EnqueuedTime: base.Add(24 * time.Hour)},
	}
	var keys []string
	for _, c := range ordered {
		keys = append(keys, RowKey(c))
	}
	if !sort.StringsAreSorted(keys) {
		t.Errorf("row keys not in time order: %q", keys)
	}
	// A letter's continuations sort after it and before the next letter of the same second.
	if !(keys[0] < partKey(keys[0], 1) && partKey(keys[0], 1) < partKey(keys[0], 2) && partKey(keys[0], 999) < keys[3]) {
		t.Errorf("continuation keys out of order")
	}
}

func TestEntityJSON(t *testing.T) {
	l := Letter{
		Destination: "splunk", ID: "20261128T030405.1234567Z-3-00000000000000000042-000001",
		Kind: "alert", Reason: sink.ReasonRejected, Error: `HTTP 400: {"text":"Invalid data format","code":6}`,
		Attempts: 4, FirstFailure: t0, LastFailure: t0.Add(90 * time.Second), Parked: true,
		Coordinates: Coordinates{Partition: "3", SequenceNumber: 42, Offset: "8589934592", EnqueuedTime: t0, Index: 1},
		AlertID:     "2517538088322968242_3ba1f9d0-1bb7-4fd4-8b2f-f1e8e17ae8c3", Severity: "High",
		Payload: []byte(`{"SystemAlertId":"2517538088322968242_3ba1f9d0"}`),
	}
	ents, err := encodeLetter(&l, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Fatalf("%d entities", len(ents))
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, ents[0].marshal(), "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	golden.Check(t, "entity_small.golden.json", pretty.Bytes())
}

func TestTruncate(t *testing.T) {
	cases := []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"0123456789abcdefghijklmnop", 20, "012345…[truncated]"}, // the mark takes 14 bytes
		// é is 2 bytes: the cut backs off to a rune boundary.
		{"éééééééééééé", 19, "éé…[truncated]"},
	}
	for _, tc := range cases {
		got := truncate(tc.in, tc.max)
		if got != tc.want || len(got) > tc.max {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestAssembleRejectsDamage(t *testing.T) {
	l := letterAt("d", t0, 1, randomBytes(t, 2<<20))
	l.ID = "id"
	ents, err := encodeLetter(&l, 4096)
	if err != nil {
		t.Fatal(err)
	}
	load := func() map[string]stored {
		m := map[string]stored{}
		for i := range ents {
			var s stored
			_ = json.Unmarshal(ents[i].marshal(), &s)
			m[ents[i].rk] = s
		}
		return m
	}
	cases := []struct {
		name   string
		damage func(m map[string]stored)
	}{
		{"continuation missing", func(m map[string]stored) { delete(m, "id~002") }},
		{"main chunk missing", func(m map[string]stored) { delete(m["id"], "Payload03") }},
		{"continuation chunk missing", func(m map[string]stored) { delete(m["id~001"], "Payload00") }},
		{"chunk count lowered", func(m map[string]stored) { m["id"]["Chunks"] = json.RawMessage("3") }},
		{"chunk count raised", func(m map[string]stored) { m["id"]["Chunks"] = json.RawMessage("300") }},
		{"parts lowered", func(m map[string]stored) { m["id"]["Parts"] = json.RawMessage("1") }},
		{"bad base64", func(m map[string]stored) { m["id"]["Payload00"] = json.RawMessage(`"!!"`) }},
		{"hash", func(m map[string]stored) { m["id"]["PayloadSHA256"] = json.RawMessage(`"00"`) }},
		{"size", func(m map[string]stored) { m["id"]["PayloadSize"] = json.RawMessage(`"1"`) }},
		{"encoding", func(m map[string]stored) { m["id"]["PayloadEncoding"] = json.RawMessage(`"br"`) }},
		{"size properties gone", func(m map[string]stored) { delete(m["id"], "StoredSize") }},
		{"huge claimed size", func(m map[string]stored) { m["id"]["StoredSize"] = json.RawMessage(`"9000000000000"`) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := load()
			tc.damage(m)
			_, err := assemble(m["id"], "d", "id", func(n int) (stored, error) {
				s, ok := m[partKey("id", n)]
				if !ok {
					return nil, ErrNotFound
				}
				return s, nil
			})
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("assemble = %v, want ErrCorrupt", err)
			}
		})
	}
}

func FuzzRowKey(f *testing.F) {
	f.Add("0", int64(0), "0", int64(0), 0)
	f.Add("a/b#c?d\\e~f", int64(-1), "x", int64(1<<62), 5)
	f.Add(strings.Repeat("%", 80), int64(math.MaxInt64), "", int64(-62135596800), -7)
	f.Fuzz(func(t *testing.T, part string, seq int64, offset string, unix int64, index int) {
		c := Coordinates{Partition: part, SequenceNumber: seq, Offset: offset, EnqueuedTime: time.Unix(unix%(1<<36), 0), Index: index}
		k := RowKey(c)
		if err := checkID(k); err != nil {
			t.Fatalf("RowKey(%+v) = %q: %v", c, k, err)
		}
		c2 := c
		c2.SequenceNumber++
		if seq != math.MaxInt64 && RowKey(c2) == k {
			t.Fatalf("different sequence numbers share key %q", k)
		}
		c3 := c
		c3.Partition += "x"
		if len(part) < 64 && RowKey(c3) == k {
			t.Fatalf("different partitions share key %q", k)
		}
	})
}

func FuzzEncodeAssemble(f *testing.F) {
	f.Add([]byte{}, "alert", "err", "id")
	f.Add([]byte(`{"SystemAlertId":"1"}`), "", "", "")
	f.Add(bytes.Repeat([]byte("ab"), 70000), "😀", "\x00\xff", "\u2028")
	if seed, err := os.ReadFile(filepath.Join("testdata", "entity_small.golden.json")); err == nil {
		f.Add(seed, "alert", "x", "y")
	}
	f.Fuzz(func(t *testing.T, payload []byte, kind, errText, alertID string) {
		l := letterAt("dest", t0, 1, payload)
		l.ID = "id"
		l.Kind, l.Error, l.AlertID = kind, errText, alertID
		ents, got, err := encodeAndAssemble(t, l)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ents {
			if err := ents[i].check(); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got.Payload, payload) || got.PayloadSize != int64(len(payload)) {
			t.Fatal("payload differs")
		}
	})
}

// FuzzAssemble feeds arbitrary stored JSON to the reader: it must return a letter or an
// error, never panic or allocate without bound.
func FuzzAssemble(f *testing.F) {
	if seed, err := os.ReadFile(filepath.Join("testdata", "entity_small.golden.json")); err == nil {
		f.Add(seed, []byte(`{}`))
	}
	f.Add([]byte(`{"Chunks":2,"Parts":1,"StoredSize":"3","PayloadSize":"3","Payload00":"YWJj","PayloadEncoding":"identity"}`),
		[]byte(`{"Chunks":1,"Payload00":"YWJj"}`))
	f.Add([]byte(`{"Chunks":1,"Parts":0,"StoredSize":"20","PayloadSize":"1000000","Payload00":"H4sIAAAAAAAA/0pMShYAAAD//w==","PayloadEncoding":"gzip"}`), []byte(`null`))
	f.Fuzz(func(t *testing.T, mainJSON, partJSON []byte) {
		var main, part stored
		if json.Unmarshal(mainJSON, &main) != nil || json.Unmarshal(partJSON, &part) != nil {
			return
		}
		l, err := assemble(main, "d", "id", func(int) (stored, error) {
			if part == nil {
				return nil, ErrNotFound
			}
			return part, nil
		})
		if err == nil && (int64(len(l.Payload)) != l.PayloadSize || sha256Hex(l.Payload) != l.PayloadSHA256) {
			t.Fatalf("assemble accepted a payload that does not match its size and hash")
		}
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotFound) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}

func BenchmarkEncodeLetter(b *testing.B) {
	alertJSON := bytes.Repeat([]byte(`{"Severity":"High","Entities":[{"Type":"ip","Address":"10.1.2.3"}]}`), 75)[:5000]
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"5KB-json", alertJSON},
		{"5MiB-random", randomBytes(b, 5<<20)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			n := len(tc.payload)
			l := letterAt("d", t0, 1, tc.payload)
			l.ID = "id"
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				ents, err := encodeLetter(&l, 4096)
				if err != nil {
					b.Fatal(err)
				}
				for i := range ents {
					_ = ents[i].marshal()
				}
			}
		})
	}
}
