package httppost

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/sink"
)

func newClient(t *testing.T, url string, mutate func(*Config)) *Client {
	t.Helper()
	cfg := DefaultConfig()
	cfg.URL = url
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// recorder is a loopback intake that records request bodies (gunzipped) and answers with
// what respond says.
type recorder struct {
	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
	respond func(w http.ResponseWriter, body []byte)
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var rd io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rd = zr
	}
	body, err := io.ReadAll(rd)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.bodies = append(r.bodies, body)
	r.headers = append(r.headers, req.Header.Clone())
	r.mu.Unlock()
	if r.respond != nil {
		r.respond(w, body)
	}
}

func payloads(n, size int) [][]byte {
	ps := make([][]byte, n)
	for i := range ps {
		p := fmt.Sprintf(`{"n":%d,"pad":"`, i)
		p += strings.Repeat("x", max(0, size-len(p)-2)) + `"}`
		ps[i] = []byte(p)
	}
	return ps
}

func TestStatusClasses(t *testing.T) {
	date := time.Date(2030, 1, 1, 0, 0, 30, 0, time.UTC)
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		reason     sink.Reason // "" means delivered
		permanent  bool
		retryAfter time.Duration
	}{
		{"200", 200, nil, `{"text":"Success","code":0}`, "", false, 0},
		{"204 empty", 204, nil, "", "", false, 0},
		{"400", 400, nil, "bad json", sink.ReasonRejected, true, 0},
		{"401", 401, nil, "", sink.ReasonUnauthorized, true, 0},
		{"403", 403, nil, "forbidden", sink.ReasonUnauthorized, true, 0},
		{"404", 404, nil, "<html><body>Not Found</body></html>", sink.ReasonRejected, true, 0},
		{"408", 408, nil, "", sink.ReasonTimeout, false, 0},
		{"413", 413, nil, "too big", sink.ReasonTooLarge, true, 0},
		{"425", 425, nil, "", sink.ReasonUnreachable, false, 0},
		{"429 seconds", 429, map[string]string{"Retry-After": "7"}, "", sink.ReasonThrottled, false, 7 * time.Second},
		{"429 date", 429, map[string]string{"Retry-After": date.Format(http.TimeFormat)}, "", sink.ReasonThrottled, false, 30 * time.Second},
		{"429 none", 429, nil, "", sink.ReasonThrottled, false, 0},
		{"500", 500, nil, "oops", sink.ReasonUnreachable, false, 0},
		{"502 html", 502, map[string]string{"Content-Type": "text/html"}, "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\x00\xff</body></html>", sink.ReasonUnreachable, false, 0},
		{"503 retry-after", 503, map[string]string{"Retry-After": "120"}, "", sink.ReasonThrottled, false, 2 * time.Minute},
		{"301 not followed", 301, map[string]string{"Location": "/elsewhere"}, "", sink.ReasonRejected, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{respond: func(w http.ResponseWriter, _ []byte) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			c := newClient(t, srv.URL+"/webhook", nil)
			c.now = func() time.Time { return date.Add(-30 * time.Second) }
			errs := c.Send(t.Context(), payloads(2, 40))
			if len(errs) != 2 {
				t.Fatalf("%d errors for 2 payloads", len(errs))
			}
			if len(rec.bodies) != 2 {
				t.Fatalf("%d requests, want one per payload", len(rec.bodies))
			}
			for _, err := range errs {
				if tt.reason == "" {
					if err != nil {
						t.Fatalf("delivered payload has error %v", err)
					}
					continue
				}
				if err == nil {
					t.Fatal("refused payload has no error")
				}
				if got := sink.ReasonOf(err); got != tt.reason {
					t.Errorf("reason %s, want %s (%v)", got, tt.reason, err)
				}
				if got := sink.IsPermanent(err); got != tt.permanent {
					t.Errorf("permanent %v, want %v", got, tt.permanent)
				}
				ra, _ := sink.RetryAfter(err)
				if ra != tt.retryAfter {
					t.Errorf("retry after %v, want %v", ra, tt.retryAfter)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d", tt.status)) {
					t.Errorf("error does not name the status: %v", err)
				}
				if strings.ContainsAny(err.Error(), "\r\n\x00") {
					t.Errorf("error holds control characters: %q", err)
				}
			}
		})
	}
}

