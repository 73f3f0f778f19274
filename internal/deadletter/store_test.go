package deadletter

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/defender-siem/forwarder/internal/dev/testenv"
	"github.com/defender-siem/forwarder/internal/sink"
)

// newStore starts a private Azurite and opens a store on it through the settings path the
// handler uses.
func newStore(t testing.TB) (*Store, *testenv.Azurite) {
	t.Helper()
	az := testenv.StartAzurite(t)
	cfg, err := ConfigFromSettings(mapLookup(map[string]string{"AzureWebJobsStorage": az.ConnectionString()}))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.MaxRetries = 2
	cfg.RetryDelay = 100 * time.Millisecond
	cfg.MaxRetryDelay = 500 * time.Millisecond
	cfg.TryTimeout = 3 * time.Second
	s, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, az
}

func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// letterAt is a letter for destination d at enqueued time at, sequence seq.
func letterAt(d string, at time.Time, seq int64, payload []byte) Letter {
	return Letter{
		Destination:  d,
		Kind:         "alert",
		Reason:       sink.ReasonUnreachable,
		Error:        "dial tcp 127.0.0.1:1: connect: connection refused",
		Attempts:     3,
		FirstFailure: at.Add(time.Second),
		LastFailure:  at.Add(2 * time.Second),
		Coordinates: Coordinates{
			Partition: "3", SequenceNumber: seq, Offset: fmt.Sprint(seq * 1000),
			EnqueuedTime: at, Index: 0,
		},
		AlertID:  "2517538088322968242_3ba1f9d0",
		Severity: "High",
		Payload:  payload,
	}
}

// rawKeys lists every letter entity of a destination, continuations included, straight from
// the table; partition marks are left out (markKeys lists them).
func rawKeys(t *testing.T, s *Store, dest string) []string {
	t.Helper()
	var keys []string
	for _, k := range allKeys(t, s, dest) {
		if !isMark(k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// markKeys lists a destination's partition marks, straight from the table.
func markKeys(t *testing.T, s *Store, dest string) []string {
	t.Helper()
	var keys []string
	for _, k := range allKeys(t, s, dest) {
		if isMark(k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// allKeys lists every entity of a destination, straight from the table.
func allKeys(t *testing.T, s *Store, dest string) []string {
	t.Helper()
	filter := "PartitionKey eq " + odataString(dest)
	sel := "RowKey"
	pager := s.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel})
	var keys []string
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatalf("raw list: %v", err)
		}
		for _, raw := range page.Entities {
			var e stored
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, e.str("RowKey"))
		}
	}
	return keys
}

var t0 = time.Date(2026, 11, 28, 3, 4, 5, 123456700, time.UTC)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	sample := bytes.Repeat([]byte(`{"SystemAlertId":"x","Severity":"High","Entities":[{"$id":"1","Type":"ip","Address":"10.0.0.1"}]},`), 60000)
	cases := []struct {
		name    string
		payload []byte
		parts   int // continuation entities expected
	}{
		{"empty", []byte{}, 0},
		{"1KiB", randomBytes(t, 1<<10), 0},
		{"60KiB", randomBytes(t, 60<<10), 0},
		{"1MiB", randomBytes(t, 1<<20), 1},
		{"5MiB", randomBytes(t, 5<<20), 7}, // 80 chunks, 11 to an entity
		{"6MiB compressible", sample, 0},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dest := fmt.Sprintf("rt%d", i)
			if i == 0 {
				dest = UndecodablePartition // the reserved partition is a valid key too
			}
			in := []Letter{letterAt(dest, t0, int64(i), tc.payload)}
			if err := s.Put(ctx, in); err != nil {
				t.Fatalf("Put: %v", err)
			}
			got, err := s.Get(ctx, dest, in[0].ID)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !bytes.Equal(got.Payload, tc.payload) {
				t.Fatalf("payload differs: got %d bytes, want %d", len(got.Payload), len(tc.payload))
			}
			if got.Payload == nil {
				t.Fatalf("payload is nil, want empty non-nil")
			}
			want := in[0]
			want.Payload = tc.payload
			want.PayloadSize = int64(len(tc.payload))
			want.PayloadSHA256 = sha256Hex(tc.payload)
			if d := diffLetters(got, want); d != "" {
				t.Fatalf("letter differs: %s", d)
			}
			keys := rawKeys(t, s, dest)
			if len(keys) != 1+tc.parts {
				t.Fatalf("stored as %d entities %v, want %d", len(keys), keys, 1+tc.parts)
			}
		})
	}
}

