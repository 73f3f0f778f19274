// Package httppost is a generic HTTP(S) log intake transport: it POSTs formatted payloads
// one per request (the LogRhythm Open Collector Webhook Beat) or as NDJSON batches (Sumo
// Logic HTTP sources, the Logz.io bulk listener, any HTTPS collector), and classifies what
// comes back for the caller's retry and dead-letter logic. It never looks inside a payload
// and never retries by itself.
//
// Secrets (header values, URL query values and long path segments) never appear in errors
// or logs.
package httppost

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/sink"
)

// Client delivers payloads to one HTTP(S) intake. It is safe for concurrent use.
type Client struct {
	cfg         Config
	contentType string
	hc          *http.Client
	red         *redactor
	log         *slog.Logger
	now         func() time.Time // for Retry-After dates
}

var _ sink.Sink = (*Client)(nil)

// New checks cfg and builds the client. logger may be nil.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	red := newRedactor(cfg.URL, cfg.Headers)
	logger = logger.With("sink", "httppost", "url", red.url)
	tc, err := cfg.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("httppost: TLS: %w", err)
	}
	if cfg.TLS.InsecureSkipVerify {
		logger.Warn("TLS certificate verification is off for this destination")
	}
	if strings.HasPrefix(cfg.URL, "http:") && len(cfg.Headers) > 0 {
		logger.Warn("headers, which may hold credentials, are sent over plain http")
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          cfg.Concurrency * 2,
		MaxIdleConnsPerHost:   cfg.Concurrency,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.RequestTimeout,
		ForceAttemptHTTP2:     true,
	}
	ct := cfg.ContentType
	if ct == "" {
		ct = "application/json"
		if cfg.Batch == BatchNDJSON {
			ct = "application/x-ndjson"
		}
	}
	return &Client{
		cfg:         cfg,
		contentType: ct,
		red:         red,
		log:         logger,
		now:         time.Now,
		hc: &http.Client{
			Transport: tr,
			Timeout:   cfg.RequestTimeout,
			// A POST that follows a redirect turns into a GET and the payload is lost;
			// report the redirect instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// request is one POST and the payloads it carries.
type request struct {
	idx  []int
	size int // body bytes
}

// Send makes one delivery attempt for every payload and returns one error per payload, nil
// for each the intake accepted (2xx).
func (c *Client) Send(ctx context.Context, payloads [][]byte) []error {
	errs := make([]error, len(payloads))
	reqs := c.plan(payloads, errs)
	sem := make(chan struct{}, c.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, r := range reqs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			for _, i := range r.idx {
				errs[i] = c.classifyErr(ctx.Err())
			}
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			c.deliver(ctx, payloads, r.idx, errs)
		})
	}
	wg.Wait()
	return errs
}

// plan groups payloads into requests, refusing those no request can carry.
func (c *Client) plan(payloads [][]byte, errs []error) []request {
	var reqs []request
	var cur request
	flush := func() {
		if len(cur.idx) > 0 {
			reqs = append(reqs, cur)
		}
		cur = request{}
	}
	for i, p := range payloads {
		size := len(p)
		if c.cfg.Batch == BatchNDJSON {
			size++ // its "\n"
		}
		switch {
		case len(p) == 0:
			errs[i] = sink.Permanent(sink.ReasonRejected, errors.New("httppost: empty payload"))
			continue
		case size > c.cfg.MaxBatchBytes:
			errs[i] = sink.Permanent(sink.ReasonTooLarge, fmt.Errorf("httppost: payload of %d bytes exceeds MaxBatchBytes %d", len(p), c.cfg.MaxBatchBytes))
			continue
		case c.cfg.Batch == BatchNDJSON && bytes.IndexByte(p, '\n') >= 0:
			// It would reach the intake as two events, the second one forged.
			errs[i] = sink.Permanent(sink.ReasonRejected, errors.New("httppost: payload holds a line feed, which would split it in an NDJSON batch"))
			continue
		}
		if c.cfg.Batch == BatchNone {
			reqs = append(reqs, request{idx: []int{i}})
			continue
		}
		if len(cur.idx) > 0 && (cur.size+size > c.cfg.MaxBatchBytes ||
			c.cfg.MaxBatchEvents > 0 && len(cur.idx) >= c.cfg.MaxBatchEvents) {
			flush()
		}
		cur.idx = append(cur.idx, i)
		cur.size += size
	}
	flush()
	return reqs
}

// deliver posts the payloads at idx. When the intake answers 413 to a batch it halves the
// batch and tries the halves, so that one oversized request does not cost every payload in
// it; each payload still travels once per successful request.
func (c *Client) deliver(ctx context.Context, payloads [][]byte, idx []int, errs []error) {
	var body []byte
	if c.cfg.Batch == BatchNone {
		body = payloads[idx[0]]
	} else {
		size := 0
		for _, i := range idx {
			size += len(payloads[i]) + 1
		}
		body = make([]byte, 0, size)
		for _, i := range idx {
			body = append(append(body, payloads[i]...), '\n')
		}
	}
	err := c.post(ctx, body, len(idx))
	if len(idx) > 1 && sink.ReasonOf(err) == sink.ReasonTooLarge {
		half := len(idx) / 2
		c.deliver(ctx, payloads, idx[:half], errs)
		c.deliver(ctx, payloads, idx[half:], errs)
		return
	}
	for _, i := range idx {
		errs[i] = err
	}
}

