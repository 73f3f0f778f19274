package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// vmHWM reads the peak resident set size of process pid from /proc/<pid>/status, in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM line %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// zeros is an endless body of ASCII zeros, made as it is sent.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}

// A request announcing a body larger than Forwarder__MaxRequestBytes is answered 413 before
// the body is read: the handler's peak memory stays far below the limit, let alone the body.
func TestAnnouncedOversizedBodyIsRefusedWithoutReadingIt(t *testing.T) {
	const limit = 128 << 20
	r := start(t, fmt.Sprintf("Forwarder__MaxRequestBytes=%d", limit))
	pid := r.host.PID()
	before := vmHWM(t, pid)
	const size = 2 * limit
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := r.host.InvokeStream(ctx, "ForwardAlerts", io.LimitReader(zeros{}, size), size)
	if err != nil {
		t.Fatalf("no answer: %v\n%s", err, r.stdout)
	}
	if res.Status != 413 {
		t.Fatalf("HTTP %d, want 413", res.Status)
	}
	peak := vmHWM(t, pid)
	t.Logf("handler peak RSS %d MiB before, %d MiB after a %d MiB request", before>>20, peak>>20, size>>20)
	// Generous: the handler idles near 15 MiB; reading the body up to the limit would have
	// taken it past 128.
	if peak > 48<<20 {
		t.Errorf("handler peak RSS %d MiB: the body was read before it was refused", peak>>20)
	}
	if !eventually(5*time.Second, func() bool { return strings.Contains(r.stdout.String(), "Forwarder__MaxRequestBytes") }) {
		t.Errorf("no log line naming the setting to raise:\n%s", r.stdout)
	}
	// Still serving.
	_, bodies := allSamples(t)
	ok, err := r.host.InvokeBatch(ctx, "ForwardAlerts", batch(bodies[:1], 1), 0)
	if err != nil || !ok[0].Succeeded() {
		t.Fatalf("next invocation: %v %+v", err, ok)
	}
}

// A body without a length is cut at the limit, as before.
func TestUnannouncedOversizedBodyIsCutAtTheLimit(t *testing.T) {
	r := start(t, "Forwarder__MaxRequestBytes=65536")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := r.host.InvokeStream(ctx, "ForwardAlerts", io.LimitReader(zeros{}, 1<<20), -1)
	if err != nil {
		t.Fatalf("no answer: %v\n%s", err, r.stdout)
	}
	if res.Status != 413 {
		t.Fatalf("HTTP %d, want 413", res.Status)
	}
}

// trickle sends its data one byte per interval, as a client that wants to hold a connection
// open does.
type trickle struct {
	data  []byte
	every time.Duration
	stop  <-chan struct{}
}

func (tr *trickle) Read(p []byte) (int, error) {
	if len(tr.data) == 0 {
		return 0, io.EOF
	}
	select {
	case <-tr.stop:
		return 0, errors.New("stopped")
	case <-time.After(tr.every):
	}
	p[0] = tr.data[0]
	tr.data = tr.data[1:]
	return 1, nil
}

