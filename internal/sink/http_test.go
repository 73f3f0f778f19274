package sink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestHTTPStatus(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		status     int
		retryAfter string
		reason     Reason // "" means delivered
		permanent  bool
		wait       time.Duration
	}{
		{200, "", "", false, 0},
		{204, "", "", false, 0},
		{301, "", ReasonRejected, true, 0},
		{400, "", ReasonRejected, true, 0},
		{401, "", ReasonUnauthorized, true, 0},
		{403, "", ReasonUnauthorized, true, 0},
		{404, "", ReasonRejected, true, 0},
		{408, "5", ReasonTimeout, false, 5 * time.Second},
		{413, "", ReasonTooLarge, true, 0},
		{425, "", ReasonUnreachable, false, 0},
		{429, "7", ReasonThrottled, false, 7 * time.Second},
		{429, now.Add(30 * time.Second).Format(http.TimeFormat), ReasonThrottled, false, 30 * time.Second},
		{500, "", ReasonUnreachable, false, 0},
		{502, "", ReasonUnreachable, false, 0},
		{503, "120", ReasonThrottled, false, 2 * time.Minute},
		{599, "", ReasonUnreachable, false, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			h := http.Header{}
			if tt.retryAfter != "" {
				h.Set("Retry-After", tt.retryAfter)
			}
			err := HTTPStatus(tt.status, h, now, errors.New("answer"))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("a %d is an error: %v", tt.status, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("a %d counts as delivered", tt.status)
			}
			if got := ReasonOf(err); got != tt.reason {
				t.Errorf("reason %s, want %s", got, tt.reason)
			}
			if got := IsPermanent(err); got != tt.permanent {
				t.Errorf("permanent %v, want %v", got, tt.permanent)
			}
			if got, _ := RetryAfter(err); got != tt.wait {
				t.Errorf("retry after %v, want %v", got, tt.wait)
			}
			if err.Error() != "answer" {
				t.Errorf("message %q, want the caller's", err)
			}
			if got := StatusOf(err); got != tt.status {
				t.Errorf("status %d, want %d", got, tt.status)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"-5", 0}, {"3", 3 * time.Second}, {" 10 ", 10 * time.Second},
		{"999999999", MaxRetryAfter}, {"99999999999999999999", 0}, {"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), MaxRetryAfter},
		{"Thursday, 01-Jan-26 00:00:05 GMT", 5 * time.Second}, // RFC 850, which RFC 9110 still accepts
		{"Thu Jan  1 00:00:10 2026", 10 * time.Second},        // asctime
		{"1.5", 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := ParseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{}, 0},
		{http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{http.Header{"Retry-After-Ms": {"1500"}, "Retry-After": {"3"}}, 1500 * time.Millisecond},
		{http.Header{"X-Ms-Retry-After-Ms": {"250"}}, 250 * time.Millisecond},
		{http.Header{"Retry-After-Ms": {"-1"}, "Retry-After": {"2"}}, 2 * time.Second},
		{http.Header{"Retry-After-Ms": {"999999999999"}}, MaxRetryAfter},
	}
	for _, tt := range tests {
		if got := RetryAfterHeader(tt.h, now); got != tt.want {
			t.Errorf("RetryAfterHeader(%v) = %v, want %v", tt.h, got, tt.want)
		}
	}
}

func TestTransport(t *testing.T) {
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		ctx       context.Context
		err       error
		reason    Reason
		permanent bool
	}{
		{"refused", context.Background(), errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), ReasonUnreachable, false},
		{"context ended", expired, context.Canceled, ReasonTimeout, false},
		{"deadline", context.Background(), fmt.Errorf("post: %w", context.DeadlineExceeded), ReasonTimeout, false},
		{"plain http", context.Background(), errors.New("http: server gave HTTP response to HTTPS client"), ReasonUnreachable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Transport(tt.ctx, tt.err)
			if ReasonOf(err) != tt.reason || IsPermanent(err) != tt.permanent {
				t.Errorf("%v: reason %s permanent %v, want %s %v", tt.err, ReasonOf(err), IsPermanent(err), tt.reason, tt.permanent)
			}
			if !errors.Is(err, tt.err) {
				t.Error("the cause is lost")
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{"", "0", "120", "-1", "99999999999999999999", now.Add(time.Minute).Format(http.TimeFormat), "Mon, 02 Jan 2006"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if d := ParseRetryAfter(v, now); d < 0 || d > MaxRetryAfter {
			t.Fatalf("ParseRetryAfter(%q) = %v, outside [0, %v]", v, d, MaxRetryAfter)
		}
	})
}

func FuzzSnippet(f *testing.F) {
	for _, s := range []string{"", "<html>\r\n<body>502</body></html>", "\x00\xff\xfe", strings.Repeat("é", 300), "\x1b[31mred\u2028\u0085"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := Snippet(b)
		if !utf8.ValidString(s) {
			t.Fatalf("Snippet(%q) = %q: not UTF-8", b, s)
		}
		for _, r := range s {
			if r != utf8.RuneError && !strconv.IsPrint(r) && r != ' ' {
				t.Fatalf("Snippet(%q) = %q holds %U", b, s, r)
			}
		}
		if len(s) > MaxSnippet+len("…") {
			t.Fatalf("snippet of %d bytes", len(s))
		}
	})
}

func TestStatusOfWrapped(t *testing.T) {
	inner := HTTPStatus(500, http.Header{}, time.Now(), errors.New("answer"))
	outer := Permanent(ReasonRejected, fmt.Errorf("%w; advice", inner))
	if got := StatusOf(outer); got != 500 {
		t.Errorf("StatusOf = %d, want the wrapped 500", got)
	}
	if got := StatusOf(errors.New("plain")); got != 0 {
		t.Errorf("StatusOf(plain) = %d", got)
	}
}
