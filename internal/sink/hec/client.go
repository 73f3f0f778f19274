// Package hec delivers formatted events to a Splunk HTTP Event Collector: it batches them into
// POST /services/collector/event requests, optionally gzip-compressed, classifies Splunk's
// answers into delivered, retryable and permanent, and, when indexer acknowledgment is on,
// waits for Splunk to confirm that the events were indexed. It sends bytes and never looks
// inside an event beyond checking that it is a JSON object.
//
// Batching: payloads are joined with "\n" (HEC takes concatenated JSON objects, not an array)
// into requests of at most MaxBatchEvents events and MaxBatchBytes uncompressed bytes. An event
// larger than MaxBatchBytes goes alone; one larger than MaxEventBytes fails at once, permanently,
// as too-large, since Splunk would refuse it anyway (maxEventSize).
//
// Partial answers: when a 400 names the first invalid event (invalid-event-number i, for the
// per-event codes 5, 6, 12, 13, 15), the events before i count as delivered, event i is
// rejected permanently, and the events after i, which Splunk never judged, are sent again at
// once in a new request. When a 429 or 503 names event i, the events before i count as
// delivered and the rest get the retryable error. A 413 for a request of several events splits
// the request in halves and sends each again; a 413 for one event is permanent.
//
// Acknowledgment: with UseAck, a 200 carries an ackId; Send then polls
// /services/collector/ack?channel=<channel> until Splunk reports it true or AckTimeout (or ctx)
// ends. Unconfirmed events get a retryable timeout error: sending them again may duplicate
// them in Splunk, which is the price of never losing one. The events before a rejected one in a
// partial 400 come with no ackId and count as delivered on Splunk's word. The channel is a UUID
// fixed for the life of the Client, sent with every request, since acks belong to a channel.
//
// Errors: every error is a sink.Error. Network failures and 5xx are retryable (unreachable),
// 429 and 503 are retryable (throttled) with the Retry-After pause in seconds or as an HTTP-date,
// deadlines are retryable (timeout), 400/401/403 are permanent (unauthorized for token codes,
// rejected otherwise), 413 is permanent (too-large), redirects are not followed (rejected), and
// an untrusted server certificate is permanent (unauthorized). No error or log line holds the
// token, even when the server echoes it.
package hec

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/defender-siem/forwarder/internal/secret"
	"github.com/defender-siem/forwarder/internal/sink"
)

// Limits on what is read from an answer: enough for any HEC reply, bounded against a
// misbehaving proxy. The rest is drained (up to maxDrain) so the connection can be reused.
const (
	maxReplyBytes = 64 << 10
	maxDrain      = 1 << 20
)

// Client is a HEC sink. It is safe for concurrent use.
type Client struct {
	cfg      Config
	eventURL string
	ackURL   string
	host     string
	channel  string
	auth     string
	hc       *http.Client
	log      *slog.Logger
	now      func() time.Time
	gzip     *sink.GzipPool
	// warnedNoAck makes the "UseAck is set but the token does not acknowledge" warning appear once.
	warnedNoAck atomic.Bool
}

var _ sink.Sink = (*Client)(nil)

// New validates cfg and builds a Client. logger may be nil.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	eventURL, ackURL, _ := endpoints(cfg.URL)
	u, _ := url.Parse(eventURL)
	tlsCfg, err := cfg.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("hec: TLS: %w", err)
	}
	c := &Client{
		cfg:      cfg,
		eventURL: eventURL,
		ackURL:   ackURL + "?channel=",
		host:     u.Host,
		channel:  uuid.NewString(),
		auth:     "Splunk " + cfg.Token,
		hc:       sink.NewHTTPClient(tlsCfg, cfg.RequestTimeout, 16),
		log:      logger.With("sink", "hec", "host", u.Host),
		now:      time.Now,
		gzip:     sink.NewGzipPool(cfg.GzipLevel),
	}
	c.ackURL += c.channel
	if u.Scheme == "http" {
		c.log.Warn("HEC URL is plain http: the token and events travel unencrypted")
	}
	if cfg.TLS.InsecureSkipVerify {
		c.log.Warn("TLS certificate verification is off for HEC")
	}
	return c, nil
}

// Channel returns the X-Splunk-Request-Channel value this Client sends.
func (c *Client) Channel() string { return c.channel }

// Close releases idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// pendingAck is a request Splunk accepted whose indexing is not yet confirmed.
type pendingAck struct {
	id  uint64
	idx []int
}

// Send makes one delivery attempt for every payload; see the package documentation.
func (c *Client) Send(ctx context.Context, payloads [][]byte) []error {
	errs := make([]error, len(payloads))
	idx := make([]int, 0, len(payloads))
	for i, p := range payloads {
		if err := c.checkPayload(p); err != nil {
			errs[i] = err
			continue
		}
		idx = append(idx, i)
	}
	var pending []pendingAck
	for _, b := range batches(payloads, idx, c.cfg.MaxBatchBytes, c.cfg.MaxBatchEvents) {
		pending = c.sendBatch(ctx, payloads, b, errs, pending)
	}
	if len(pending) > 0 {
		c.awaitAcks(ctx, pending, errs)
	}
	return errs
}

// checkPayload refuses what cannot be one HEC event, before it can shift the event numbers
// Splunk reports for the rest of its request.
func (c *Client) checkPayload(p []byte) error {
	if len(p) > c.cfg.MaxEventBytes {
		return sink.Permanent(sink.ReasonTooLarge, fmt.Errorf("hec: event of %d bytes exceeds MaxEventBytes (%d)", len(p), c.cfg.MaxEventBytes))
	}
	t := bytes.TrimSpace(p)
	if len(t) < 2 || t[0] != '{' || t[len(t)-1] != '}' {
		return sink.Permanent(sink.ReasonRejected, fmt.Errorf("hec: payload of %d bytes is not a HEC event envelope (a JSON object)", len(p)))
	}
	return nil
}

