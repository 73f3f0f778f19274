package hec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/testenv"
	"github.com/defender-siem/forwarder/internal/sink"
)

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// want describes the expected fate of one payload.
type want struct {
	ok        bool
	permanent bool
	reason    sink.Reason
}

var delivered = want{ok: true}

func checkErrs(t *testing.T, errs []error, wants []want) {
	t.Helper()
	if len(errs) != len(wants) {
		t.Fatalf("%d errors, want %d", len(errs), len(wants))
	}
	for i, w := range wants {
		err := errs[i]
		switch {
		case w.ok && err != nil:
			t.Errorf("payload %d: %v, want delivered", i, err)
		case !w.ok && err == nil:
			t.Errorf("payload %d delivered, want %s", i, w.reason)
		case !w.ok:
			if sink.IsPermanent(err) != w.permanent || sink.ReasonOf(err) != w.reason {
				t.Errorf("payload %d: %v (permanent %t, reason %s), want permanent %t reason %s",
					i, err, sink.IsPermanent(err), sink.ReasonOf(err), w.permanent, w.reason)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("payload %d: error holds the token: %v", i, err)
			}
		}
	}
}

func repeat(w want, n int) []want {
	out := make([]want, n)
	for i := range out {
		out[i] = w
	}
	return out
}

func TestSendSuccess(t *testing.T) {
	for _, gz := range []bool{true, false} {
		t.Run(fmt.Sprintf("gzip=%t", gz), func(t *testing.T) {
			f := newFake(t)
			cfg := f.start(t)
			cfg.Gzip = gz
			c := newClient(t, cfg)
			p := events(5, 300)
			checkErrs(t, c.Send(t.Context(), p), repeat(delivered, 5))
			checkErrs(t, c.Send(t.Context(), p[:2]), repeat(delivered, 2))
			if got, want := f.snapshot(), [][]int{{0, 1, 2, 3, 4}, {0, 1}}; !reflect.DeepEqual(got, want) {
				t.Errorf("requests %v, want %v", got, want)
			}
			if len(f.channels) != 1 || !f.channels[c.Channel()] {
				t.Errorf("channels %v, want only %s", f.channels, c.Channel())
			}
			for i, g := range f.gzipped {
				if g != gz {
					t.Errorf("request %d gzip %t, want %t", i, g, gz)
				}
			}
			// The body is the payloads joined by newlines, byte for byte after decompression.
			if want := append(bytes.Join(p, []byte("\n")), '\n'); !bytes.Equal(f.bodies[0], want) {
				t.Errorf("body differs:\n got %q\nwant %q", f.bodies[0], want)
			}
		})
	}
}