func TestHeadersSent(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	c := newClient(t, srv.URL, func(c *Config) {
		c.Headers = map[string]string{"Authorization": "Bearer abc123", "X-Sumo-Category": "security/defender"}
		c.Batch = BatchNDJSON
	})
	if errs := c.Send(t.Context(), payloads(3, 20)); errors.Join(errs...) != nil {
		t.Fatal(errs)
	}
	h := rec.headers[0]
	for k, want := range map[string]string{
		"Authorization": "Bearer abc123", "X-Sumo-Category": "security/defender",
		"User-Agent": "defender-siem-forwarder", "Content-Type": "application/x-ndjson",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if h.Get("Content-Encoding") != "" {
		t.Error("Content-Encoding set without Gzip")
	}
}

func TestGzipRoundTrip(t *testing.T) {
	for _, batch := range []Batch{BatchNone, BatchNDJSON} {
		t.Run(string(batch), func(t *testing.T) {
			rec := &recorder{}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			c := newClient(t, srv.URL, func(c *Config) { c.Gzip = true; c.Batch = batch })
			ps := payloads(5, 300)
			if errs := c.Send(t.Context(), ps); errors.Join(errs...) != nil {
				t.Fatal(errs)
			}
			if rec.headers[0].Get("Content-Encoding") != "gzip" {
				t.Error("no Content-Encoding: gzip")
			}
			got := bytes.Join(rec.bodies, nil)
			var want []byte
			for _, p := range ps {
				want = append(want, p...)
				if batch == BatchNDJSON {
					want = append(want, '\n')
				}
			}
			if batch == BatchNone {
				got = nil
				for _, b := range rec.bodies {
					got = append(got, b...)
				}
				if len(rec.bodies) != len(ps) {
					t.Fatalf("%d requests, want %d", len(rec.bodies), len(ps))
				}
				// Requests run concurrently; compare as a set of bodies.
				for _, p := range ps {
					if !bytes.Contains(got, p) {
						t.Errorf("payload %s not received", p)
					}
				}
				return
			}
			if !bytes.Equal(got, want) {
				t.Errorf("body after gunzip differs:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestBatchBounds(t *testing.T) {
	tests := []struct {
		name      string
		maxBytes  int
		maxEvents int
		n, size   int
		wantReqs  int
	}{
		{"bytes", 100, 0, 10, 30, 4}, // 3 lines of 31 bytes fit in 100
		{"events", 1 << 20, 4, 10, 30, 3},
		{"exact fit", 62, 0, 4, 30, 2},
		{"one per request", 31, 0, 3, 30, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			c := newClient(t, srv.URL, func(c *Config) {
				c.Batch, c.MaxBatchBytes, c.MaxBatchEvents, c.Concurrency = BatchNDJSON, tt.maxBytes, tt.maxEvents, 1
			})
			ps := payloads(tt.n, tt.size)
			if errs := c.Send(t.Context(), ps); errors.Join(errs...) != nil {
				t.Fatal(errs)
			}
			if len(rec.bodies) != tt.wantReqs {
				t.Errorf("%d requests, want %d", len(rec.bodies), tt.wantReqs)
			}
			var lines []string
			for _, b := range rec.bodies {
				if len(b) > tt.maxBytes {
					t.Errorf("body of %d bytes exceeds %d", len(b), tt.maxBytes)
				}
				if !bytes.HasSuffix(b, []byte("\n")) {
					t.Errorf("body does not end with a newline: %q", b)
				}
				got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
				if tt.maxEvents > 0 && len(got) > tt.maxEvents {
					t.Errorf("%d events in a request, cap %d", len(got), tt.maxEvents)
				}
				lines = append(lines, got...)
			}
			if len(lines) != len(ps) {
				t.Fatalf("%d lines received, want %d", len(lines), len(ps))
			}
			for i, l := range lines {
				if l != string(ps[i]) {
					t.Errorf("line %d = %q, want %q", i, l, ps[i])
				}
			}
		})
	}
}

func TestRefusedPayloads(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	c := newClient(t, srv.URL, func(c *Config) { c.Batch, c.MaxBatchBytes = BatchNDJSON, 50 })
	ps := [][]byte{[]byte(`{"ok":1}`), bytes.Repeat([]byte("x"), 50), []byte("{\"a\":1}\n{\"forged\":2}"), nil, []byte(`{"ok":2}`)}
	errs := c.Send(t.Context(), ps)
	want := []sink.Reason{"", sink.ReasonTooLarge, sink.ReasonRejected, sink.ReasonRejected, ""}
	for i, w := range want {
		if w == "" {
			if errs[i] != nil {
				t.Errorf("payload %d: %v", i, errs[i])
			}
			continue
		}
		if !sink.IsPermanent(errs[i]) || sink.ReasonOf(errs[i]) != w {
			t.Errorf("payload %d: %v (%s), want permanent %s", i, errs[i], sink.ReasonOf(errs[i]), w)
		}
	}
	if got := string(bytes.Join(rec.bodies, nil)); got != "{\"ok\":1}\n{\"ok\":2}\n" {
		t.Errorf("intake received %q", got)
	}
}

func TestTooLargeBatchIsSplit(t *testing.T) {
	rec := &recorder{respond: func(w http.ResponseWriter, body []byte) {
		if bytes.Count(body, []byte("\n")) > 2 {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
		}
	}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	c := newClient(t, srv.URL, func(c *Config) { c.Batch = BatchNDJSON })
	if errs := c.Send(t.Context(), payloads(8, 20)); errors.Join(errs...) != nil {
		t.Fatal(errs)
	}
	// 8 refused, 4+4 refused, then four requests of 2 accepted.
	if len(rec.bodies) != 7 {
		t.Errorf("%d requests, want 7", len(rec.bodies))
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := newClient(t, srv.URL, func(c *Config) { c.RequestTimeout = 50 * time.Millisecond })
	err := c.Send(t.Context(), payloads(1, 10))[0]
	if sink.ReasonOf(err) != sink.ReasonTimeout || sink.IsPermanent(err) {
		t.Errorf("got %v (%s), want a retryable timeout", err, sink.ReasonOf(err))
	}
}

func TestContextDone(t *testing.T) {
	srv := httptest.NewServer(&recorder{})
	defer srv.Close()
	c := newClient(t, srv.URL, func(c *Config) { c.Concurrency = 1 })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	errs := c.Send(ctx, payloads(3, 10))
	for i, err := range errs {
		if err == nil || sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonTimeout {
			t.Errorf("payload %d: %v, want a retryable timeout", i, err)
		}
	}
}

func TestConnectionFailures(t *testing.T) {
	t.Run("reset", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = bufio.NewReader(conn).ReadString('\n')
				_ = conn.(*net.TCPConn).SetLinger(0)
				_ = conn.Close()
			}
		}()
		c := newClient(t, "http://"+ln.Addr().String()+"/", nil)
		err = c.Send(t.Context(), payloads(1, 10))[0]
		if err == nil || sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonUnreachable {
			t.Errorf("got %v (%s), want retryable unreachable", err, sink.ReasonOf(err))
		}
	})
	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		c := newClient(t, "http://"+addr+"/?token=SECRETTOKEN123", nil)
		err = c.Send(t.Context(), payloads(1, 10))[0]
		if err == nil || sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonUnreachable {
			t.Errorf("got %v (%s), want retryable unreachable", err, sink.ReasonOf(err))
		}
		if strings.Contains(err.Error(), "SECRETTOKEN123") {
			t.Errorf("error leaks the token: %v", err)
		}
	})
}

// writeCA writes a PEM file holding cert's DER bytes.
func writePEM(t *testing.T, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// otherCA makes a CA certificate that signed nothing the test server presents.
func otherCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Other test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(&recorder{})
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.StartTLS()
	defer srv.Close()
	goodCA := writePEM(t, srv.Certificate().Raw)
	tests := []struct {
		name      string
		mutate    func(*Config)
		reason    sink.Reason
		permanent bool
	}{
		{"good CA", func(c *Config) { c.TLS.CAFile = goodCA }, "", false},
		{"wrong CA", func(c *Config) { c.TLS.CAFile = writePEM(t, otherCA(t)) }, sink.ReasonUnauthorized, true},
		{"system roots", nil, sink.ReasonUnauthorized, true},
		{"wrong name", func(c *Config) { c.TLS.CAFile = goodCA; c.TLS.ServerName = "intake.invalid" }, sink.ReasonUnauthorized, true},
		{"verification off", func(c *Config) { c.TLS.InsecureSkipVerify = true }, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, srv.URL+"/?token=SECRETTOKEN123", tt.mutate)
			err := c.Send(t.Context(), payloads(1, 10))[0]
			if tt.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if sink.ReasonOf(err) != tt.reason || sink.IsPermanent(err) != tt.permanent {
				t.Fatalf("got %v (%s, permanent %v)", err, sink.ReasonOf(err), sink.IsPermanent(err))
			}
			if !strings.Contains(err.Error(), "TLS certificate is not trusted") {
				t.Errorf("message does not say what failed: %v", err)
			}
			if strings.Contains(err.Error(), "SECRETTOKEN123") {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
	t.Run("plain server behind https URL", func(t *testing.T) {
		plain := httptest.NewServer(&recorder{})
		defer plain.Close()
		c := newClient(t, strings.Replace(plain.URL, "http:", "https:", 1), nil)
		err := c.Send(t.Context(), payloads(1, 10))[0]
		if !sink.IsPermanent(err) || !strings.Contains(err.Error(), "does not speak TLS") {
			t.Errorf("got %v", err)
		}
	})
}

func TestRedaction(t *testing.T) {
	const (
		token  = "LOGZIOTOKEN0123456789"
		bearer = "supersecretbearer"
		code   = "ZaVnC4dhaV1-MZMtRgtYk8YGvVQmaJ2yJxKJdn28eSaT9DXwMg"
	)
	echo := &recorder{respond: func(w http.ResponseWriter, _ []byte) {
		w.WriteHeader(http.StatusUnauthorized)
		// A careless intake echoes the credentials back.
		fmt.Fprintf(w, "bad token %s for Bearer %s at /receiver/v1/http/%s", token, bearer, code)
	}}
	srv := httptest.NewServer(echo)
	defer srv.Close()
	var logs bytes.Buffer
	cfg := DefaultConfig()
	cfg.URL = srv.URL + "/receiver/v1/http/" + code + "?token=" + token + "&type=defender"
	cfg.Headers = map[string]string{"Authorization": "Bearer " + bearer}
	c, err := New(cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Send(t.Context(), payloads(1, 10))[0]
	if sink.ReasonOf(err) != sink.ReasonUnauthorized {
		t.Fatalf("got %v", err)
	}
	for _, text := range []string{err.Error(), logs.String(), c.shownURL} {
		for _, secret := range []string{token, bearer, code} {
			if strings.Contains(text, secret) {
				t.Errorf("secret %q leaked in %q", secret, text)
			}
		}
	}
	if !strings.Contains(err.Error(), "/receiver/v1/http/[REDACTED]?token=[REDACTED]&type=[REDACTED]") {
		t.Errorf("error does not show the redacted URL: %v", err)
	}
	if !strings.Contains(logs.String(), "status=401") {
		t.Errorf("refusal not logged: %s", logs.String())
	}

	bad := DefaultConfig()
	bad.URL = "ftp://host/?token=" + token
	bad.Headers = map[string]string{"Authorization": "Bearer " + bearer + "\r\nX-Forged: 1", "Bad Name": "v", "Content-Length": "1"}
	verr := bad.Validate()
	if verr == nil {
		t.Fatal("bad config accepted")
	}
	for _, secret := range []string{token, bearer} {
		if strings.Contains(verr.Error(), secret) {
			t.Errorf("Validate leaks %q: %v", secret, verr)
		}
	}
}

func TestConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.URL = "https://oc.example:8085/webhook"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := Config{URL: "ftp://x", Batch: "xml", MaxBatchBytes: 0, MaxBatchEvents: -1, Concurrency: 0,
		Headers: map[string]string{"Bad Name": "v", "Host": "h", "X-Ok": "a\nb"}, TLS: tlsconfMissingCA()}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"scheme", "Batch", "MaxBatchBytes", "MaxBatchEvents", "RequestTimeout", "Concurrency", `"Bad Name"`, "Host is set by the client", "value of X-Ok", "TLS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "URL is required") {
		t.Errorf("empty URL: %v", err)
	}
	if _, err := New(bad, nil); err == nil {
		t.Error("New accepted a bad config")
	}
}

func BenchmarkSendNDJSON(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	defer srv.Close()
	for _, gz := range []bool{false, true} {
		b.Run(fmt.Sprintf("gzip=%v", gz), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.URL, cfg.Batch, cfg.Gzip = srv.URL, BatchNDJSON, gz
			c, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ps := payloads(100, 4500)
			b.ReportAllocs()
			b.SetBytes(100 * 4500)
			for b.Loop() {
				if err := errors.Join(c.Send(context.Background(), ps)...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
