package relp_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/sink"
	"github.com/defender-siem/forwarder/internal/sink/relp"
)

// peer is one connection to the scripted server, from the server's side.
type peer struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func (p *peer) read() (relp.Frame, error) { return relp.ReadFrame(p.r, 1<<20) }

func (p *peer) send(txnr int, cmd string, data string) {
	b, err := relp.AppendFrame(nil, relp.Frame{Txnr: txnr, Command: cmd, Data: []byte(data)})
	if err != nil {
		p.t.Error(err)
		return
	}
	_, _ = p.conn.Write(b)
}

func (p *peer) answer(txnr int, status int, text string) {
	p.send(txnr, "rsp", fmt.Sprintf("%03d %s", status, text))
}

// acceptOpen reads the open and answers it as imrelp does.
func (p *peer) acceptOpen() (relp.Frame, bool) {
	f, err := p.read()
	if err != nil || f.Command != "open" {
		p.t.Errorf("want an open, got %+v %v", f, err)
		return f, false
	}
	p.answer(f.Txnr, 200, "OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog")
	return f, true
}

// firstFrame accepts the open and reads the frame after it; ok is false when the session
// ended before.
func (p *peer) firstFrame() (relp.Frame, bool) {
	if _, ok := p.acceptOpen(); !ok {
		return relp.Frame{}, false
	}
	f, err := p.read()
	return f, err == nil
}

// fakeServer runs handle for every connection, in order: the nth connection gets handlers[n],
// the last handler serves every connection after that.
type fakeServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns int
	wg    sync.WaitGroup
}

func serve(t *testing.T, handlers ...func(p *peer)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{ln: ln}
	var open []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			n := s.conns
			s.conns++
			s.mu.Unlock()
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			h := handlers[min(n, len(handlers)-1)]
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				h(&peer{t: t, conn: c, r: bufio.NewReader(c)})
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *fakeServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func newTestClient(t *testing.T, addr string, mod func(*relp.Config)) *relp.Client {
	t.Helper()
	cfg := relp.DefaultConfig()
	cfg.Address = addr
	cfg.DialTimeout = 5 * time.Second
	cfg.AckTimeout = 5 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	c, err := relp.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func msgs(n int, prefix string) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "<13>1 - - - - - %s %d", prefix, i)
	}
	return out
}

func mustAll(t *testing.T, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
}

// answerAll answers every syslog frame 200 and records the data, until the client closes.
func answerAll(got *syncList) func(p *peer) {
	return func(p *peer) {
		if _, ok := p.acceptOpen(); !ok {
			return
		}
		for {
			f, err := p.read()
			if err != nil {
				return
			}
			switch f.Command {
			case "syslog":
				got.add(string(f.Data))
				p.answer(f.Txnr, 200, "OK")
			case "close":
				p.answer(f.Txnr, 200, "OK")
				p.send(0, "serverclose", "")
				return
			}
		}
	}
}

type syncList struct {
	mu sync.Mutex
	s  []string
}

func (l *syncList) add(s string) { l.mu.Lock(); l.s = append(l.s, s); l.mu.Unlock() }
func (l *syncList) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.s...)
}