func TestBatching(t *testing.T) {
	tests := []struct {
		name      string
		maxBytes  int
		maxEvents int
		sizes     []int
		want      [][]int
	}{
		{"by events", 1 << 20, 3, []int{150, 150, 150, 150, 150, 150, 150}, [][]int{{0, 1, 2}, {3, 4, 5}, {6}}},
		// 200 bytes plus a newline each: two fit in 402, three do not.
		{"by bytes", 402, 100, []int{200, 200, 200, 200, 200}, [][]int{{0, 1}, {2, 3}, {4}}},
		{"exactly full", 201, 100, []int{200, 200}, [][]int{{0}, {1}}},
		{"oversize event alone", 1000, 100, []int{200, 5000, 200, 200}, [][]int{{0}, {1}, {2, 3}}},
		{"oversize first", 1000, 100, []int{5000, 200}, [][]int{{0}, {1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			cfg := f.start(t)
			cfg.MaxBatchBytes, cfg.MaxBatchEvents = tt.maxBytes, tt.maxEvents
			c := newClient(t, cfg)
			p := make([][]byte, len(tt.sizes))
			for i, s := range tt.sizes {
				p[i] = events(i+1, s)[i]
				if len(p[i]) != s {
					t.Fatalf("payload %d is %d bytes, want %d", i, len(p[i]), s)
				}
			}
			checkErrs(t, c.Send(t.Context(), p), repeat(delivered, len(p)))
			if got := f.snapshot(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("requests %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRefusedBeforeSending(t *testing.T) {
	f := newFake(t)
	cfg := f.start(t)
	cfg.MaxEventBytes = 1000
	c := newClient(t, cfg)
	p := events(5, 200)
	p[1] = events(2, 1001)[1]
	p[2] = []byte(`["not","an","envelope"]`)
	p[3] = []byte("  \n")
	errs := c.Send(t.Context(), p)
	checkErrs(t, errs, []want{
		delivered,
		{permanent: true, reason: sink.ReasonTooLarge},
		{permanent: true, reason: sink.ReasonRejected},
		{permanent: true, reason: sink.ReasonRejected},
		delivered,
	})
	if got, want := f.snapshot(), [][]int{{0, 4}}; !reflect.DeepEqual(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
}

func TestInvalidEventNumber(t *testing.T) {
	rejected := want{permanent: true, reason: sink.ReasonRejected}
	throttled := want{reason: sink.ReasonThrottled}
	tests := []struct {
		name     string
		replies  []func(w http.ResponseWriter)
		n        int
		want     []want
		requests [][]int
	}{
		{
			name: "400 code 6: before delivered, bad one rejected, rest resent",
			replies: []func(w http.ResponseWriter){
				func(w http.ResponseWriter) {
					writeReply(w, 400, `{"text":"Invalid data format","code":6,"invalid-event-number":2}`)
				},
			},
			n:        6,
			want:     []want{delivered, delivered, rejected, delivered, delivered, delivered},
			requests: [][]int{{0, 1, 2, 3, 4, 5}, {3, 4, 5}},
		},
		{
			name: "two bad events in a row",
			replies: []func(w http.ResponseWriter){
				func(w http.ResponseWriter) {
					writeReply(w, 400, `{"text":"Invalid data format","code":6,"invalid-event-number":1}`)
				},
				func(w http.ResponseWriter) {
					writeReply(w, 400, `{"text":"Event field cannot be blank","code":13,"invalid-event-number":0}`)
				},
			},
			n:        4,
			want:     []want{delivered, rejected, rejected, delivered},
			requests: [][]int{{0, 1, 2, 3}, {2, 3}, {3}},
		},
		{
			name: "last event bad: nothing to resend",
			replies: []func(w http.ResponseWriter){
				func(w http.ResponseWriter) {
					writeReply(w, 400, `{"text":"Invalid data format","code":6,"invalid-event-number":2}`)
				},
			},
			n:        3,
			want:     []want{delivered, delivered, rejected},
			requests: [][]int{{0, 1, 2}},
		},
		{
			name: "index out of range: whole request rejected",
			replies: []func(w http.ResponseWriter){
				func(w http.ResponseWriter) {
					writeReply(w, 400, `{"text":"Invalid data format","code":6,"invalid-event-number":9}`)
				},
			},
			n:        3,
			want:     repeat(rejected, 3),
			requests: [][]int{{0, 1, 2}},
		},
		{
			name: "400 code 7 incorrect index is not per event",
			replies: []func(w http.ResponseWriter){
				func(w http.ResponseWriter) {
					writeReply(w, 400, `{"text":"Incorrect index","code":7,"invalid-event-number":1}`)
				},
			},
			n:        3,
			want:     repeat(rejected, 3),
			requests: [][]int{{0, 1, 2}},
		},
		{
			name: "503 busy with invalid-event-number",
			replies: []func(w http.ResponseWriter){
				func(w http.ResponseWriter) {
					writeReply(w, 503, `{"text":"Server is busy","code":9,"invalid-event-number":2}`)
				},
			},
			n:        5,
			want:     []want{delivered, delivered, throttled, throttled, throttled},
			requests: [][]int{{0, 1, 2, 3, 4}},
		},
		{
			name: "503 busy at event 0",
			replies: []func(w http.ResponseWriter){
				func(w http.ResponseWriter) {
					writeReply(w, 503, `{"text":"Server is busy","code":9,"invalid-event-number":0}`)
				},
			},
			n:        2,
			want:     repeat(throttled, 2),
			requests: [][]int{{0, 1}},
		},
		{
			name: "429 at capacity with invalid-event-number",
			replies: []func(w http.ResponseWriter){
				func(w http.ResponseWriter) {
					writeReply(w, 429, `{"text":"HEC queue is at capacity","code":26,"invalid-event-number":1}`)
				},
			},
			n:        3,
			want:     []want{delivered, throttled, throttled},
			requests: [][]int{{0, 1, 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.respond = func(w http.ResponseWriter, _ *http.Request, req int, _ []int) {
				if req < len(tt.replies) {
					tt.replies[req](w)
					return
				}
				writeReply(w, 200, `{"text":"Success","code":0}`)
			}
			c := newClient(t, f.start(t))
			checkErrs(t, c.Send(t.Context(), events(tt.n, 150)), tt.want)
			if got := f.snapshot(); !reflect.DeepEqual(got, tt.requests) {
				t.Errorf("requests %v, want %v", got, tt.requests)
			}
		})
	}
}

func TestStatusAnswers(t *testing.T) {
	date := time.Date(2026, 11, 28, 4, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		want       want
		retryAfter time.Duration
		msg        string
	}{
		{"401 token required", 401, nil, `{"text":"Token is required","code":2}`, want{permanent: true, reason: sink.ReasonUnauthorized}, 0, "Token is required"},
		{"403 invalid token echoed", 403, nil, `{"text":"Invalid token ` + testToken + `","code":4}`, want{permanent: true, reason: sink.ReasonUnauthorized}, 0, "[REDACTED]"},
		{"403 disabled", 403, nil, `{"text":"Token disabled","code":1}`, want{permanent: true, reason: sink.ReasonUnauthorized}, 0, "code 1"},
		{"429 retry-after seconds", 429, map[string]string{"Retry-After": "7"}, `{"text":"HEC queue is at capacity","code":26}`, want{reason: sink.ReasonThrottled}, 7 * time.Second, "code 26"},
		{"429 retry-after date", 429, map[string]string{"Retry-After": date.Add(90 * time.Second).Format(http.TimeFormat)}, ``, want{reason: sink.ReasonThrottled}, 90 * time.Second, "HTTP 429"},
		{"429 no retry-after", 429, nil, ``, want{reason: sink.ReasonThrottled}, 0, "HTTP 429"},
		{"503 busy", 503, map[string]string{"Retry-After": "3"}, `{"text":"Server is busy","code":9}`, want{reason: sink.ReasonThrottled}, 3 * time.Second, "Server is busy"},
		{"502 html", 502, map[string]string{"Content-Type": "text/html"}, "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>" + strings.Repeat(" ", 5000), want{reason: sink.ReasonUnreachable}, 0, "502 Bad Gateway"},
		{"500 empty", 500, nil, ``, want{reason: sink.ReasonUnreachable}, 0, "HTTP 500"},
		{"500 code 8", 500, nil, `{"text":"Internal server error","code":8}`, want{reason: sink.ReasonUnreachable}, 0, "code 8"},
		{"413", 413, nil, `<html>too large</html>`, want{permanent: true, reason: sink.ReasonTooLarge}, 0, "HTTP 413"},
		{"404", 404, nil, `not found`, want{permanent: true, reason: sink.ReasonRejected}, 0, "check the URL"},
		{"302 not followed", 302, map[string]string{"Location": "https://elsewhere.example/"}, ``, want{permanent: true, reason: sink.ReasonRejected}, 0, "elsewhere.example"},
		{"200 code 24 approaching capacity", 200, nil, `{"text":"HEC queue is approaching its capacity limit","code":24}`, delivered, 0, ""},
		{"200 html from a proxy", 200, nil, `<html>ok</html>`, delivered, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.respond = func(w http.ResponseWriter, _ *http.Request, _ int, _ []int) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}
			c := newClient(t, f.start(t))
			c.now = func() time.Time { return date }
			errs := c.Send(t.Context(), events(3, 100))
			checkErrs(t, errs, repeat(tt.want, 3))
			if tt.want.ok {
				return
			}
			if ra, _ := sink.RetryAfter(errs[0]); ra != tt.retryAfter {
				t.Errorf("retry after %s, want %s", ra, tt.retryAfter)
			}
			if msg := errs[0].Error(); !strings.Contains(msg, tt.msg) || strings.ContainsAny(msg, "\n\r") || len(msg) > 600 {
				t.Errorf("error %q should hold %q on one short line", msg, tt.msg)
			}
		})
	}
}

func TestTooLargeSplits(t *testing.T) {
	f := newFake(t)
	f.respond = func(w http.ResponseWriter, _ *http.Request, _ int, ns []int) {
		// Refuse any request of more than two events, and any holding event 4.
		if len(ns) > 2 || slices.Contains(ns, 4) {
			writeReply(w, 413, `{"text":"Content too large"}`)
			return
		}
		writeReply(w, 200, `{"text":"Success","code":0}`)
	}
	c := newClient(t, f.start(t))
	errs := c.Send(t.Context(), events(5, 100))
	checkErrs(t, errs, []want{delivered, delivered, delivered, delivered, {permanent: true, reason: sink.ReasonTooLarge}})
	want := [][]int{{0, 1, 2, 3, 4}, {0, 1}, {2, 3, 4}, {2}, {3, 4}, {3}, {4}}
	if got := f.snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
}

func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hang := func(w http.ResponseWriter, r *http.Request, _ int, _ []int) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
	t.Run("context deadline", func(t *testing.T) {
		f := newFake(t)
		f.respond = hang
		c := newClient(t, f.start(t))
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		errs := c.Send(ctx, events(3, 100))
		checkErrs(t, errs, repeat(want{reason: sink.ReasonTimeout}, 3))
		if !errors.Is(errs[0], context.DeadlineExceeded) {
			t.Errorf("%v does not wrap context.DeadlineExceeded", errs[0])
		}
	})
	t.Run("request timeout", func(t *testing.T) {
		f := newFake(t)
		f.respond = hang
		cfg := f.start(t)
		cfg.RequestTimeout = 100 * time.Millisecond
		c := newClient(t, cfg)
		checkErrs(t, c.Send(t.Context(), events(2, 100)), repeat(want{reason: sink.ReasonTimeout}, 2))
	})
	t.Run("context already over", func(t *testing.T) {
		f := newFake(t)
		c := newClient(t, f.start(t))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		checkErrs(t, c.Send(ctx, events(2, 100)), repeat(want{reason: sink.ReasonTimeout}, 2))
		if n := len(f.snapshot()); n != 0 {
			t.Errorf("%d requests sent after the context ended", n)
		}
	})
}

func TestConnectionReset(t *testing.T) {
	f := newFake(t)
	f.respond = func(w http.ResponseWriter, _ *http.Request, _ int, _ []int) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}
	c := newClient(t, f.start(t))
	checkErrs(t, c.Send(t.Context(), events(3, 100)), repeat(want{reason: sink.ReasonUnreachable}, 3))
}

func TestConnectionRefused(t *testing.T) {
	cfg := DefaultConfig()
	cfg.URL, cfg.Token = fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)), testToken
	c := newClient(t, cfg)
	checkErrs(t, c.Send(t.Context(), events(1, 100)), []want{{reason: sink.ReasonUnreachable}})
}

func TestAck(t *testing.T) {
	t.Run("true after polls", func(t *testing.T) {
		f := newFake(t)
		var next atomic.Uint64
		f.respond = func(w http.ResponseWriter, _ *http.Request, _ int, _ []int) {
			writeReply(w, 200, fmt.Sprintf(`{"text":"Success","code":0,"ackId":%d}`, next.Add(1)+40))
		}
		var polls atomic.Int32
		f.ack = func(w http.ResponseWriter, ids []uint64) {
			n := polls.Add(1)
			// Confirm 41 on the second poll and 42 on the fourth.
			writeReply(w, 200, fmt.Sprintf(`{"acks":{"41":%t,"42":%t}}`, n >= 2, n >= 4))
		}
		cfg := f.start(t)
		cfg.UseAck, cfg.MaxBatchEvents = true, 2
		cfg.AckPollInterval, cfg.AckTimeout = 5*time.Millisecond, time.Minute
		c := newClient(t, cfg)
		checkErrs(t, c.Send(t.Context(), events(4, 100)), repeat(delivered, 4))
		if n := polls.Load(); n != 4 {
			t.Errorf("%d ack polls, want 4", n)
		}
	})
	t.Run("never true", func(t *testing.T) {
		f := newFake(t)
		f.respond = func(w http.ResponseWriter, _ *http.Request, req int, _ []int) {
			writeReply(w, 200, fmt.Sprintf(`{"text":"Success","code":0,"ackId":%d}`, req))
		}
		f.ack = func(w http.ResponseWriter, ids []uint64) {
			writeReply(w, 200, `{"acks":{"0":true,"1":false}}`)
		}
		cfg := f.start(t)
		cfg.UseAck, cfg.MaxBatchEvents = true, 2
		cfg.AckPollInterval, cfg.AckTimeout = 5*time.Millisecond, 100*time.Millisecond
		c := newClient(t, cfg)
		errs := c.Send(t.Context(), events(4, 100))
		checkErrs(t, errs, []want{delivered, delivered, {reason: sink.ReasonTimeout}, {reason: sink.ReasonTimeout}})
		if !strings.Contains(errs[2].Error(), "ackId 1") {
			t.Errorf("error %q does not name the ack id", errs[2])
		}
	})
	t.Run("token without ack", func(t *testing.T) {
		f := newFake(t)
		cfg := f.start(t)
		cfg.UseAck = true
		c := newClient(t, cfg)
		checkErrs(t, c.Send(t.Context(), events(2, 100)), repeat(delivered, 2))
		if n := f.polls(); n != 0 {
			t.Errorf("%d ack polls without an ackId", n)
		}
	})
	t.Run("ack query refused", func(t *testing.T) {
		f := newFake(t)
		f.respond = func(w http.ResponseWriter, _ *http.Request, _ int, _ []int) {
			writeReply(w, 200, `{"text":"Success","code":0,"ackId":0}`)
		}
		cfg := f.start(t)
		cfg.UseAck = true
		cfg.AckPollInterval, cfg.AckTimeout = 5*time.Millisecond, time.Minute
		c := newClient(t, cfg)
		errs := c.Send(t.Context(), events(2, 100))
		// The events were accepted: they are not to blame, so the error stays retryable.
		checkErrs(t, errs, repeat(want{reason: sink.ReasonTimeout}, 2))
		if !strings.Contains(errs[0].Error(), "code 14") {
			t.Errorf("error %q does not carry the ack failure", errs[0])
		}
		if n := f.polls(); n != 1 {
			t.Errorf("%d ack polls after a permanent refusal, want 1", n)
		}
	})
}