// A client that trickles its body (one byte per 100 ms, sent chunked so that every byte goes
// out at once) is cut after Forwarder__BodyReadTimeout; the handler stays up and answers the
// next invocation.
func TestTricklingBodyIsCutAndTheHandlerStaysHealthy(t *testing.T) {
	r := start(t, "Forwarder__BodyReadTimeout=2s")
	_, bodies := allSamples(t)
	env, err := batch(bodies[:1], 1).Envelope(nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	began := time.Now()
	res, err := r.host.InvokeStream(ctx, "ForwardAlerts", &trickle{data: env, every: 100 * time.Millisecond, stop: stop}, -1)
	elapsed := time.Since(began)
	if err != nil {
		t.Fatalf("no answer: %v\n%s", err, r.stdout)
	}
	if res.Status != 408 {
		t.Fatalf("HTTP %d, want 408", res.Status)
	}
	// All of it would take len(env)/10 seconds (minutes); the cut comes at the timeout.
	if elapsed < 2*time.Second || elapsed > 30*time.Second {
		t.Errorf("cut after %v, want about 2s (sending all of it takes %v)", elapsed, time.Duration(len(env))*100*time.Millisecond)
	}
	if !eventually(5*time.Second, func() bool { return strings.Contains(r.stdout.String(), "Forwarder__BodyReadTimeout") }) {
		t.Errorf("no log line naming the setting:\n%s", r.stdout)
	}
	select {
	case <-r.host.Exited():
		t.Fatalf("the handler exited\n%s", r.stderr)
	default:
	}
	ok, err := r.host.InvokeBatch(ctx, "ForwardAlerts", batch(bodies[:1], 2), 0)
	if err != nil || !ok[0].Succeeded() {
		t.Fatalf("next invocation: %v %+v\n%s", err, ok, r.stdout)
	}
	if !eventually(5*time.Second, func() bool { return r.hec.Count() == 1 }) {
		t.Errorf("receiver got %d events, want the next invocation's one", r.hec.Count())
	}
}

// padded is an invocation body of exactly size bytes: a valid envelope with no events and a
// long padding member, made as it is sent.
func padded(size int64) io.Reader {
	head := `{"Data":{"events":"[]"},"Metadata":{},"Padding":"`
	tail := `"}`
	return io.MultiReader(strings.NewReader(head), io.LimitReader(zeros{}, size-int64(len(head)+len(tail))), strings.NewReader(tail))
}

// The default limits let a body as large as Forwarder__MaxRequestBytes arrive over loopback,
// with most of the default body read timeout to spare.
func TestBodyAtTheDefaultLimitArrivesInTime(t *testing.T) {
	r := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const size = 256 << 20 // config.DefaultMaxRequestBytes
	began := time.Now()
	res, err := r.host.InvokeStream(ctx, "ForwardAlerts", padded(size), size)
	elapsed := time.Since(began)
	if err != nil {
		t.Fatalf("no answer: %v\n%s", err, r.stdout)
	}
	t.Logf("%d MiB body answered HTTP %d after %v", size>>20, res.Status, elapsed)
	// Read whole (neither refused with 413 nor cut with 408) and decoded: an empty batch.
	if !res.Succeeded() || !strings.Contains(string(res.Body), "events=0") {
		t.Fatalf("HTTP %d %s, want the answer to an empty batch", res.Status, res.Body)
	}
	if elapsed > 15*time.Second {
		t.Errorf("reading %d MiB took %v: too close to the one-minute default", size>>20, elapsed)
	}
}

// Headers that trickle in are cut at Forwarder__ReadHeaderTimeout: the handler answers 400 (or
// nothing) and closes the connection, and goes on serving.
func TestTricklingHeadersAreCut(t *testing.T) {
	r := start(t, "Forwarder__ReadHeaderTimeout=1s")
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.host.URL(""), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // a handler that never cuts fails here
	head := "POST /ForwardAlerts HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Azure-Functions-InvocationId: 5b7c1a4e-0000-4000-8000-000000000001\r\n"
	type answer struct {
		text string
		err  error
	}
	closed := make(chan answer, 1)
	go func() {
		got, err := io.ReadAll(conn) // ends when the handler closes the connection
		closed <- answer{string(got), err}
	}()
	began := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var got answer
	sent := 0
wait:
	for {
		select {
		case got = <-closed:
			break wait
		case <-tick.C:
			if sent < len(head) {
				_, _ = conn.Write([]byte{head[sent]})
				sent++
			}
		}
	}
	cut := time.Since(began)
	// Closed, or reset because the bytes sent meanwhile were never read: either way, cut.
	if got.err != nil && !errors.Is(got.err, syscall.ECONNRESET) {
		t.Fatalf("connection not closed by the handler: %v", got.err)
	}
	if got.text != "" && !strings.HasPrefix(got.text, "HTTP/1.1 400 ") {
		t.Errorf("answer %q, want none or 400", got.text)
	}
	if sent == len(head) || cut < time.Second || cut > 5*time.Second { // the default would be 10 s
		t.Errorf("cut after %v and %d of %d header bytes, want about 1s", cut, sent, len(head))
	}
	_, bodies := allSamples(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ok, err := r.host.InvokeBatch(ctx, "ForwardAlerts", batch(bodies[:1], 1), 0)
	if err != nil || !ok[0].Succeeded() {
		t.Fatalf("next invocation: %v %+v", err, ok)
	}
}
