package destination

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/defender-siem/forwarder/internal/format/ndjson"
	"github.com/defender-siem/forwarder/internal/pipeline"
	"github.com/defender-siem/forwarder/internal/sink"
	"github.com/defender-siem/forwarder/internal/sink/httppost"
)

// The Cortex XSIAM (and XDR) HTTP log collector's limits: a request of up to 10 MiB, 1 MiB
// recommended; a record of up to 5 MB.
const (
	xsiamMaxRequest     = 10 << 20
	xsiamDefaultRequest = 1 << 20
	xsiamMaxRecord      = 5_000_000
	xsiamPath           = "/logs/v1/event"
)

// buildXSIAM is Type=xsiam: newline-delimited JSON to a Cortex XSIAM / XDR HTTP log collector
// (Log Format JSON), POST https://api-<tenant>/logs/v1/event with the collector's key as the
// Authorization header.
func buildXSIAM(r *reader, d *pipeline.Destination, log *slog.Logger) {
	fc := readNDJSON(r)
	c := httppost.DefaultConfig()
	c.Batch = httppost.BatchNDJSON
	c.ContentType = "application/json"
	c.URL = r.required("Url", "the collector's API URL, https://api-<tenant>"+xsiamPath+" (Copy api url on the HTTP collector)")
	if c.URL != "" {
		if u, err := url.Parse(c.URL); err != nil || u.Scheme != "https" || u.Host == "" || strings.TrimRight(u.Path, "/") != xsiamPath {
			r.fail("Url", "want https://api-<tenant>%s, the HTTP log collector's URL (not /logs/v1/bulk_load, which is for archived data)", xsiamPath)
		}
	}
	key := r.secret("ApiKey")
	if key == "" {
		r.fail("ApiKey", "missing: the HTTP collector's key, from Save & Generate Token (a Key Vault reference works)")
	}
	c.TLS = readTLS(r)
	c.Gzip = r.boolean("Gzip", true)
	c.GzipLevel = gzipLevel(r, c.GzipLevel)
	c.MaxBatchBytes = r.integer("MaxBatchBytes", xsiamDefaultRequest, 1024, xsiamMaxRequest)
	c.MaxBatchEvents = r.integer("MaxBatchEvents", c.MaxBatchEvents, 1, 100000)
	c.RequestTimeout = r.duration("RequestTimeout", c.RequestTimeout)
	c.Concurrency = r.integer("Concurrency", c.Concurrency, 1, 64)
	maxRecord := r.integer("MaxRecordBytes", xsiamMaxRecord, 1024, xsiamMaxRecord)
	c.Headers = map[string]string{}
	for k, v := range r.prefixed("Headers") {
		if strings.EqualFold(k, "Authorization") {
			r.fail("Headers__"+k, "the key goes in ApiKey")
			continue
		}
		c.Headers[http.CanonicalHeaderKey(k)] = v
	}
	c.Headers["Authorization"] = key
	if len(r.errs) > 0 {
		return
	}
	f, err := ndjson.New(fc)
	if err != nil {
		r.check(err)
		return
	}
	s, err := newXSIAMSink(c, maxRecord, log)
	if err != nil {
		r.check(err)
		return
	}
	d.Formatter = f
	d.Sink = s
}

// xsiamSink batches records up to MaxBatchBytes and sends a record too big for a batch, up to
// the collector's per-record limit, in a request of its own; it explains the collector's
// answers in its own terms.
type xsiamSink struct {
	batch, single *httppost.Client
	batchLimit    int
	recordLimit   int
	gzip          bool
}

func newXSIAMSink(c httppost.Config, maxRecord int, log *slog.Logger) (*xsiamSink, error) {
	batch, err := httppost.New(c, log)
	if err != nil {
		return nil, err
	}
	sc := c
	sc.MaxBatchBytes = max(maxRecord+1, c.MaxBatchBytes)
	sc.MaxBatchEvents = 1
	single, err := httppost.New(sc, log)
	if err != nil {
		_ = batch.Close()
		return nil, err
	}
	return &xsiamSink{batch: batch, single: single, batchLimit: c.MaxBatchBytes, recordLimit: maxRecord, gzip: c.Gzip}, nil
}

func (s *xsiamSink) Close() error {
	return errors.Join(s.batch.Close(), s.single.Close())
}

func (s *xsiamSink) Send(ctx context.Context, payloads [][]byte) []error {
	errs := make([]error, len(payloads))
	var small, big []int
	for i, p := range payloads {
		switch {
		case len(p)+1 <= s.batchLimit:
			small = append(small, i)
		case len(p) <= s.recordLimit:
			big = append(big, i)
		default:
			errs[i] = sink.Permanent(sink.ReasonTooLarge, fmt.Errorf("xsiam: a record of %d bytes exceeds the collector's %d bytes per record", len(p), s.recordLimit))
		}
	}
	var wg sync.WaitGroup
	send := func(c *httppost.Client, idx []int) {
		if len(idx) == 0 {
			return
		}
		wg.Go(func() {
			part := make([][]byte, len(idx))
			for k, i := range idx {
				part[k] = payloads[i]
			}
			for k, err := range c.Send(ctx, part) {
				errs[idx[k]] = s.explain(err)
			}
		})
	}
	send(s.batch, small)
	send(s.single, big)
	wg.Wait()
	return errs
}

// explain adds what the collector's answers mean. Its 500 is how it says that the request
// does not match its Log Format or Compression setting: repeating the request cannot help,
// so it is permanent, and the dead letters replay once the collector is fixed.
func (s *xsiamSink) explain(err error) error {
	if err == nil {
		return nil
	}
	switch sink.StatusOf(err) {
	case http.StatusInternalServerError:
		comp := "gzip"
		if !s.gzip {
			comp = "uncompressed"
		}
		return sink.Permanent(sink.ReasonRejected, fmt.Errorf("%w; the XSIAM HTTP collector answers 500 when the request does not match its settings: set its Log Format to JSON and its Compression to %s (this destination's Gzip setting), then replay the dead letters", err, comp))
	case http.StatusUnauthorized, http.StatusForbidden:
		return sink.Permanent(sink.ReasonUnauthorized, fmt.Errorf("%w; the collector's key (ApiKey) is wrong, or the collector was deleted or disabled", err))
	}
	return err
}
