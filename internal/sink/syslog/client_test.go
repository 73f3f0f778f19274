package syslog_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/sink"
	"github.com/defender-siem/forwarder/internal/sink/syslog"
)

func newClient(t testing.TB, addr string, mod func(*syslog.Config)) *syslog.Client {
	t.Helper()
	cfg := syslog.DefaultConfig()
	cfg.Address = addr
	if mod != nil {
		mod(&cfg)
	}
	c, err := syslog.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func payloads(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func allNil(t testing.TB, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("payload %d: %v", i, err)
		}
	}
}

// listener is a loopback TCP receiver whose behaviour each test chooses.
type listener struct {
	net.Listener
	mu    sync.Mutex
	conns int
	data  []byte
}

func listen(t testing.TB, handle func(l *listener, c net.Conn)) *listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &listener{Listener: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.conns++
			l.mu.Unlock()
			go handle(l, c)
		}
	}()
	return l
}

func (l *listener) addr() string { return "tcp://" + l.Addr().String() }

// readAll keeps what the client sent.
func readAll(l *listener, c net.Conn) {
	defer c.Close()
	b := make([]byte, 4096)
	for {
		n, err := c.Read(b)
		l.mu.Lock()
		l.data = append(l.data, b[:n]...)
		l.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (l *listener) waitData(t testing.TB, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		got := string(l.data)
		l.mu.Unlock()
		if got == want {
			return
		}
		if time.Now().After(deadline) || len(got) > len(want) {
			t.Fatalf("received %q, want %q", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFramingOnTheWire(t *testing.T) {
	tests := []struct {
		name, framing string
		in            []string
		want          string
	}{
		{"octet counting", syslog.FramingOctetCounting, []string{"<13>1 - - - - - - é\nx", "<13>1 - - - - - - b"}, "22 <13>1 - - - - - - é\nx19 <13>1 - - - - - - b"},
		{"lf", syslog.FramingLF, []string{"<13>1 - - - - - - a\r\nb\x00", "<13>1 - - - - - - c"}, "<13>1 - - - - - - a  b \n<13>1 - - - - - - c\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listen(t, readAll)
			c := newClient(t, l.addr(), func(c *syslog.Config) { c.Framing = tt.framing })
			allNil(t, c.Send(context.Background(), payloads(tt.in...)))
			l.waitData(t, tt.want)
		})
	}
}

func TestEmptyPayloadRejected(t *testing.T) {
	l := listen(t, readAll)
	c := newClient(t, l.addr(), nil)
	errs := c.Send(context.Background(), payloads("<13>1 - - - - - - a", "", "<13>1 - - - - - - b"))
	if errs[0] != nil || errs[2] != nil || !sink.IsPermanent(errs[1]) || sink.ReasonOf(errs[1]) != sink.ReasonRejected {
		t.Fatalf("errors %v", errs)
	}
	l.waitData(t, "19 <13>1 - - - - - - a19 <13>1 - - - - - - b")
}

func TestRefusedIsRetryable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t, "tcp://"+addr, nil)
	for i, err := range c.Send(context.Background(), payloads("a", "b")) {
		if err == nil || sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonUnreachable {
			t.Errorf("payload %d: %v", i, err)
		}
	}
}

// A receiver that closed an idle connection: the next batch must not be written into the
// dead connection and reported delivered; it goes over a new connection.
func TestReconnectAfterReceiverClosedIdleConnection(t *testing.T) {
	first := make(chan struct{})
	var once sync.Once
	l := listen(t, func(l *listener, c net.Conn) {
		isFirst := false
		once.Do(func() { isFirst = true })
		if isFirst {
			r := bufio.NewReader(c)
			b := make([]byte, len("3 one"))
			_, _ = io.ReadFull(r, b)
			l.mu.Lock()
			l.data = append(l.data, b...)
			l.mu.Unlock()
			c.Close()
			close(first)
			return
		}
		readAll(l, c)
	})
	c := newClient(t, l.addr(), func(c *syslog.Config) { c.CloseCheck = 0 })
	allNil(t, c.Send(context.Background(), payloads("one")))
	<-first
	// Without a close check the first Send cannot see the close: this Send must notice
	// it before writing.
	allNil(t, c.Send(context.Background(), payloads("two")))
	l.waitData(t, "3 one3 two")
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns != 2 {
		t.Errorf("%d connections, want 2", l.conns)
	}
}

// A receiver that closes the connection right after reading a batch: the close check
// reports the batch retryable, and the retry succeeds on a new connection.
func TestCloseAfterBatchIsRetryable(t *testing.T) {
	var mu sync.Mutex
	n := 0
	l := listen(t, func(l *listener, c net.Conn) {
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		if k == 1 {
			b := make([]byte, 1)
			_, _ = c.Read(b)
			c.Close()
			return
		}
		readAll(l, c)
	})
	c := newClient(t, l.addr(), func(c *syslog.Config) { c.CloseCheck = 2 * time.Second })
	errs := c.Send(context.Background(), payloads("one", "two"))
	for i, err := range errs {
		if err == nil || sink.IsPermanent(err) {
			t.Fatalf("payload %d: %v", i, err)
		}
	}
	allNil(t, c.Send(context.Background(), payloads("one", "two")))
	l.waitData(t, "3 one3 two")
}

func TestWriteTimeoutIsRetryable(t *testing.T) {
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	l := listen(t, func(_ *listener, c net.Conn) { <-hold; c.Close() })
	c := newClient(t, l.addr(), func(c *syslog.Config) { c.WriteTimeout = 300 * time.Millisecond })
	big := strings.Repeat("x", 1<<20)
	batch := make([][]byte, 64)
	for i := range batch {
		batch[i] = []byte(big)
	}
	for i, err := range c.Send(context.Background(), batch) {
		if err == nil || sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonTimeout {
			t.Fatalf("payload %d: %v (%s)", i, err, sink.ReasonOf(err))
		}
	}
}

func TestCanceledContext(t *testing.T) {
	l := listen(t, readAll)
	c := newClient(t, l.addr(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range c.Send(ctx, payloads("a")) {
		if err == nil || sink.IsPermanent(err) || !errors.Is(err, context.Canceled) {
			t.Fatalf("%v", err)
		}
	}
}

func TestSendAfterClose(t *testing.T) {
	l := listen(t, readAll)
	c := newClient(t, l.addr(), nil)
	allNil(t, c.Send(context.Background(), payloads("a")))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if errs := c.Send(context.Background(), payloads("b")); errs[0] == nil || sink.IsPermanent(errs[0]) {
		t.Fatalf("%v", errs)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := syslog.DefaultConfig()
	ok.Address = "tls://siem.example.net:6514"
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"tcp://h:514", "udp://[::1]:514", "tls://127.0.0.1:6514"} {
		c := syslog.DefaultConfig()
		c.Address = addr
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	tests := []struct {
		name string
		mod  func(*syslog.Config)
		want []string
	}{
		{"bad scheme", func(c *syslog.Config) { c.Address = "http://h:1" }, []string{"Address"}},
		{"no port", func(c *syslog.Config) { c.Address = "tcp://h" }, []string{"Address"}},
		{"port range", func(c *syslog.Config) { c.Address = "tcp://h:70000" }, []string{"port"}},
		{"path", func(c *syslog.Config) { c.Address = "tcp://h:1/x" }, []string{"Address"}},
		{"lf on tls", func(c *syslog.Config) { c.Address = "tls://h:1"; c.Framing = syslog.FramingLF }, []string{"octet-counting"}},
		{"everything", func(c *syslog.Config) {
			c.Address = "tls://h:1"
			c.Framing = "nul"
			c.TLS.ClientCert = "x"
			c.DialTimeout = 0
			c.WriteTimeout = -1
			c.CloseCheck = time.Minute
			c.MaxDatagram = 100
		}, []string{"Framing", "TLS", "DialTimeout", "WriteTimeout", "CloseCheck", "MaxDatagram"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := syslog.DefaultConfig()
			c.Address = "tcp://h:514"
			tt.mod(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %s: %v", w, err)
				}
			}
			if _, err := syslog.New(c, nil); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}

func BenchmarkSend(b *testing.B) {
	l := listen(b, func(_ *listener, c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	c := newClient(b, l.addr(), func(c *syslog.Config) { c.CloseCheck = 0 })
	msg := []byte("<165>1 2024-06-03T12:00:00Z host app - alert - " + strings.Repeat("x", 2000))
	batch := make([][]byte, 100)
	for i := range batch {
		batch[i] = msg
	}
	b.SetBytes(int64(len(msg) * len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		allNil(b, c.Send(context.Background(), batch))
	}
	_ = strconv.Itoa
}