// batches cuts idx into consecutive runs that respect the byte and event bounds, counting one
// separator byte per event.
func batches(payloads [][]byte, idx []int, maxBytes, maxEvents int) [][]int {
	return sink.Runs(idx, func(i int) int { return len(payloads[i]) + 1 }, maxBytes, maxEvents)
}

// sendBatch delivers the events idx, setting errs for those that fail, and returns pending
// with the acknowledgment to wait for, if any, appended.
func (c *Client) sendBatch(ctx context.Context, payloads [][]byte, idx []int, errs []error, pending []pendingAck) []pendingAck {
	for len(idx) > 0 {
		if err := ctx.Err(); err != nil {
			setAll(errs, idx, sink.Retryable(sink.ReasonTimeout, 0, fmt.Errorf("hec: not sent: %w", err)))
			return pending
		}
		status, r, err := c.post(ctx, payloads, idx)
		n := len(idx)
		switch {
		case err == nil:
			if c.cfg.UseAck {
				if r.AckID != nil {
					return append(pending, pendingAck{id: *r.AckID, idx: idx})
				}
				if !c.warnedNoAck.Swap(true) {
					c.log.Warn("UseAck is set but HEC answered without an ackId; the token seems to have indexer acknowledgment off, so accepted events count as delivered")
				}
			}
			return pending
		case status == http.StatusRequestEntityTooLarge && n > 1:
			half := n / 2
			pending = c.sendBatch(ctx, payloads, idx[:half], errs, pending)
			return c.sendBatch(ctx, payloads, idx[half:], errs, pending)
		case status == http.StatusBadRequest && r.perEvent() && r.InvalidEvent != nil && *r.InvalidEvent >= 0 && *r.InvalidEvent < n:
			// Events before i were taken; i is bad; the rest were never judged.
			i := *r.InvalidEvent
			errs[idx[i]] = err
			c.log.Debug("HEC rejected one event of a request; sending the rest again", "event", i, "events", n)
			idx = idx[i+1:]
		case !sink.IsPermanent(err) && r.InvalidEvent != nil && *r.InvalidEvent > 0 && *r.InvalidEvent < n:
			setAll(errs, idx[*r.InvalidEvent:], err)
			return pending
		default:
			setAll(errs, idx, err)
			return pending
		}
	}
	return pending
}

func setAll(errs []error, idx []int, err error) {
	for _, i := range idx {
		errs[i] = err
	}
}

// post sends one request holding the events idx and returns the status (0 when no answer
// came), the decoded answer and the classified error.
func (c *Client) post(ctx context.Context, payloads [][]byte, idx []int) (int, reply, error) {
	body, err := c.body(payloads, idx)
	if err != nil {
		return 0, reply{}, sink.Retryable(sink.ReasonUnreachable, 0, fmt.Errorf("hec: building request body: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.eventURL, bytes.NewReader(body))
	if err != nil {
		return 0, reply{}, sink.Permanent(sink.ReasonRejected, fmt.Errorf("hec: %w", err))
	}
	c.setHeaders(req)
	if c.cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	status, r, err := c.do(ctx, req)
	c.log.Debug("HEC request", "events", len(idx), "bytes", len(body), "status", status)
	return status, r, err
}

func (c *Client) setHeaders(req *http.Request) {
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("X-Splunk-Request-Channel", c.channel)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
}

// do runs req and reads, drains and closes the answer whatever it is.
func (c *Client) do(ctx context.Context, req *http.Request) (int, reply, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, reply{}, classifyTransport(ctx, c.host, err)
	}
	defer resp.Body.Close()
	body, readErr := readCapped(resp.Body)
	r := parseReply(body)
	if err := classify(resp.StatusCode, resp.Header, r, body, c.now(), c.scrub); err != nil {
		return resp.StatusCode, r, err
	}
	if readErr != nil && r.Code == nil {
		// A 2xx whose body broke off: Splunk answers only after taking the events, so they
		// count as delivered, but an ackId may have been lost with the rest of the body.
		c.log.Debug("HEC answer unreadable", "err", readErr)
	}
	return resp.StatusCode, r, nil
}

// readCapped reads at most maxReplyBytes of the answer and drains up to maxDrain more, so the
// connection can be reused without reading an endless body.
func readCapped(body io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(body, maxReplyBytes))
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrain))
	return b, err
}

// body joins the payloads with newlines, gzip-compressed when configured. The buffer is fresh
// for every request: the transport may still read a body after the answer arrived.
func (c *Client) body(payloads [][]byte, idx []int) ([]byte, error) {
	size := 0
	for _, i := range idx {
		size += len(payloads[i]) + 1
	}
	if !c.cfg.Gzip {
		b := make([]byte, 0, size)
		for _, i := range idx {
			b = append(b, payloads[i]...)
			b = append(b, '\n')
		}
		return b, nil
	}
	buf := bytes.NewBuffer(make([]byte, 0, size/4+64))
	zw := c.gzip.Get(buf)
	defer c.gzip.Put(zw)
	for _, i := range idx {
		if _, err := zw.Write(payloads[i]); err != nil {
			return nil, err
		}
		if _, err := zw.Write([]byte{'\n'}); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// scrub removes the token from text that came from the server.
func (c *Client) scrub(s string) string {
	if c.cfg.Token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.cfg.Token, secret.Mask)
}
