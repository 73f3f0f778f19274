package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/hostsim"
	"github.com/defender-siem/forwarder/internal/hostproto"
	"github.com/defender-siem/forwarder/internal/pipeline"
)

// The README promises: the handler answers a tenth of functionTimeout (at most a minute)
// before the host's limit, and deliveries stop retrying a quarter of the remaining time (at
// most a minute) earlier still.
func TestBudget(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		timeout             time.Duration
		deliverBy, answerBy time.Duration // after start
	}{
		{30 * time.Second, 20250 * time.Millisecond, 27 * time.Second},
		{time.Minute, 40500 * time.Millisecond, 54 * time.Second},
		{4 * time.Minute, 162 * time.Second, 216 * time.Second},           // reserve 54 s, under its cap
		{5 * time.Minute, 210 * time.Second, 270 * time.Second},           // reserve capped at a minute
		{10 * time.Minute, 8 * time.Minute, 9 * time.Minute},              // margin reaches its cap
		{20 * time.Minute, 18 * time.Minute, 19 * time.Minute},            // both capped
		{2 * time.Hour, 118 * time.Minute, 119 * time.Minute},             // a Premium plan's long timeout
		{1 * time.Second, 675 * time.Millisecond, 900 * time.Millisecond}, // tiny, still ordered
	}
	for _, tc := range tests {
		t.Run(tc.timeout.String(), func(t *testing.T) {
			deliverBy, answerBy := Budget(start, tc.timeout)
			if got := deliverBy.Sub(start); got != tc.deliverBy {
				t.Errorf("deliverBy = start+%v, want start+%v", got, tc.deliverBy)
			}
			if got := answerBy.Sub(start); got != tc.answerBy {
				t.Errorf("answerBy = start+%v, want start+%v", got, tc.answerBy)
			}
			if !deliverBy.Before(answerBy) || !answerBy.Before(start.Add(tc.timeout)) {
				t.Errorf("order: deliverBy %v, answerBy %v, host gives up at %v", deliverBy, answerBy, start.Add(tc.timeout))
			}
		})
	}
}

// recorder is a Processor that counts batches and can take its time.
type recorder struct {
	batches  atomic.Int32
	canceled atomic.Bool
	work     time.Duration
}

func (p *recorder) Process(ctx context.Context, b hostproto.Batch, _ time.Time) pipeline.Report {
	p.batches.Add(1)
	if p.work > 0 {
		select {
		case <-ctx.Done():
			p.canceled.Store(true)
			return pipeline.Report{Err: ctx.Err()}
		case <-time.After(p.work):
		}
	}
	return pipeline.Report{Events: len(b.Events)}
}

func envelope(t *testing.T, n int) []byte {
	t.Helper()
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = []byte(`{"AlertType":"x","SystemAlertId":"` + fmt.Sprint(i) + `"}`)
	}
	env, err := hostsim.Batch{DataType: hostsim.DataTypeString, Bodies: bodies, PartitionID: "0", MethodName: ForwardFunction}.Envelope(nil)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func startServer(t *testing.T, p Processor, opts Options) *httptest.Server {
	t.Helper()
	if opts.FunctionTimeout == 0 {
		opts.FunctionTimeout = time.Minute
	}
	srv := httptest.NewServer(New(p, nil, opts))
	t.Cleanup(srv.Close)
	return srv
}

// rawRequest writes a request head on a fresh connection and returns the connection and a
// reader of the answer.
func rawRequest(t *testing.T, srv *httptest.Server, head string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // a hung server fails the test
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	return conn, bufio.NewReader(conn)
}

// A Content-Length above the limit is answered 413 with no byte of the body sent: the handler
// cannot have read it.
func TestAnnouncedOversizedBodyIsRefusedBeforeItIsRead(t *testing.T) {
	p := &recorder{}
	srv := startServer(t, p, Options{MaxRequestBytes: 1 << 20, BodyReadTimeout: time.Minute})
	_, br := rawRequest(t, srv, "POST /ForwardAlerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer without the body: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "1048576") {
		t.Fatalf("HTTP %d %s, want 413 naming the limit", resp.StatusCode, body)
	}
	if p.batches.Load() != 0 {
		t.Error("the batch was processed")
	}
}

