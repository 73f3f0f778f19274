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
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/defender-siem/forwarder/internal/secret"
	"github.com/defender-siem/forwarder/internal/sink"
)

// Client delivers payloads to one HTTP(S) intake. It is safe for concurrent use.
type Client struct {
	cfg         Config
	contentType string
	hc          *http.Client
	shownURL    string // the URL with its secrets masked
	scrub       *secret.Scrubber
	log         *slog.Logger
	now         func() time.Time // for Retry-After dates
	gzip        *sink.GzipPool
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
	shown, scrub := redaction(cfg.URL, cfg.Headers)
	logger = logger.With("sink", "httppost", "url", shown)
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
		shownURL:    shown,
		scrub:       scrub,
		log:         logger,
		now:         time.Now,
		hc:          sink.NewHTTPClient(tc, cfg.RequestTimeout, cfg.Concurrency),
		gzip:        sink.NewGzipPool(cfg.GzipLevel),
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
	sink.SendParallel(ctx, c.cfg.Concurrency, c.plan(payloads, errs), func(r request) {
		sink.SendHalving(r.idx, errs, func(lo, hi int) error {
			return c.post(ctx, c.body(payloads, r.idx[lo:hi]), hi-lo)
		})
	}, func(r request) {
		for _, i := range r.idx {
			errs[i] = c.classifyErr(ctx, ctx.Err())
		}
	})
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

// body is the request body of the payloads at idx: the payload itself without batching, else
// each followed by "\n".
func (c *Client) body(payloads [][]byte, idx []int) []byte {
	if c.cfg.Batch == BatchNone {
		return payloads[idx[0]]
	}
	size := 0
	for _, i := range idx {
		size += len(payloads[i]) + 1
	}
	body := make([]byte, 0, size)
	for _, i := range idx {
		body = append(append(body, payloads[i]...), '\n')
	}
	return body
}

// maxSnippet and maxDrain bound what is read from a response: enough for an error message, and enough
// draining to let the connection be reused.
const (
	maxSnippet = 512
	maxDrain   = 64 << 10
)

func (c *Client) post(ctx context.Context, body []byte, n int) error {
	if c.cfg.Gzip {
		buf := bytes.NewBuffer(make([]byte, 0, len(body)/4+64))
		zw := c.gzip.Get(buf)
		defer c.gzip.Put(zw)
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
		err = c.classifyErr(ctx, err)
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
	msg := "httppost: POST " + c.shownURL + ": " + sink.StatusText(resp.StatusCode)
	if s := sink.Snippet(snippet); s != "" {
		msg += ": " + s
	}
	err = sink.HTTPStatus(resp.StatusCode, resp.Header, c.now(), errors.New(c.scrub.String(msg)))
	c.log.Debug("request refused", "payloads", n, "status", resp.StatusCode, "reason", sink.ReasonOf(err))
	return err
}

// classifyErr classifies a transport error. net/http puts the full URL (with any query
// token) in its errors, so the text is rebuilt from the cause with the masked URL.
func (c *Client) classifyErr(ctx context.Context, err error) error {
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err
	}
	msg := "httppost: POST " + c.shownURL + ": "
	if hint := sink.TransportHint(cause); hint != "" {
		msg += hint + ": "
	}
	msg += cause.Error()
	return sink.Transport(ctx, &secret.Error{Msg: c.scrub.String(msg), Cause: cause})
}

// redaction returns the URL as it may be shown and a scrubber for the destination's secrets:
// header values (and the credential after "Bearer ", "Splunk "…, which a server may echo
// alone), and what secret.URL masks in the URL.
func redaction(rawURL string, headers map[string]string) (string, *secret.Scrubber) {
	shown, values := secret.URL(rawURL)
	for _, v := range headers {
		values = append(values, v)
		if _, cred, ok := strings.Cut(strings.TrimSpace(v), " "); ok {
			values = append(values, cred)
		}
	}
	return shown, secret.New(values...)
}
