package sink

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

func TestSendParallelBoundsConcurrencyAndSkipsAfterCancel(t *testing.T) {
	var inFlight, peak atomic.Int32
	release := make(chan struct{})
	var mu sync.Mutex
	var sent, skipped []int
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		SendParallel(ctx, 2, []int{0, 1, 2, 3}, func(r int) {
			n := inFlight.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			<-release
			inFlight.Add(-1)
			mu.Lock()
			sent = append(sent, r)
			mu.Unlock()
		}, func(r int) {
			mu.Lock()
			skipped = append(skipped, r)
			mu.Unlock()
		})
	}()
	// Both slots are taken and the third request waits for one: ending ctx skips it and the
	// last, before any slot frees.
	waitFor(t, func() bool { return inFlight.Load() == 2 })
	cancel()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(skipped) == 2 })
	close(release)
	<-done
	slices.Sort(sent)
	if peak.Load() != 2 || !slices.Equal(sent, []int{0, 1}) || !slices.Equal(skipped, []int{2, 3}) {
		t.Errorf("peak %d, sent %v, skipped %v; want 2, [0 1], [2 3]", peak.Load(), sent, skipped)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSendHalvingSplitsOnlyTooLargeRequests(t *testing.T) {
	tooLarge := Permanent(ReasonTooLarge, errors.New("413"))
	rejected := Permanent(ReasonRejected, errors.New("400"))
	idx := []int{4, 0, 2, 1, 3}
	errs := make([]error, 5)
	var calls [][2]int
	SendHalving(idx, errs, func(lo, hi int) error {
		calls = append(calls, [2]int{lo, hi})
		switch {
		case hi-lo > 2:
			return tooLarge
		case slices.Contains(idx[lo:hi], 3):
			return rejected
		}
		return nil
	})
	// 5 → 2 + 3, the 3 → 1 + 2; a single payload that is too large stays too large.
	if want := [][2]int{{0, 5}, {0, 2}, {2, 5}, {2, 3}, {3, 5}}; !slices.Equal(calls, want) {
		t.Errorf("calls %v, want %v", calls, want)
	}
	want := []error{nil, rejected, nil, rejected, nil}
	for i := range errs {
		if errs[i] != want[i] {
			t.Errorf("payload %d: %v, want %v", i, errs[i], want[i])
		}
	}
	errs = make([]error, 1)
	SendHalving([]int{0}, errs, func(lo, hi int) error { return tooLarge })
	if errs[0] != tooLarge {
		t.Errorf("single payload: %v, want too-large", errs[0])
	}
}

func TestGzipPoolLevels(t *testing.T) {
	body := bytes.Repeat([]byte(`{"AlertType":"VM_EICAR","Severity":"High"}`+"\n"), 200)
	sizes := map[int]int{}
	for _, level := range []int{0, 1, 9} {
		p := NewGzipPool(level)
		for range 2 { // a reused writer starts afresh
			var buf bytes.Buffer
			zw := p.Get(&buf)
			if _, err := zw.Write(body); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			p.Put(zw)
			zr, err := gzip.NewReader(&buf)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("level %d: round trip %d bytes, %v", level, len(got), err)
			}
			sizes[level] = buf.Len()
		}
	}
	if sizes[0] != sizes[DefaultGzipLevel] {
		t.Errorf("level 0 wrote %d bytes, DefaultGzipLevel %d", sizes[0], sizes[DefaultGzipLevel])
	}
}

func TestNewHTTPClientReturnsRedirects(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	hc := NewHTTPClient(nil, 5*time.Second, 1)
	resp, err := hc.Post(srv.URL, "application/json", bytes.NewReader([]byte("{}")))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || hc.Timeout != 5*time.Second {
		t.Errorf("answer %d, timeout %v; want the 307 itself and 5s", resp.StatusCode, hc.Timeout)
	}
}

func TestRuns(t *testing.T) {
	sizes := []int{3, 4, 10, 1, 1, 1, 2}
	size := func(i int) int { return sizes[i] }
	all := []int{0, 1, 2, 3, 4, 5, 6}
	for _, tt := range []struct {
		name            string
		idx             []int
		maxBytes, count int
		want            [][]int
	}{
		{"nothing", nil, 10, 0, nil},
		{"all fit", all, 100, 0, [][]int{all}},
		{"by bytes; the oversized one alone", all, 7, 0, [][]int{{0, 1}, {2}, {3, 4, 5, 6}}},
		{"by count", all, 100, 3, [][]int{{0, 1, 2}, {3, 4, 5}, {6}}},
		{"both", all, 7, 2, [][]int{{0, 1}, {2}, {3, 4}, {5, 6}}},
		{"a subset keeps its order", []int{6, 0, 2}, 5, 0, [][]int{{6, 0}, {2}}},
	} {
		got := Runs(tt.idx, size, tt.maxBytes, tt.count)
		if !slices.EqualFunc(got, tt.want, slices.Equal[[]int]) {
			t.Errorf("%s: Runs = %v, want %v", tt.name, got, tt.want)
		}
	}
}
