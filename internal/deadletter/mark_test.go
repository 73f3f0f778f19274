package deadletter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/defender-siem/forwarder/internal/dev/testenv"
	"github.com/defender-siem/forwarder/internal/sink"
)

// countingTransport counts the requests a store sends to the table service.
type countingTransport struct {
	mu   sync.Mutex
	reqs []string
	// failAfter, when positive, makes every request after that many fail, as a store that
	// goes away mid-write.
	failAfter int
	sent      int
}

func (c *countingTransport) Do(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, r.Method+" "+r.URL.Path)
	c.sent++
	fail := c.failAfter > 0 && c.sent > c.failAfter
	c.mu.Unlock()
	if fail {
		return nil, errors.New("connection refused (drill)")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// take returns the requests counted since the last call.
func (c *countingTransport) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.reqs
	c.reqs = nil
	return out
}

var _ policy.Transporter = (*countingTransport)(nil)

// countedStore is a store on a private Azurite whose requests are counted.
func countedStore(t testing.TB) (*Store, *countingTransport) {
	t.Helper()
	s, az := newStore(t)
	ct := &countingTransport{}
	cred, err := aztables.NewSharedKeyCredential(testenv.AzuriteAccount, testenv.AzuriteAccountKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := aztables.NewClientWithSharedKey(az.TableEndpoint()+"/"+s.cfg.Table, cred,
		&aztables.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: ct, Retry: policy.RetryOptions{MaxRetries: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	s.client = c
	return s, ct
}

// lettersIn returns n letters of destination d in Event Hub partition p, sequence numbers from
// seq on.
func lettersIn(d, p string, seq int64, n int) []Letter {
	out := make([]Letter, n)
	for i := range out {
		l := letterAt(d, t0.Add(time.Duration(i)*time.Millisecond), seq+int64(i), []byte(fmt.Sprintf(`{"n":%d}`, i)))
		l.Coordinates.Partition = p
		l.ID = RowKey(l.Coordinates)
		out[i] = l
	}
	return out
}

func ids(ls []Letter) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.ID
	}
	return out
}

// Put marks each (destination, Event Hub partition) it stores letters for; Forget clears the
// letters of delivered records and the mark once none of its partition are left; marks never
// show as letters.
func TestMarksFollowLetters(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	p3 := lettersIn("siem", "3", 100, 4)
	p5 := lettersIn("siem", "5", 200, 2)
	other := lettersIn("other", "3", 100, 1)
	if err := s.Put(ctx, slices.Concat(p3, p5, other)); err != nil {
		t.Fatal(err)
	}
	for dest, want := range map[string][]string{"siem": {"~partition:3", "~partition:5"}, "other": {"~partition:3"}} {
		if got := markKeys(t, s, dest); !slices.Equal(got, want) {
			t.Fatalf("%s marks %v, want %v", dest, got, want)
		}
	}
	// Marks are not letters: List and Counts never see them.
	ls, err := s.List(ctx, ListOptions{IncludeParked: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != len(p3)+len(p5)+len(other) {
		t.Errorf("List returned %d letters, want %d", len(ls), len(p3)+len(p5)+len(other))
	}
	counts, err := s.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := counts["siem"][sink.ReasonUnreachable].Active; n != len(p3)+len(p5) || len(counts) != 2 {
		t.Errorf("Counts %v, want %d letters of siem and 1 of other", counts, len(p3)+len(p5))
	}

	// Two of partition 3's records delivered: their letters go, the mark stays for the rest.
	if err := s.Forget(ctx, "siem", ids(p3[:2])); err != nil {
		t.Fatal(err)
	}
	if got := markKeys(t, s, "siem"); !slices.Contains(got, "~partition:3") {
		t.Errorf("partition 3's mark gone while its letters remain: %v", got)
	}
	// The rest delivered: the mark goes with them; the other destination's and partition's stay.
	if err := s.Forget(ctx, "siem", ids(p3[2:])); err != nil {
		t.Fatal(err)
	}
	if got, want := markKeys(t, s, "siem"), []string{"~partition:5"}; !slices.Equal(got, want) {
		t.Errorf("siem marks %v, want %v", got, want)
	}
	if got := markKeys(t, s, "other"); len(got) != 1 {
		t.Errorf("other marks %v, want partition 3's", got)
	}
	if got, want := rawKeys(t, s, "siem"), ids(p5); !slices.Equal(got, want) {
		t.Errorf("siem keeps %v, want %v", got, want)
	}
}

// A Put cut short after its first transaction leaves letters, and their mark with them.
func TestNoLetterWithoutItsMark(t *testing.T) {
	s, ct := countedStore(t)
	ctx := context.Background()
	ls := lettersIn("siem", "3", 100, 250)
	// The lookup of earlier copies, then the first transaction; everything after fails.
	ct.failAfter = len(ct.take()) + 2
	if err := s.Put(ctx, ls); err == nil {
		t.Fatal("Put succeeded with the store gone")
	}
	ct.failAfter = 0
	letters, marks := rawKeys(t, s, "siem"), markKeys(t, s, "siem")
	if len(letters) == 0 || len(letters) == len(ls) {
		t.Fatalf("%d of %d letters stored: the cut did not fall between transactions", len(letters), len(ls))
	}
	if !slices.Equal(marks, []string{"~partition:3"}) {
		t.Errorf("%d letters stored with marks %v, want partition 3's", len(letters), marks)
	}
}

// The normal path: a destination with no letters for a partition costs Forget one request.
func TestForgetWithoutMarkIsOneRead(t *testing.T) {
	s, ct := countedStore(t)
	ctx := context.Background()
	// Letters of another partition must not make partition 3 look marked.
	if err := s.Put(ctx, lettersIn("siem", "5", 1, 3)); err != nil {
		t.Fatal(err)
	}
	ct.take()
	delivered := lettersIn("siem", "3", 100, 100)
	if err := s.Forget(ctx, "siem", ids(delivered)); err != nil {
		t.Fatal(err)
	}
	reqs := ct.take()
	if len(reqs) != 1 || !strings.HasPrefix(reqs[0], "GET ") || !strings.Contains(reqs[0], "partition") {
		t.Errorf("Forget without a mark sent %q, want one point read of the mark", reqs)
	}
	if n := len(rawKeys(t, s, "siem")); n != 3 {
		t.Errorf("%d letters left, want the other partition's 3", n)
	}
}

// A mark whose letters went another way (replayed, purged) is cleared by the next Forget of
// its partition; after that Forget is one read again.
func TestStaleMarkIsSettled(t *testing.T) {
	s, ct := countedStore(t)
	ctx := context.Background()
	ls := lettersIn("siem", "3", 100, 2)
	if err := s.Put(ctx, ls); err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if err := s.Delete(ctx, "siem", l.ID); err != nil { // as a replay does
			t.Fatal(err)
		}
	}
	if got := markKeys(t, s, "siem"); len(got) != 1 {
		t.Fatalf("marks %v, want the one of partition 3", got)
	}
	later := lettersIn("siem", "3", 500, 5)
	if err := s.Forget(ctx, "siem", ids(later)); err != nil {
		t.Fatal(err)
	}
	if got := markKeys(t, s, "siem"); len(got) != 0 {
		t.Errorf("marks %v left with no letters", got)
	}
	ct.take()
	if err := s.Forget(ctx, "siem", ids(later)); err != nil {
		t.Fatal(err)
	}
	if reqs := ct.take(); len(reqs) != 1 {
		t.Errorf("Forget after the mark was settled sent %q, want one read", reqs)
	}
}

// Parked letters keep their mark: an operator's replay of them would send a record twice as
// surely as the timer's.
func TestParkedLettersKeepTheirMark(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	ls := lettersIn("siem", "3", 100, 2)
	ls[1].Parked = true
	if err := s.Put(ctx, ls); err != nil {
		t.Fatal(err)
	}
	if err := s.Forget(ctx, "siem", ids(ls[:1])); err != nil {
		t.Fatal(err)
	}
	if got := markKeys(t, s, "siem"); len(got) != 1 {
		t.Errorf("marks %v, want partition 3's kept for the parked letter", got)
	}
	if err := s.Forget(ctx, "siem", ids(ls[1:])); err != nil {
		t.Fatal(err)
	}
	if got := rawKeys(t, s, "siem"); len(got) != 0 {
		t.Errorf("letters %v left", got)
	}
}

// A Put that stores letters after Forget read the mark rewrites it, so the mark is not
// deleted from under the new letters.
func TestSettleKeepsAMarkRewrittenMeanwhile(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	first := lettersIn("siem", "3", 100, 1)
	if err := s.Put(ctx, first); err != nil {
		t.Fatal(err)
	}
	rk, _ := markKey(first[0].ID)
	m, ok, err := s.readMark(ctx, "siem", rk)
	if err != nil || !ok {
		t.Fatalf("mark: %v %v", ok, err)
	}
	if err := s.Delete(ctx, "siem", first[0].ID); err != nil {
		t.Fatal(err)
	}
	// Another instance stores a letter of the same partition between the read and the check.
	if err := s.Put(ctx, lettersIn("siem", "3", 900, 1)); err != nil {
		t.Fatal(err)
	}
	// Even with the new letter hidden from the check (its partition differs), the stale
	// version must not delete the mark.
	m.partition = "no-such-partition"
	if cleared, err := s.settle(ctx, "siem", m); err != nil || cleared {
		t.Errorf("settle with a stale version: cleared %v, err %v; want the mark kept", cleared, err)
	}
	if got := markKeys(t, s, "siem"); len(got) != 1 {
		t.Errorf("marks %v, want partition 3's", got)
	}
}

// Letters whose ids RowKey did not derive carry no mark, and Forget still finds them;
// undecodable messages are never marked.
func TestUnmarkedLetters(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	chosen := letterAt("siem", t0, 1, []byte(`{"a":1}`))
	chosen.ID = "nocoord-0123456789abcdef-0"
	undecodable := letterAt(UndecodablePartition, t0, 2, []byte(`{`))
	if err := s.Put(ctx, []Letter{chosen, undecodable}); err != nil {
		t.Fatal(err)
	}
	if got := markKeys(t, s, "siem"); len(got) != 0 {
		t.Errorf("marks %v, want none", got)
	}
	if err := s.Forget(ctx, "siem", []string{chosen.ID}); err != nil {
		t.Fatal(err)
	}
	if got := rawKeys(t, s, "siem"); len(got) != 0 {
		t.Errorf("letter %v not forgotten", got)
	}
}

func TestMarkKey(t *testing.T) {
	id := func(p string, seq int64, idx int) string {
		return RowKey(Coordinates{Partition: p, SequenceNumber: seq, Index: idx, EnqueuedTime: t0})
	}
	tests := []struct {
		id   string
		want string
		ok   bool
	}{
		{id("3", 42, 0), "~partition:3", true},
		{id("", 42, 0), "~partition:", true},
		{id("a-b", 7, 3), "~partition:a-b", true},
		{id("p:1/2", 7, 3), "~partition:p%3A1%2F2", true},
		{id("3", -5, 0), "~partition:3-", true}, // not ordered, but stable
		{"nocoord-00ff-1", "", false},
		{"", "", false},
		{"20261128T030405.1234567Z-3-0000000000000000004x-000000", "", false},
		{id("3", 1, 0) + "~001", "", false},
	}
	for _, tc := range tests {
		got, ok := markKey(tc.id)
		if got != tc.want || ok != tc.ok {
			t.Errorf("markKey(%q) = %q %v, want %q %v", tc.id, got, ok, tc.want, tc.ok)
		}
		// A mark can never be taken for a letter or a continuation.
		if ok && (checkID(got) == nil || !isContinuation(got)) {
			t.Errorf("mark %q could pass for a letter id", got)
		}
	}
}

// BenchmarkForgetDelivered is what clearing earlier letters costs a delivered batch of 100
// records of partition 3, on loopback Azurite:
//   - "no letters/mark read" is the normal path: no mark for the partition, one point read;
//   - "no letters/range query" is what the same call would cost without marks (one range
//     query over the batch's ids), shown for comparison;
//   - the "others failing" variants hold 1,000 letters of partition 5 in the same time span,
//     as when the destination fails for another partition.
func BenchmarkForgetDelivered(b *testing.B) {
	s, _ := newStore(b)
	ctx := context.Background()
	delivered := ids(lettersIn("siem", "3", 100, 100))
	run := func(name string, forget func() error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := forget(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	run("no letters/mark read", func() error { return s.Forget(ctx, "siem", delivered) })
	run("no letters/range query", func() error { return s.forgetRange(ctx, "siem", delivered) })
	if err := s.Put(ctx, lettersIn("siem", "5", 100, 1000)); err != nil {
		b.Fatal(err)
	}
	run("others failing/mark read", func() error { return s.Forget(ctx, "siem", delivered) })
	run("others failing/range query", func() error { return s.forgetRange(ctx, "siem", delivered) })
}
