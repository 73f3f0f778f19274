package sink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// What every HTTP transport shares: one reading of statuses, Retry-After, transport failures
// and answer bodies, so that the same answer from two receivers leads to the same retry
// decision and the same dead-letter reason. A transport adds only what its protocol says on
// top (HEC's codes, ServiceNow's error body) and the words that tell an operator what to fix.

// MaxRetryAfter caps a receiver's Retry-After: a hostile or broken value must not park a
// destination for days. The retry policy's MaxInterval caps the pause further.
const MaxRetryAfter = time.Hour

// HTTPStatus classifies a non-2xx answer; it returns nil for 2xx. 408 is a timeout; 429 and
// 503 are throttling (the receiver is up and asks for a pause); 425 and other 5xx are
// retryable as unreachable; 401 and 403 are unauthorized, 413 too-large, and every other 4xx
// or redirect (never followed: a POST would become a GET, and credentials could go to
// another host) is a permanent refusal. err is the message the caller built for the answer.
func HTTPStatus(code int, h http.Header, now time.Time, err error) error {
	if code >= 200 && code < 300 {
		return nil
	}
	e := httpStatus(code, RetryAfterHeader(h, now), err)
	e.(*Error).Status = code
	return e
}

func httpStatus(code int, ra time.Duration, err error) error {
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		return Retryable(ReasonThrottled, ra, err)
	case code == http.StatusRequestTimeout:
		return Retryable(ReasonTimeout, ra, err)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return Permanent(ReasonUnauthorized, err)
	case code == http.StatusRequestEntityTooLarge:
		return Permanent(ReasonTooLarge, err)
	case code == http.StatusTooEarly || code >= 500 || code < 300:
		return Retryable(ReasonUnreachable, ra, err)
	default:
		return Permanent(ReasonRejected, err)
	}
}

// RetryAfterHeader reads the pause an answer asks for: Azure's retry-after-ms or
// x-ms-retry-after-ms when present (milliseconds), else Retry-After; capped at MaxRetryAfter.
func RetryAfterHeader(h http.Header, now time.Time) time.Duration {
	for _, k := range []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if ms, err := strconv.ParseInt(strings.TrimSpace(h.Get(k)), 10, 64); err == nil && ms > 0 {
			return time.Duration(min(ms, int64(MaxRetryAfter/time.Millisecond))) * time.Millisecond
		}
	}
	return ParseRetryAfter(h.Get("Retry-After"), now)
}

// ParseRetryAfter reads a Retry-After value, delay-seconds or an HTTP-date (RFC 9110 §10.2.3),
// capped at MaxRetryAfter. Zero means none, unreadable, or a date already past.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), MaxRetryAfter)
	}
	return 0
}

// Transport classifies a failure to get an answer at all, for HTTP and stream transports
// alike, wrapping err (whose text the caller has already cleaned of secrets). A certificate
// the client does not trust, or a TLS handshake the receiver refused (its alert: a client
// certificate it does not take, a version or cipher it does not offer), cannot heal by
// itself: permanent, unauthorized. A receiver that does not speak TLS is a wrong address:
// permanent. A context that ended, or a network timeout, is a timeout; anything else,
// unreachable.
func Transport(ctx context.Context, err error) error {
	switch f, _ := tlsFailureOf(err); f {
	case untrustedCert, tlsRefused:
		return Permanent(ReasonUnauthorized, err)
	case notTLS:
		return Permanent(ReasonUnreachable, err)
	}
	var netErr net.Error
	switch {
	case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return Retryable(ReasonTimeout, 0, err)
	case errors.As(err, &netErr) && netErr.Timeout():
		return Retryable(ReasonTimeout, 0, err)
	}
	return Retryable(ReasonUnreachable, 0, err)
}

// TransportHint is the advice an operator needs for what Transport classified, or "".
func TransportHint(err error) string {
	switch f, alert := tlsFailureOf(err); {
	case f == untrustedCert:
		return "the receiver's TLS certificate is not trusted: set CAFile to the CA that signed it, or ServerName to a name in the certificate"
	case f == tlsRefused && isCertAlert(alert):
		return "the receiver refused the TLS client certificate"
	case f == tlsRefused:
		return "the receiver refused the TLS handshake"
	case f == notTLS:
		return "the receiver does not speak TLS (is the address meant to be plain?)"
	}
	return ""
}

// tlsFailure is the kind of TLS failure an error stands for, as Transport and TransportHint
// read it.
type tlsFailure int

const (
	noTLSFailure  tlsFailure = iota
	untrustedCert            // the client does not trust the receiver's certificate
	tlsRefused               // the receiver answered the handshake with an alert
	notTLS                   // the receiver does not speak TLS
)

// tlsFailureOf returns the TLS failure err stands for and, for tlsRefused, the alert.
func tlsFailureOf(err error) (tlsFailure, tls.AlertError) {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		alert     tls.AlertError
		record    tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return untrustedCert, 0
	case errors.As(err, &alert):
		return tlsRefused, alert
	// net/http reports a plain-HTTP answer to a TLS hello as text, not as a typed error.
	case errors.As(err, &record), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return notTLS, 0
	}
	return noTLSFailure, 0
}

// isCertAlert reports TLS alerts about the client's certificate (RFC 8446 §6.2).
func isCertAlert(a tls.AlertError) bool {
	switch a {
	case 42, 43, 44, 45, 46, 48, 116: // bad, unsupported, revoked, expired, unknown certificate; unknown CA; certificate required
		return true
	}
	return false
}

// MaxSnippet bounds how much of an answer's body goes into an error message.
const MaxSnippet = 200

// Snippet renders the start of an answer's body for an error message: one printable line of
// at most MaxSnippet bytes (cut on a rune boundary, marked with "…"), with runs of white
// space and control characters as one space. An error page from a proxy is common; an
// escape sequence in it must not reach a terminal or spell text the body never held.
func Snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r != utf8.RuneError && !strconv.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > MaxSnippet {
		cut := MaxSnippet
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// StatusText is "HTTP 503 Service Unavailable", or "HTTP 599" for a status without a name.
func StatusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return "HTTP " + strconv.Itoa(code) + " " + t
	}
	return "HTTP " + strconv.Itoa(code)
}

// NewTransport is the HTTP transport every HTTP sink uses: proxies from the environment, a
// dial and TLS handshake bounded by the request timeout (at most 10 s), the answer's headers
// by the request timeout, idle connections kept for conns requests in flight to one host,
// and a 64 KiB write buffer (bodies are batches; the 4 KiB default costs a syscall per 4 KiB).
func NewTransport(tlsCfg *tls.Config, requestTimeout time.Duration, conns int) *http.Transport {
	dial := min(10*time.Second, requestTimeout)
	if dial <= 0 {
		dial = 10 * time.Second
	}
	conns = max(conns, 1)
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   dial,
		ResponseHeaderTimeout: requestTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          2 * conns,
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
		WriteBufferSize:       64 << 10,
	}
}
