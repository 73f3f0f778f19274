// Package loganalytics delivers rows to a Log Analytics workspace (and so to Microsoft
// Sentinel) through the Azure Monitor Logs Ingestion API, with the Azure SDK's azlogs client
// and an azidentity credential (managed identity, or an app registration's secret or
// certificate for a workspace in another tenant).
//
// Each payload names its stream and carries one row (see Payload). Send groups rows by stream
// into JSON arrays under the service's 1 MB limit, compressed or not (always an array: a bare
// object is accepted and stored nowhere), gzips them when that helps, makes one attempt per
// request and classifies what comes back: 429 and 5xx are retryable with the service's
// Retry-After, 401 and 403 are permanent with a message naming the Monitoring Metrics
// Publisher role, 413 halves the batch. It never retries by itself and never logs a token or
// a secret.
package loganalytics

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"

	"github.com/defender-siem/forwarder/internal/sink"
)

// Client delivers rows to one data collection rule. It is safe for concurrent use.
type Client struct {
	cfg    Config
	client *azlogs.Client
	hc     *http.Client
	log    *slog.Logger
	now    func() time.Time
}

var _ sink.Sink = (*Client)(nil)

// HTTPClient returns the HTTP client for cfg's TLS settings, to share with NewCredential.
func HTTPClient(cfg Config) (*http.Client, error) {
	tc, err := cfg.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("loganalytics: TLS: %w", err)
	}
	return &http.Client{Transport: sink.NewTransport(tc, cfg.RequestTimeout, cfg.Concurrency)}, nil
}

// New checks cfg and builds the client. hc may be nil (HTTPClient(cfg) is used); logger
// may be nil.
func New(cfg Config, hc *http.Client, logger *slog.Logger) (*Client, error) {
	return newClient(cfg, hc, nil, logger)
}

// newClient is New with the SDK transport replaceable, for the SDK's own fake.
func newClient(cfg Config, hc *http.Client, tr policy.Transporter, logger *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if hc == nil {
		var err error
		if hc, err = HTTPClient(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.TLS.InsecureSkipVerify {
		logger.Warn("TLS certificate verification is off for this destination")
	}
	if tr == nil {
		tr = hc
	}
	opts := &azlogs.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: tr,
		// One Send is one attempt: the pipeline's retry and dead-letter logic decide what
		// happens next.
		Retry: policy.RetryOptions{MaxRetries: -1, TryTimeout: cfg.RequestTimeout},
		Cloud: cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			azlogs.ServiceNameIngestion: {Audience: strings.TrimRight(cfg.Audience, "/") + "/"},
		}},
		Telemetry: policy.TelemetryOptions{ApplicationID: "defender-siem-forwarder"},
	}}
	c, err := azlogs.NewClient(strings.TrimRight(cfg.Endpoint, "/"), cfg.Credential, opts)
	if err != nil {
		return nil, fmt.Errorf("loganalytics: %w", err)
	}
	return &Client{
		cfg: cfg, client: c, hc: hc, now: time.Now,
		log: logger.With("sink", "loganalytics", "endpoint", cfg.Endpoint, "rule", cfg.RuleID),
	}, nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

type request struct {
	stream string
	idx    []int
	rows   [][]byte
	size   int // body bytes: brackets, rows, commas
}

// Send makes one delivery attempt for every payload and returns one error per payload, nil
// for each row the service accepted (204).
func (c *Client) Send(ctx context.Context, payloads [][]byte) []error {
	errs := make([]error, len(payloads))
	sink.SendParallel(ctx, c.cfg.Concurrency, c.plan(payloads, errs), func(r request) {
		// A 413 halves the request, so that one oversized request does not cost every row in it.
		sink.SendHalving(r.idx, errs, func(lo, hi int) error {
			return c.upload(ctx, request{stream: r.stream, idx: r.idx[lo:hi], rows: r.rows[lo:hi]})
		})
	}, func(r request) {
		for _, i := range r.idx {
			errs[i] = sink.Retryable(sink.ReasonTimeout, 0, fmt.Errorf("loganalytics: not sent: %w", ctx.Err()))
		}
	})
	return errs
}

// plan groups rows by stream, in order, into requests under MaxBatchBytes, refusing those
// no request can carry.
func (c *Client) plan(payloads [][]byte, errs []error) []request {
	var reqs []request
	open := map[string]int{} // stream → index in reqs of its open request
	for i, p := range payloads {
		stream, row, ok := splitPayload(p)
		switch {
		case !ok:
			errs[i] = sink.Permanent(sink.ReasonRejected, errors.New("loganalytics: payload names no stream"))
			continue
		case !slices.Contains(c.cfg.Streams, stream):
			errs[i] = sink.Permanent(sink.ReasonRejected, fmt.Errorf("loganalytics: stream %q is not configured", stream))
			continue
		case len(row) < 2 || row[0] != '{' || row[len(row)-1] != '}':
			errs[i] = sink.Permanent(sink.ReasonRejected, errors.New("loganalytics: the row is not a JSON object"))
			continue
		case len(row)+2 > c.cfg.MaxBatchBytes:
			errs[i] = sink.Permanent(sink.ReasonTooLarge, fmt.Errorf("loganalytics: a row of %d bytes exceeds the %d bytes a request may carry (the service takes 1 MB a call)", len(row), c.cfg.MaxBatchBytes))
			continue
		}
		k, ok := open[stream]
		if ok && reqs[k].size+len(row)+1 > c.cfg.MaxBatchBytes {
			ok = false
		}
		if !ok {
			reqs = append(reqs, request{stream: stream, size: 1})
			k = len(reqs) - 1
			open[stream] = k
		}
		r := &reqs[k]
		r.idx = append(r.idx, i)
		r.rows = append(r.rows, row)
		r.size += len(row) + 1 // the row and its comma, or the closing bracket
	}
	return reqs
}

func (c *Client) upload(ctx context.Context, r request) error {
	size := 1
	for _, row := range r.rows {
		size += len(row) + 1
	}
	body := make([]byte, 0, size)
	body = append(body, '[')
	for k, row := range r.rows {
		if k > 0 {
			body = append(body, ',')
		}
		body = append(body, row...)
	}
	body = append(body, ']')
	var opts *azlogs.UploadOptions
	if c.cfg.Gzip {
		if z, ok := compress(body); ok {
			body = z
			enc := "gzip"
			opts = &azlogs.UploadOptions{ContentEncoding: &enc}
		}
	}
	_, err := c.client.Upload(ctx, c.cfg.RuleID, r.stream, body, opts)
	if err == nil {
		return nil
	}
	err = c.classify(err, r.stream)
	c.log.Debug("upload failed", "stream", r.stream, "rows", len(r.rows), "bytes", len(body), "reason", sink.ReasonOf(err), "err", err)
	return err
}

// compress gzips body; ok is false when that does not make it smaller, as random or already
// compressed text can grow.
func compress(body []byte) ([]byte, bool) {
	var buf bytes.Buffer
	buf.Grow(len(body) / 4)
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(body); err != nil {
		return nil, false
	}
	if err := zw.Close(); err != nil {
		return nil, false
	}
	if buf.Len() >= len(body) {
		return nil, false
	}
	return buf.Bytes(), true
}