// diffLetters compares two letters field by field, times with Equal.
func diffLetters(got, want Letter) string {
	var d []string
	g, w := got, want
	if !g.FirstFailure.Equal(w.FirstFailure) || !g.LastFailure.Equal(w.LastFailure) || !g.Coordinates.EnqueuedTime.Equal(w.Coordinates.EnqueuedTime) {
		d = append(d, fmt.Sprintf("times: got %v %v %v want %v %v %v", g.FirstFailure, g.LastFailure, g.Coordinates.EnqueuedTime, w.FirstFailure, w.LastFailure, w.Coordinates.EnqueuedTime))
	}
	g.FirstFailure, g.LastFailure, g.Coordinates.EnqueuedTime = w.FirstFailure, w.LastFailure, w.Coordinates.EnqueuedTime
	if !bytes.Equal(g.Payload, w.Payload) {
		d = append(d, "payload")
	}
	g.Payload, w.Payload = nil, nil
	if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", w) {
		d = append(d, fmt.Sprintf("\n got %+v\nwant %+v", g, w))
	}
	return strings.Join(d, "; ")
}

func TestPutSameCoordinatesOverwrites(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	payload := randomBytes(t, 2<<20) // with continuations, to check they are not duplicated either
	first := letterAt("splunk", t0, 42, payload)
	if err := s.Put(ctx, []Letter{first}); err != nil {
		t.Fatal(err)
	}
	retry := letterAt("splunk", t0, 42, payload)
	retry.FirstFailure = t0.Add(time.Hour)
	retry.LastFailure = t0.Add(2 * time.Hour)
	retry.Attempts = 2
	retry.Error = "HTTP 503"
	if err := s.Put(ctx, []Letter{retry}); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx, ListOptions{Destination: "splunk"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("got %d letters, want 1: %+v", len(list), list)
	}
	got, err := s.Get(ctx, "splunk", list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Attempts != 5 {
		t.Errorf("Attempts = %d, want 3+2", got.Attempts)
	}
	if !got.FirstFailure.Equal(first.FirstFailure) {
		t.Errorf("FirstFailure = %v, want the earlier %v", got.FirstFailure, first.FirstFailure)
	}
	if !got.LastFailure.Equal(retry.LastFailure) || got.Error != "HTTP 503" {
		t.Errorf("LastFailure/Error = %v %q, want the retry's", got.LastFailure, got.Error)
	}
	if !bytes.Equal(got.Payload, payload) {
		t.Errorf("payload differs")
	}
	if keys := rawKeys(t, s, "splunk"); len(keys) != 3 {
		t.Errorf("entities %v, want main + 2 continuations", keys)
	}

	// The same coordinates twice in one call: one letter, the later copy wins.
	a, b := letterAt("qradar", t0, 7, []byte("a")), letterAt("qradar", t0, 7, []byte("b"))
	if err := s.Put(ctx, []Letter{a, b}); err != nil {
		t.Fatal(err)
	}
	list, err = s.List(ctx, ListOptions{Destination: "qradar"})
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %d letters, %v; want 1", len(list), err)
	}
	if got, err := s.Get(ctx, "qradar", list[0].ID); err != nil || string(got.Payload) != "b" {
		t.Fatalf("Get = %q, %v; want the later copy", got.Payload, err)
	}
}