func TestOpenOffersAndClose(t *testing.T) {
	var (
		mu       sync.Mutex
		openData string
		txnrs    []int
	)
	closed := make(chan int, 1)
	srv := serve(t, func(p *peer) {
		f, ok := p.acceptOpen()
		if !ok {
			return
		}
		mu.Lock()
		openData = string(f.Data)
		txnrs = append(txnrs, f.Txnr)
		mu.Unlock()
		for {
			f, err := p.read()
			if err != nil {
				return
			}
			mu.Lock()
			txnrs = append(txnrs, f.Txnr)
			mu.Unlock()
			p.answer(f.Txnr, 200, "OK")
			if f.Command == "close" {
				closed <- f.Txnr
				return
			}
		}
	})
	c := newTestClient(t, srv.ln.Addr().String(), nil)
	mustAll(t, c.Send(context.Background(), msgs(3, "a")))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-closed:
		if n != 5 {
			t.Errorf("close went as transaction %d, want 5 (open 1, three messages, close)", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no close transaction")
	}
	mu.Lock()
	defer mu.Unlock()
	want := "relp_version=0\ncommands=syslog\nrelp_software=defender-siem-forwarder,1,https://github.com/defender-siem/forwarder"
	if openData != want {
		t.Errorf("open offers %q, want %q", openData, want)
	}
	if fmt.Sprint(txnrs) != "[1 2 3 4 5]" {
		t.Errorf("transaction numbers %v, want 1 to 5", txnrs)
	}
	// A closed client fails retryably and does not reconnect.
	errs := c.Send(context.Background(), msgs(1, "late"))
	if errs[0] == nil || sink.IsPermanent(errs[0]) {
		t.Errorf("send after close: %v, want a retryable error", errs[0])
	}
	if n := srv.connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// The client never has more than Window transactions unanswered, and keeps going as answers
// come.
func TestWindow(t *testing.T) {
	const window = 4
	var mu sync.Mutex
	maxOpen := 0
	srv := serve(t, func(p *peer) {
		if _, ok := p.acceptOpen(); !ok {
			return
		}
		frames := make(chan relp.Frame)
		go func() {
			defer close(frames)
			for {
				f, err := p.read()
				if err != nil {
					return
				}
				frames <- f
			}
		}()
		var pending []int
		for {
			select {
			case f, ok := <-frames:
				if !ok {
					return
				}
				if f.Command == "close" {
					p.answer(f.Txnr, 200, "OK")
					return
				}
				if f.Command == "syslog" {
					pending = append(pending, f.Txnr)
					mu.Lock()
					maxOpen = max(maxOpen, len(pending))
					mu.Unlock()
				}
			case <-time.After(100 * time.Millisecond):
				// The client has stopped writing: answer the oldest one.
				if len(pending) > 0 {
					p.answer(pending[0], 200, "OK")
					pending = pending[1:]
				}
			}
		}
	})
	c := newTestClient(t, srv.ln.Addr().String(), func(c *relp.Config) { c.Window = window })
	mustAll(t, c.Send(context.Background(), msgs(12, "w")))
	mu.Lock()
	defer mu.Unlock()
	if maxOpen != window {
		t.Errorf("at most %d transactions were open at once, want the window, %d", maxOpen, window)
	}
}

// An answer other than 200 fails that message permanently and only that one.
func TestNon200FailsOnlyItsMessage(t *testing.T) {
	srv := serve(t, func(p *peer) {
		if _, ok := p.acceptOpen(); !ok {
			return
		}
		for {
			f, err := p.read()
			if err != nil {
				return
			}
			if strings.HasSuffix(string(f.Data), " 1") {
				p.answer(f.Txnr, 500, "queue full")
				continue
			}
			p.answer(f.Txnr, 200, "OK")
		}
	})
	c := newTestClient(t, srv.ln.Addr().String(), nil)
	errs := c.Send(context.Background(), msgs(3, "n"))
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("messages 0 and 2: %v %v, want delivered", errs[0], errs[2])
	}
	if !sink.IsPermanent(errs[1]) || sink.ReasonOf(errs[1]) != sink.ReasonRejected || !strings.Contains(errs[1].Error(), `500 "queue full"`) {
		t.Fatalf("message 1: %v, want permanent rejected quoting the answer", errs[1])
	}
}

// The session breaks after some answers: what was answered counts, the rest is sent again on a
// new session, and every message ends delivered (some may arrive twice).
func TestBrokenSessionResendsUnanswered(t *testing.T) {
	got := &syncList{}
	first := func(p *peer) {
		if _, ok := p.acceptOpen(); !ok {
			return
		}
		for i := 0; ; i++ {
			f, err := p.read()
			if err != nil {
				return
			}
			got.add(string(f.Data))
			if i < 3 {
				p.answer(f.Txnr, 200, "OK")
			}
			if i == 5 {
				return // received six, answered three: a crash
			}
		}
	}
	srv := serve(t, first, answerAll(got))
	c := newTestClient(t, srv.ln.Addr().String(), func(c *relp.Config) { c.Window = 8 })
	batch := msgs(10, "b")
	mustAll(t, c.Send(context.Background(), batch))
	if n := srv.connections(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
	count := map[string]int{}
	for _, m := range got.list() {
		count[m]++
	}
	for i, m := range batch {
		n := count[string(m)]
		switch {
		case i >= 3 && i <= 5 && n != 2:
			t.Errorf("%q arrived %d times, want 2: received, unanswered, so sent again", m, n)
		case i > 5 && n != 1:
			t.Errorf("%q arrived %d times, want 1: the first session never had it", m, n)
		case i < 3 && (n < 1 || n > 2):
			// Answered, but the crash's reset may discard an answer before the client reads
			// it, and then the message goes again.
			t.Errorf("%q arrived %d times, want 1 or 2", m, n)
		}
	}
}

// A receiver that closes the session on one message (imrelp with oversizeMode="abort" does
// this for a message over maxDataSize): that message fails alone, retryably, and every other
// message of the batch is delivered.
func TestPoisonMessageFailsAlone(t *testing.T) {
	got := &syncList{}
	srv := serve(t, func(p *peer) {
		if _, ok := p.acceptOpen(); !ok {
			return
		}
		for {
			f, err := p.read()
			if err != nil {
				return
			}
			if strings.Contains(string(f.Data), "poison") {
				return
			}
			if f.Command == "syslog" {
				got.add(string(f.Data))
			}
			p.answer(f.Txnr, 200, "OK")
		}
	})
	c := newTestClient(t, srv.ln.Addr().String(), nil)
	batch := msgs(6, "p")
	batch[3] = []byte("<13>1 - - - - - poison")
	errs := c.Send(context.Background(), batch)
	for i, err := range errs {
		switch {
		case i == 3 && (err == nil || sink.IsPermanent(err) || !strings.Contains(err.Error(), "sent alone")):
			t.Errorf("the poison message: %v, want a retryable error saying it broke the session alone", err)
		case i != 3 && err != nil:
			t.Errorf("message %d: %v, want delivered", i, err)
		}
	}
	if n := srv.connections(); n != 4 {
		t.Errorf("%d connections, want 4: the batch, its rest, the poison alone, the rest after it", n)
	}
	count := map[string]int{}
	for _, m := range got.list() {
		count[m]++
	}
	for i, m := range batch {
		if i != 3 && count[string(m)] == 0 {
			t.Errorf("%q never arrived", m)
		}
	}
}

// A serverclose hint: the client stops sending on that session, and what the server did not
// answer goes again on a new one.
func TestServerCloseHint(t *testing.T) {
	got := &syncList{}
	first := func(p *peer) {
		f, ok := p.firstFrame()
		if !ok {
			return
		}
		got.add(string(f.Data))
		p.answer(f.Txnr, 200, "OK")
		p.send(0, "serverclose", "")
		// Drain without answering until the client gives up on this session.
		for {
			if _, err := p.read(); err != nil {
				return
			}
		}
	}
	srv := serve(t, first, answerAll(got))
	c := newTestClient(t, srv.ln.Addr().String(), func(c *relp.Config) { c.Window = 1 })
	mustAll(t, c.Send(context.Background(), msgs(4, "h")))
	if n := srv.connections(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
	if l := got.list(); len(l) != 4 {
		t.Errorf("server recorded %q, want the four messages once each", l)
	}
}

// A server that reads and never answers: the client gives up after AckTimeout, reconnects
// only if the session moved something forward, and fails the rest as retryable.
func TestNoAnswer(t *testing.T) {
	srv := serve(t, func(p *peer) {
		if _, ok := p.acceptOpen(); !ok {
			return
		}
		for {
			if _, err := p.read(); err != nil {
				return
			}
		}
	})
	c := newTestClient(t, srv.ln.Addr().String(), func(c *relp.Config) { c.AckTimeout = 300 * time.Millisecond })
	start := time.Now()
	errs := c.Send(context.Background(), msgs(3, "s"))
	for i, err := range errs {
		if err == nil || sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonTimeout {
			t.Errorf("message %d: %v, want retryable timeout", i, err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
	if n := srv.connections(); n != 1 {
		t.Errorf("%d connections, want 1: a fresh session that answered nothing is not retried at once", n)
	}
}

// The context ends while answers are outstanding: the unanswered fail as retryable timeouts.
func TestContextEndsWithTransactionsOpen(t *testing.T) {
	srv := serve(t, func(p *peer) {
		f, ok := p.firstFrame()
		if !ok {
			return
		}
		p.answer(f.Txnr, 200, "OK")
		for {
			if _, err := p.read(); err != nil {
				return
			}
		}
	})
	c := newTestClient(t, srv.ln.Addr().String(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	errs := c.Send(ctx, msgs(3, "c"))
	if errs[0] != nil {
		t.Errorf("message 0: %v, want delivered", errs[0])
	}
	for i, err := range errs[1:] {
		if err == nil || sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonTimeout {
			t.Errorf("message %d: %v, want retryable timeout", i+1, err)
		}
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newTestClient(t, addr, nil)
	errs := c.Send(context.Background(), [][]byte{[]byte("x"), nil})
	if errs[0] == nil || sink.IsPermanent(errs[0]) || sink.ReasonOf(errs[0]) != sink.ReasonUnreachable {
		t.Errorf("got %v, want retryable unreachable", errs[0])
	}
	if !sink.IsPermanent(errs[1]) || sink.ReasonOf(errs[1]) != sink.ReasonRejected {
		t.Errorf("empty message: %v, want permanent rejected", errs[1])
	}
}

// Transaction numbers wrap from 999999999 to 1, as the specification says.
func TestTxnrWraps(t *testing.T) {
	var mu sync.Mutex
	var txnrs []int
	srv := serve(t, func(p *peer) {
		for {
			f, err := p.read()
			if err != nil {
				return
			}
			mu.Lock()
			txnrs = append(txnrs, f.Txnr)
			mu.Unlock()
			if f.Command == "open" {
				p.answer(f.Txnr, 200, "OK\nrelp_version=0\ncommands=syslog")
				continue
			}
			p.answer(f.Txnr, 200, "OK")
		}
	})
	c := newTestClient(t, srv.ln.Addr().String(), nil)
	c.SetFirstTxnr(relp.MaxTxnr - 1)
	mustAll(t, c.Send(context.Background(), msgs(3, "t")))
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(txnrs) != "[999999998 999999999 1 2]" {
		t.Errorf("transaction numbers %v, want 999999998 999999999 1 2", txnrs)
	}
}

// Answers a client must not accept break the session before any message counts as delivered.
func TestBadOpenAnswers(t *testing.T) {
	tests := []struct {
		name, answer, want string
	}{
		{"refused", "500 required command not supported by client", "refused the session"},
		{"no version", "200 OK\ncommands=syslog", "no relp_version"},
		{"no syslog", "200 OK\nrelp_version=0\ncommands=eventlog", "does not offer the syslog command"},
		{"garbage", "OK", "three-digit status"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, func(p *peer) {
				f, err := p.read()
				if err != nil {
					return
				}
				p.send(f.Txnr, "rsp", tc.answer)
				_, _ = p.read()
			})
			c := newTestClient(t, srv.ln.Addr().String(), nil)
			errs := c.Send(context.Background(), msgs(1, "o"))
			if errs[0] == nil || !strings.Contains(errs[0].Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", errs[0], tc.want)
			}
		})
	}
}

// An answer to a transaction that is not open means the two sides disagree: the session is
// dropped and the message sent again on a new one.
func TestAnswerForUnknownTxnr(t *testing.T) {
	got := &syncList{}
	first := func(p *peer) {
		f, ok := p.firstFrame()
		if !ok {
			return
		}
		got.add(string(f.Data))
		p.answer(f.Txnr+100, 200, "OK")
		_, _ = p.read()
	}
	srv := serve(t, first, answerAll(got))
	c := newTestClient(t, srv.ln.Addr().String(), nil)
	// The first session answered nothing it was asked, so this Send fails; the next one, on a
	// new session, delivers.
	errs := c.Send(context.Background(), msgs(1, "u"))
	if errs[0] == nil || sink.IsPermanent(errs[0]) || !strings.Contains(errs[0].Error(), "not open") {
		t.Fatalf("got %v, want a retryable error about the stray answer", errs[0])
	}
	mustAll(t, c.Send(context.Background(), msgs(1, "u")))
	if n := srv.connections(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// A session the server closed while the client was idle is replaced before the next batch,
// without failing anything.
func TestIdleSessionClosedByServer(t *testing.T) {
	got := &syncList{}
	gone := make(chan struct{})
	first := func(p *peer) {
		defer close(gone)
		f, ok := p.firstFrame()
		if !ok {
			return
		}
		got.add(string(f.Data))
		p.answer(f.Txnr, 200, "OK")
	}
	srv := serve(t, first, answerAll(got))
	c := newTestClient(t, srv.ln.Addr().String(), nil)
	mustAll(t, c.Send(context.Background(), msgs(1, "i")))
	<-gone
	mustAll(t, c.Send(context.Background(), msgs(2, "j")))
	if n := srv.connections(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestConfigValidate(t *testing.T) {
	c := relp.Config{Address: "nohost", Window: 0, Software: "a\nb"}
	err := c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"host:port", "Window 0", "DialTimeout", "WriteTimeout", "AckTimeout", "Software"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v does not mention %s", err, want)
		}
	}
	d := relp.DefaultConfig()
	d.Address = "127.0.0.1:20514"
	if err := d.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if d.Window != 128 {
		t.Errorf("default window %d, want 128", d.Window)
	}
}

// benchSend sends 1 KB messages in batches of 1000 to address with the given window, b.N in
// all, reporting messages a second.
func benchSend(b *testing.B, address string, window int) {
	cfg := relp.DefaultConfig()
	cfg.Address = address
	cfg.Window = window
	c, err := relp.New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := []byte("<134>1 2026-11-28T08:00:00Z fwd-1 defender - alert - " + strings.Repeat("x", 1000))
	batch := make([][]byte, 1000)
	for i := range batch {
		batch[i] = msg
	}
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += len(batch) {
		n := min(len(batch), b.N-sent)
		for i, err := range c.Send(context.Background(), batch[:n]) {
			if err != nil {
				b.Fatalf("message %d: %v", i, err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkClient measures the client alone against a scripted server on loopback that answers
// every message at once: the window's effect without a collector's cost.
func BenchmarkClient(b *testing.B) {
	for _, window := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("window %d", window), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go answerAll(&syncList{})(&peer{t: b, conn: c, r: bufio.NewReader(c)})
				}
			}()
			benchSend(b, ln.Addr().String(), window)
		})
	}
}