func TestBodyLimit(t *testing.T) {
	small := envelope(t, 2)
	big := envelope(t, 2000)
	limit := int64(len(small) + 100)
	tests := []struct {
		name    string
		body    []byte
		chunked bool
		want    int
	}{
		{"fits, with a length", small, false, http.StatusOK},
		{"fits, chunked", small, true, http.StatusOK},
		{"too large, with a length", big, false, http.StatusRequestEntityTooLarge},
		{"too large, chunked: cut at the limit", big, true, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &recorder{}
			srv := startServer(t, p, Options{MaxRequestBytes: limit, BodyReadTimeout: time.Minute})
			var body io.Reader = bytes.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length: the client sends it chunked
			}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/"+ForwardFunction, body)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tc.want)
			}
			if wantBatches := int32(0); tc.want == http.StatusOK {
				wantBatches = 1
				if p.batches.Load() != wantBatches {
					t.Errorf("%d batches processed, want %d", p.batches.Load(), wantBatches)
				}
			} else if p.batches.Load() != 0 {
				t.Error("an oversized batch was processed")
			}
		})
	}
}

// A body trickled a byte at a time is cut at BodyReadTimeout with 408, and the server goes on
// answering.
func TestTricklingBodyIsCut(t *testing.T) {
	p := &recorder{}
	const timeout = 500 * time.Millisecond
	srv := startServer(t, p, Options{MaxRequestBytes: 1 << 20, BodyReadTimeout: timeout})
	env := envelope(t, 2)
	conn, br := rawRequest(t, srv, fmt.Sprintf("POST /ForwardAlerts HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(env)))
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for _, b := range env {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := conn.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to the trickled body: %v", err)
	}
	resp.Body.Close()
	elapsed := time.Since(start)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("HTTP %d, want 408", resp.StatusCode)
	}
	// The whole body would take len(env)/10 seconds; the cut comes at the timeout.
	if elapsed < timeout || elapsed > 20*time.Second {
		t.Errorf("cut after %v, want about %v", elapsed, timeout)
	}
	if p.batches.Load() != 0 {
		t.Error("the trickled batch was processed")
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/"+ForwardFunction, bytes.NewReader(env))
	next, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	next.Body.Close()
	if next.StatusCode != http.StatusOK || p.batches.Load() != 1 {
		t.Fatalf("next invocation: HTTP %d, %d batches", next.StatusCode, p.batches.Load())
	}
}

// The body's deadline ends with the body: an invocation that delivers for longer than
// BodyReadTimeout is not cancelled by it (a read deadline left on the connection would fail
// the server's watch for a vanished client, which cancels the request's context).
func TestBodyDeadlineDoesNotCutALongInvocation(t *testing.T) {
	p := &recorder{work: 1500 * time.Millisecond}
	srv := startServer(t, p, Options{MaxRequestBytes: 1 << 20, BodyReadTimeout: 200 * time.Millisecond})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/"+ForwardFunction, bytes.NewReader(envelope(t, 3)))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || p.canceled.Load() {
		t.Fatalf("HTTP %d, cancelled %v: the read deadline outlived the body", resp.StatusCode, p.canceled.Load())
	}
}

// releaseBody lets the next invocation overwrite a body as soon as its batch is decoded: that
// is safe only if the batch owns every byte it holds, in every shape the host sends.
func TestDecodedBatchOwnsItsBytes(t *testing.T) {
	bodies := [][]byte{
		[]byte(`{"AlertType":"x","SystemAlertId":"1","Description":"a \"quoted\" \\ line\n"}`),
		[]byte(`{"AlertType":"y","SystemAlertId":"2"}`),
	}
	for _, dt := range []hostsim.DataType{hostsim.DataTypeString, hostsim.DataTypeBinary, hostsim.DataTypeNone} {
		t.Run(string(dt), func(t *testing.T) {
			b := hostsim.Batch{
				DataType: dt, Bodies: bodies, PartitionID: "7", Namespace: "ns.servicebus.windows.net",
				EventHub: "hub", ConsumerGroup: "$Default", FirstSequence: 41, FirstOffset: 900,
				Enqueued: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC), MethodName: ForwardFunction,
			}
			env, err := b.Envelope(&hostsim.RetryContext{RetryCount: 1, MaxRetryCount: 3})
			if err != nil {
				t.Fatal(err)
			}
			want, err := decodeInvocation(bytes.Clone(env), nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeInvocation(env, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range env {
				env[i] = 'X'
			}
			if len(got.Events) != len(bodies) || !reflect.DeepEqual(got, want) {
				t.Fatalf("after the body was overwritten the batch reads\n%+v\nwant\n%+v", got, want)
			}
			for i, ev := range got.Events {
				if !bytes.Equal(ev.Body, bodies[i]) {
					t.Errorf("event %d body %q, want %q", i, ev.Body, bodies[i])
				}
			}
		})
	}
}

// checker is a Processor that reads its batch twice, at the start and after others have had
// time to run, and notes any event that is not what its invocation sent.
type checker struct {
	mu    sync.Mutex
	wrong []string
}

func (c *checker) Process(_ context.Context, b hostproto.Batch, _ time.Time) pipeline.Report {
	check := func(when string) {
		if len(b.Events) == 0 {
			c.note("no events " + when)
			return
		}
		// Every body of an invocation carries the invocation's tag, set in its first event.
		tag := tagOf(b.Events[0].Body)
		for i, ev := range b.Events {
			if got := tagOf(ev.Body); got != tag || !bytes.HasSuffix(ev.Body, []byte(fmt.Sprintf(`"n":%d}`, i))) {
				c.note(fmt.Sprintf("%s: event %d of invocation %s reads %.60q", when, i, tag, ev.Body))
			}
		}
	}
	check("at the start")
	time.Sleep(5 * time.Millisecond)
	check("after a while")
	return pipeline.Report{Events: len(b.Events)}
}

func (c *checker) note(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wrong = append(c.wrong, s)
}

func tagOf(body []byte) string {
	_, rest, _ := bytes.Cut(body, []byte(`"tag":"`))
	tag, _, _ := bytes.Cut(rest, []byte(`"`))
	return string(tag)
}

// The events are decoded into buffers that later invocations reuse: invocations running at
// once, one after the other on each connection, must each read their own events until they
// are answered. Bodies are large enough that the decoder takes the pooled path.
func TestConcurrentInvocationsKeepTheirOwnEvents(t *testing.T) {
	c := &checker{}
	srv := startServer(t, c, Options{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 15 {
				tag := fmt.Sprintf("w%d-k%d", w, k)
				bodies := make([][]byte, 40)
				for i := range bodies {
					pad := strings.Repeat(string(rune('a'+(w+k+i)%26)), 200)
					bodies[i] = []byte(fmt.Sprintf(`{"tag":"%s","AlertType":"x \"%s\"","n":%d}`, tag, pad, i))
				}
				env, err := hostsim.Batch{DataType: hostsim.DataTypeString, Bodies: bodies, PartitionID: fmt.Sprint(w), MethodName: ForwardFunction}.Envelope(nil)
				if err != nil {
					c.note(err.Error())
					return
				}
				resp, err := srv.Client().Post(srv.URL+"/"+ForwardFunction, "application/json", bytes.NewReader(env))
				if err != nil {
					c.note(err.Error())
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					c.note(fmt.Sprintf("%s answered %d", tag, resp.StatusCode))
				}
			}
		}()
	}
	wg.Wait()
	for _, w := range c.wrong {
		t.Error(w)
	}
}