func TestListOrderAndFilters(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	// Written out of order, in one call (one transaction) and across calls; one needs a
	// continuation, one is parked.
	var letters []Letter
	for i, off := range []int{5, 1, 4, 2, 3} {
		l := letterAt("hec", t0.Add(time.Duration(off)*time.Minute), int64(100+i), []byte(fmt.Sprintf(`{"n":%d}`, off)))
		letters = append(letters, l)
	}
	letters[2].Payload = randomBytes(t, 1200<<10)
	letters[4].Parked = true
	if err := s.Put(ctx, letters[:3]); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, letters[3:]); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, []Letter{letterAt("cef", t0, 1, []byte("x"))}); err != nil {
		t.Fatal(err)
	}

	minutes := func(ls []Letter) []int {
		var out []int
		for _, l := range ls {
			if l.Payload != nil {
				t.Errorf("List loaded a payload for %s", l.ID)
			}
			if strings.Contains(l.ID, partSeparator) {
				t.Errorf("List returned continuation %s", l.ID)
			}
			out = append(out, int(l.Coordinates.EnqueuedTime.Sub(t0)/time.Minute))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		opts ListOptions
		want []int
	}{
		{"default skips parked", ListOptions{Destination: "hec"}, []int{1, 2, 4, 5}},
		{"with parked", ListOptions{Destination: "hec", IncludeParked: true}, []int{1, 2, 3, 4, 5}},
		{"since", ListOptions{Destination: "hec", Since: t0.Add(2 * time.Minute)}, []int{2, 4, 5}},
		{"limit", ListOptions{Destination: "hec", Limit: 2}, []int{1, 2}},
		{"all destinations", ListOptions{}, []int{0, 1, 2, 4, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.List(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(minutes(got)) != fmt.Sprint(tc.want) {
				t.Fatalf("minutes %v, want %v", minutes(got), tc.want)
			}
		})
	}
	got, err := s.List(ctx, ListOptions{Destination: "hec", Since: t0.Add(4 * time.Minute)})
	if err != nil || len(got) != 2 {
		t.Fatalf("List = %v, %v", got, err)
	}
	if got[0].PayloadSize != 1200<<10 || len(got[0].PayloadSHA256) != 64 || got[0].Attempts != 3 || got[0].AlertID == "" {
		t.Errorf("summary incomplete: %+v", got[0])
	}

	counts, err := s.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[sink.Reason]Count{
		"hec": {sink.ReasonUnreachable: {Active: 4, Parked: 1}},
		"cef": {sink.ReasonUnreachable: {Active: 1}},
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("Counts = %v, want %v", counts, want)
	}
}

func TestUpdateDeletePurge(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	big := letterAt("syslog", t0, 1, randomBytes(t, 3<<20))
	small := letterAt("syslog", t0.Add(time.Minute), 2, []byte("small"))
	other := letterAt("leef", t0, 3, []byte("other"))
	letters := []Letter{big, small, other}
	if err := s.Put(ctx, letters); err != nil {
		t.Fatal(err)
	}
	big, small = letters[0], letters[1]
	if n := len(rawKeys(t, s, "syslog")); n != 6 {
		t.Fatalf("%d entities before delete, want 1+4 continuations + 1", n)
	}

	upd := big
	upd.Attempts, upd.Parked, upd.Reason, upd.Error = 13, true, sink.ReasonRejected, "HTTP 400"
	upd.LastFailure = t0.Add(time.Hour)
	if err := s.Update(ctx, upd); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "syslog", big.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Attempts != 13 || !got.Parked || got.Reason != sink.ReasonRejected || got.Error != "HTTP 400" || !got.LastFailure.Equal(upd.LastFailure) || !bytes.Equal(got.Payload, big.Payload) {
		t.Fatalf("after Update: %+v", got)
	}
	if err := s.Update(ctx, Letter{Destination: "syslog", ID: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update of a missing letter = %v, want ErrNotFound", err)
	}

	if err := s.Delete(ctx, "syslog", big.ID); err != nil {
		t.Fatal(err)
	}
	if keys := rawKeys(t, s, "syslog"); len(keys) != 1 || keys[0] != small.ID {
		t.Fatalf("after Delete: %v, want only %s", keys, small.ID)
	}
	if _, err := s.Get(ctx, "syslog", big.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "syslog", big.ID); err != nil {
		t.Fatalf("second Delete = %v, want nil", err)
	}

	n, err := s.Purge(ctx, ListOptions{Destination: "syslog", IncludeParked: true})
	if err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v; want 1", n, err)
	}
	if keys := rawKeys(t, s, "syslog"); len(keys) != 0 {
		t.Fatalf("after Purge: %v", keys)
	}
	if keys := rawKeys(t, s, "leef"); len(keys) != 1 {
		t.Fatalf("Purge touched another destination: %v", keys)
	}
}

func TestCorruptLetter(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	put := func(seq int64, payload []byte) Letter {
		ls := []Letter{letterAt("corrupt", t0, seq, payload)}
		if err := s.Put(ctx, ls); err != nil {
			t.Fatal(err)
		}
		return ls[0]
	}
	// merge writes props over an entity, the way a damaged or tampered row would look.
	merge := func(rk string, props map[string]any) {
		props["PartitionKey"], props["RowKey"] = "corrupt", rk
		body, _ := json.Marshal(props)
		if _, err := s.client.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeMerge}); err != nil {
			t.Fatal(err)
		}
	}
	bin := base64.StdEncoding.EncodeToString

	cases := []struct {
		name   string
		damage func(l Letter)
	}{
		{"continuation deleted", func(l Letter) {
			if _, err := s.client.DeleteEntity(ctx, "corrupt", partKey(l.ID, 1), nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"chunk modified", func(l Letter) {
			merge(l.ID, map[string]any{"Payload01": bin(randomBytes(t, chunkBytes)), "Payload01@odata.type": "Edm.Binary"})
		}},
		{"chunk truncated in continuation", func(l Letter) {
			merge(partKey(l.ID, 1), map[string]any{"Payload00": bin([]byte("short")), "Payload00@odata.type": "Edm.Binary"})
		}},
		{"chunk removed", func(l Letter) {
			// Replace the main entity without its last chunk.
			e, err := s.getEntity(ctx, "corrupt", l.ID)
			if err != nil {
				t.Fatal(err)
			}
			delete(e, chunkName(int(countChunks(e))-1))
			body, _ := json.Marshal(e)
			if _, err := s.client.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
				t.Fatal(err)
			}
		}},
		{"hash changed", func(l Letter) {
			merge(l.ID, map[string]any{propPayloadSHA256: strings.Repeat("0", 64)})
		}},
		{"size changed", func(l Letter) {
			merge(l.ID, map[string]any{propPayloadSize: "12", propPayloadSize + "@odata.type": "Edm.Int64"})
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := put(int64(i), randomBytes(t, 1500<<10))
			if _, err := s.Get(ctx, "corrupt", l.ID); err != nil {
				t.Fatalf("Get before damage: %v", err)
			}
			tc.damage(l)
			_, err := s.Get(ctx, "corrupt", l.ID)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Get = %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), l.ID) {
				t.Errorf("error %q does not name the letter", err)
			}
		})
	}
}

