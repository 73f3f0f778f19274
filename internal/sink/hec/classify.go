package hec

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/sink"
)

// reply is what HEC answers: {"text","code","invalid-event-number","ackId"}. Load balancers
// in front of it answer with HTML or nothing, so every field is optional.
type reply struct {
	Text         string  `json:"text"`
	Code         *int    `json:"code"`
	InvalidEvent *int    `json:"invalid-event-number"`
	AckID        *uint64 `json:"ackId"`
}

// parseReply decodes body when it is a HEC JSON answer and returns an empty reply otherwise.
func parseReply(body []byte) reply {
	var r reply
	if b := bytes.TrimSpace(body); len(b) == 0 || b[0] != '{' {
		return r
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return reply{}
	}
	return r
}

// codeIs reports whether the reply carries one of codes.
func (r reply) codeIs(codes ...int) bool {
	if r.Code == nil {
		return false
	}
	for _, c := range codes {
		if *r.Code == c {
			return true
		}
	}
	return false
}

// perEvent reports whether a 400 reply judges one event rather than the whole request: only then
// does invalid-event-number single out an event that may be dropped while the rest are resent.
// 5 no data, 6 invalid data format, 12 event field required, 13 event field blank, 15 indexed
// fields.
func (r reply) perEvent() bool { return r.codeIs(5, 6, 12, 13, 15) }

// classify turns an HTTP answer into nil (delivered) or a classified sink error. It follows the
// HEC status codes ("Troubleshoot HTTP Event Collector"): 2xx (codes 0, 24, 25) is success,
// 429 and 503 (9 busy, 18–20 unhealthy, 23 shutting down, 26–27 at capacity) are throttling, other
// 5xx are retryable, 400/401/403 are permanent, and 413 is too large. The message never holds
// the token: scrub removes it in case the server echoes it.
func classify(status int, h http.Header, r reply, body []byte, now time.Time, scrub func(string) string) error {
	if status >= 200 && status < 300 {
		return nil
	}
	msg := describe(status, r, body, scrub)
	ra := retryAfter(h.Get("Retry-After"), now)
	switch {
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		return sink.Retryable(sink.ReasonThrottled, ra, errors.New(msg))
	case status == http.StatusRequestTimeout:
		return sink.Retryable(sink.ReasonTimeout, ra, errors.New(msg))
	case status == http.StatusRequestEntityTooLarge:
		return sink.Permanent(sink.ReasonTooLarge, errors.New(msg))
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return sink.Permanent(sink.ReasonUnauthorized, errors.New(msg+": check the token and that it is enabled"))
	case status == http.StatusBadRequest && r.codeIs(1, 2, 3, 4, 16, 21, 22):
		return sink.Permanent(sink.ReasonUnauthorized, errors.New(msg+": check the token and that it is enabled"))
	case status == http.StatusBadRequest && r.codeIs(7):
		return sink.Permanent(sink.ReasonRejected, errors.New(msg+": the index must be one the token may write to"))
	case status == http.StatusNotFound:
		return sink.Permanent(sink.ReasonRejected, errors.New(msg+": check the URL and that HEC is enabled"))
	case status >= 300 && status < 400:
		// Redirects are not followed: a POST would turn into a GET, and the token could go to
		// another host.
		return sink.Permanent(sink.ReasonRejected, fmt.Errorf("%s: redirect to %q not followed; set URL to the HEC endpoint", msg, h.Get("Location")))
	case status >= 400 && status < 500:
		return sink.Permanent(sink.ReasonRejected, errors.New(msg))
	default: // 5xx and anything unexpected
		return sink.Retryable(sink.ReasonUnreachable, ra, errors.New(msg))
	}
}

// maxSnippet bounds how much of a non-HEC body goes into an error message.
const maxSnippet = 200

// describe renders the answer for an error message: status, HEC code and text, or the start of
// a body that is not a HEC answer (an HTML page from a proxy), on one line.
func describe(status int, r reply, body []byte, scrub func(string) string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hec: HTTP %d", status)
	if r.Code != nil {
		fmt.Fprintf(&b, " code %d", *r.Code)
	}
	text := r.Text
	if r.Code == nil && text == "" {
		text = string(bytes.TrimSpace(body))
	}
	if text != "" {
		// Unprintable characters would come out of %q as escapes up to ten characters long: a
		// body of them would make a long, unreadable line (and escapes can spell text the
		// body never held).
		text = strings.Map(func(r rune) rune {
			if r != utf8.RuneError && !strconv.IsPrint(r) {
				return ' '
			}
			return r
		}, scrub(text))
		if len(text) > maxSnippet {
			cut := maxSnippet
			for cut > 0 && !utf8.RuneStart(text[cut]) {
				cut--
			}
			text = text[:cut] + "…"
		}
		fmt.Fprintf(&b, " %q", strings.ToValidUTF8(text, "\uFFFD"))
	}
	if r.InvalidEvent != nil {
		fmt.Fprintf(&b, " (invalid-event-number %d)", *r.InvalidEvent)
	}
	return b.String()
}

// retryAfter parses a Retry-After header, in delay-seconds or as an HTTP-date (RFC 9110
// §10.2.3). Zero means none, or a date already past.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		if s > int64(24*time.Hour/time.Second) {
			s = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// classifyTransport classifies a failure to get an answer at all.
func classifyTransport(ctx context.Context, host string, err error) error {
	var cv *tls.CertificateVerificationError
	var alert tls.AlertError
	switch {
	case ctx.Err() != nil:
		return sink.Retryable(sink.ReasonTimeout, 0, fmt.Errorf("hec: %w", err))
	case errors.As(err, &cv):
		// Trying again cannot make an untrusted certificate trusted.
		return sink.Permanent(sink.ReasonUnauthorized, fmt.Errorf("hec: the TLS certificate of %s is not trusted; set the TLS CA file to the CA that signed it, or ServerName to the name it carries: %w", host, err))
	case errors.As(err, &alert) && isCertAlert(alert):
		return sink.Permanent(sink.ReasonUnauthorized, fmt.Errorf("hec: %s refused the TLS client certificate: %w", host, err))
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Timeout() {
		return sink.Retryable(sink.ReasonTimeout, 0, fmt.Errorf("hec: %w", err))
	}
	return sink.Retryable(sink.ReasonUnreachable, 0, fmt.Errorf("hec: %w", err))
}

// isCertAlert reports TLS alerts about the client's certificate (RFC 8446 §6.2).
func isCertAlert(a tls.AlertError) bool {
	switch a {
	case 42, 43, 44, 45, 46, 48, 116: // bad, unsupported, revoked, expired, unknown certificate; unknown CA; certificate required
		return true
	}
	return false
}