// maxSnippet and maxDrain bound what is read from a response: enough for an error message, and enough
// draining to let the connection be reused.
const (
	maxSnippet = 512
	maxDrain   = 64 << 10
)

func (c *Client) post(ctx context.Context, body []byte, n int) error {
	if c.cfg.Gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(body); err != nil {
			return sink.Permanent(sink.ReasonRejected, fmt.Errorf("httppost: gzip: %w", err))
		}
		if err := zw.Close(); err != nil {
			return sink.Permanent(sink.ReasonRejected, fmt.Errorf("httppost: gzip: %w", err))
		}
		body = buf.Bytes()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return sink.Permanent(sink.ReasonRejected, errors.New("httppost: cannot build a request for the URL"))
	}
	for k, v := range c.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", c.contentType)
	if c.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", c.cfg.UserAgent)
	}
	if c.cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		err = c.classifyErr(err)
		c.log.Debug("request failed", "payloads", n, "reason", sink.ReasonOf(err), "err", err)
		return err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxSnippet))
	err = classifyStatus(resp.StatusCode, resp.Header, c.now())
	var se *sink.Error
	if errors.As(err, &se) {
		se.Err = &redactedError{msg: c.red.String(fmt.Sprintf("httppost: POST %s: %s%s", c.red.url, statusText(resp.StatusCode), cleanSnippet(snippet)))}
	}
	c.log.Debug("request refused", "payloads", n, "status", resp.StatusCode, "reason", sink.ReasonOf(err))
	return err
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return "HTTP " + strconv.Itoa(code) + " " + t
	}
	return "HTTP " + strconv.Itoa(code)
}

// classifyStatus maps a non-2xx status onto the sink vocabulary: 408, 425, 429 and 5xx are
// worth another attempt (after Retry-After when given); 401/403 mean bad credentials, 413
// too large, any other 4xx or a redirect a refusal that repeating cannot change.
func classifyStatus(code int, h http.Header, now time.Time) error {
	ra := retryAfter(h.Get("Retry-After"), now)
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return sink.Permanent(sink.ReasonUnauthorized, nil)
	case code == http.StatusRequestEntityTooLarge:
		return sink.Permanent(sink.ReasonTooLarge, nil)
	case code == http.StatusTooManyRequests:
		return sink.Retryable(sink.ReasonThrottled, ra, nil)
	case code == http.StatusRequestTimeout:
		return sink.Retryable(sink.ReasonTimeout, ra, nil)
	case code == http.StatusTooEarly || code >= 500:
		return sink.Retryable(sink.ReasonUnreachable, ra, nil)
	case code >= 300 && code < 500:
		return sink.Permanent(sink.ReasonRejected, nil)
	}
	return sink.Retryable(sink.ReasonUnreachable, ra, nil)
}

// maxRetryAfter keeps a hostile or broken Retry-After from parking a destination for days.
const maxRetryAfter = time.Hour

// retryAfter reads Retry-After as delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// cleanSnippet makes a response body excerpt printable on one line: HTML error pages and
// empty bodies are common and fine.
func cleanSnippet(b []byte) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "\uFFFD")), " ")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	const max = 200
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	if s == "" {
		return ""
	}
	return ": " + s
}

// redactedError carries a message with secrets removed, and the cause without the URL.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// classifyErr classifies a transport error. net/http puts the full URL (with any query
// token) in its errors, so the text is rebuilt from the cause with the redacted URL.
func (c *Client) classifyErr(err error) error {
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err
	}
	wrap := func(format string) error {
		return &redactedError{msg: c.red.String(fmt.Sprintf(format, c.red.url, cause)), err: cause}
	}
	var (
		unknownCA  x509.UnknownAuthorityError
		hostname   x509.HostnameError
		invalid    x509.CertificateInvalidError
		verifyErr  *tls.CertificateVerificationError
		recordErr  tls.RecordHeaderError
		netErr     net.Error
		isDeadline = errors.Is(err, context.DeadlineExceeded)
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verifyErr):
		return sink.Permanent(sink.ReasonUnauthorized, wrap("httppost: POST %s: TLS certificate verification failed (trust the server's CA with the TLS CA file setting, or fix its certificate): %v"))
	// net/http reports a plain-HTTP answer to a TLS hello as text, not as a typed error.
	case errors.As(err, &recordErr), strings.Contains(cause.Error(), "server gave HTTP response to HTTPS client"):
		return sink.Permanent(sink.ReasonUnreachable, wrap("httppost: POST %s: the server does not speak TLS (is the URL meant to be http?): %v"))
	case errors.Is(err, context.Canceled):
		return sink.Retryable(sink.ReasonTimeout, 0, wrap("httppost: POST %s: cancelled: %v"))
	case isDeadline, errors.As(err, &netErr) && netErr.Timeout():
		return sink.Retryable(sink.ReasonTimeout, 0, wrap("httppost: POST %s: timed out: %v"))
	}
	return sink.Retryable(sink.ReasonUnreachable, 0, wrap("httppost: POST %s: %v"))
}