func TestPutFailsFastWhenStorageIsDown(t *testing.T) {
	t.Parallel()
	s, az := newStore(t)
	ctx := context.Background()
	l := letterAt("down", t0, 1, []byte("x"))
	if err := s.Put(ctx, []Letter{l}); err != nil {
		t.Fatal(err)
	}
	az.Stop()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Put(ctx, []Letter{letterAt("down", t0, 2, []byte("y"))}) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Put succeeded with storage stopped")
		}
		t.Logf("Put failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(30 * time.Second):
		// A bound, not a timing assertion: without it a hang would stall the suite.
		t.Fatal("Put still running 30s after storage stopped")
	}

	// After a restart the store works again and kept what was written before.
	az.Start()
	if err := s.Put(ctx, []Letter{letterAt("down", t0, 3, []byte("z"))}); err != nil {
		t.Fatalf("Put after restart: %v", err)
	}
	list, err := s.List(ctx, ListOptions{Destination: "down"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("after restart %d letters, want 2 (seq 1 and 3)", len(list))
	}
}

func TestNewCreatesTableOnce(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	// A second store on the same table meets TableAlreadyExists and carries on.
	s2, err := New(context.Background(), s.Config(), nil)
	if err != nil {
		t.Fatalf("second New: %v", err)
	}
	if err := s2.Put(context.Background(), []Letter{letterAt("x", t0, 1, nil)}); err != nil {
		t.Fatal(err)
	}
}

func TestPutRejectsBadKeys(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	for _, l := range []Letter{
		{Destination: ""},
		{Destination: "a/b"},
		{Destination: "ok", ID: "has#hash"},
		{Destination: "ok", ID: "has~tilde"},
		{Destination: strings.Repeat("d", 513)},
	} {
		if err := s.Put(context.Background(), []Letter{l}); !errors.Is(err, ErrInvalidLetter) {
			t.Errorf("Put(%q, %q) = %v, want ErrInvalidLetter", l.Destination, l.ID, err)
		}
	}
}

func BenchmarkPut5KB(b *testing.B) {
	s, _ := newStore(b)
	ctx := context.Background()
	payload := bytes.Repeat([]byte(`{"Severity":"High","Entities":[{"Type":"ip","Address":"10.1.2.3"}]}`), 75)[:5000]
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := s.Put(ctx, []Letter{letterAt("bench", t0, int64(i), payload)}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPut100x5KB(b *testing.B) {
	s, _ := newStore(b)
	ctx := context.Background()
	payload := bytes.Repeat([]byte(`{"Severity":"High","Entities":[{"Type":"ip","Address":"10.1.2.3"}]}`), 75)[:5000]
	b.ReportAllocs()
	b.SetBytes(100 * int64(len(payload)))
	seq := int64(0)
	for b.Loop() {
		ls := make([]Letter, 100)
		for j := range ls {
			seq++
			ls[j] = letterAt("bench", t0, seq, payload)
		}
		if err := s.Put(ctx, ls); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSASConnection(t *testing.T) {
	t.Parallel()
	az := testenv.StartAzurite(t)
	cred, err := aztables.NewSharedKeyCredential(testenv.AzuriteAccount, testenv.AzuriteAccountKey)
	if err != nil {
		t.Fatal(err)
	}
	qps, err := aztables.AccountSASSignatureValues{
		Version:       aztables.SASVersion,
		Protocol:      aztables.SASProtocolHTTPSandHTTP, // Azurite listens on plain http
		Permissions:   aztables.AccountSASPermissions{Read: true, Write: true, Delete: true, List: true, Add: true, Create: true, Update: true}.String(),
		Services:      "t",
		ResourceTypes: aztables.AccountSASResourceTypes{Service: true, Container: true, Object: true}.String(),
		StartTime:     time.Now().Add(-time.Hour).UTC(),
		ExpiryTime:    time.Now().Add(time.Hour).UTC(),
	}.Sign(cred)
	if err != nil {
		t.Fatal(err)
	}
	sas := qps.Encode()
	cfg, err := ConfigFromSettings(mapLookup(map[string]string{
		"DeadLetter__Connection": "Dlq",
		"Dlq":                    "TableEndpoint=" + az.TableEndpoint() + ";SharedAccessSignature=" + sas,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth != AuthSAS || strings.Contains(cfg.String(), sas) {
		t.Fatalf("config %s", cfg)
	}
	s, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ls := []Letter{letterAt("sas", t0, 1, []byte("payload over SAS"))}
	if err := s.Put(context.Background(), ls); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(context.Background(), "sas", ls[0].ID)
	if err != nil || string(got.Payload) != "payload over SAS" {
		t.Fatalf("Get = %q, %v", got.Payload, err)
	}

	// With storage gone, net/http reports the whole request URL; the signature must not be in it.
	az.Stop()
	start := time.Now()
	err = s.Put(context.Background(), []Letter{letterAt("sas", t0, 2, []byte("x"))})
	t.Logf("Put with default settings failed after %v", time.Since(start).Round(time.Millisecond))
	if err == nil {
		t.Fatal("Put succeeded with storage stopped")
	}
	sig := qps.Signature()
	for _, leak := range []string{sig, url.QueryEscape(sig), sas} {
		if strings.Contains(err.Error(), leak) {
			t.Fatalf("error leaks the SAS signature: %v", err)
		}
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error lost its cause: %v", err)
	}
}

// TestOddKeys checks keys that need escaping in URLs and OData filters: quotes, '%', spaces and
// non-ASCII letters are all valid in Table keys.
func TestOddKeys(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	ls := []Letter{letterAt("o'brien", t0, 1, randomBytes(t, 1<<20))}
	ls[0].ID = "id'x%20 é"
	if err := s.Put(ctx, ls); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "o'brien", ls[0].ID); err != nil {
		t.Fatal(err)
	}
	if l, err := s.List(ctx, ListOptions{Destination: "o'brien"}); err != nil || len(l) != 1 {
		t.Fatal(l, err)
	}
	if err := s.Delete(ctx, "o'brien", ls[0].ID); err != nil {
		t.Fatal(err)
	}
	if k := rawKeys(t, s, "o'brien"); len(k) != 0 {
		t.Fatal(k)
	}
}
