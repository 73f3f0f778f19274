package destination

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/defender-siem/forwarder/internal/format"
	"github.com/defender-siem/forwarder/internal/format/logrhythm"
	"github.com/defender-siem/forwarder/internal/format/ndjson"
	"github.com/defender-siem/forwarder/internal/pipeline"
	"github.com/defender-siem/forwarder/internal/sink/httppost"
)

// readHTTPPost reads the settings every HTTP intake shares.
func readHTTPPost(r *reader, batch httppost.Batch) httppost.Config {
	c := httppost.DefaultConfig()
	c.Batch = batch
	c.URL = r.required("Url", "the intake URL")
	c.TLS = readTLS(r)
	c.Gzip = r.boolean("Gzip", batch == httppost.BatchNDJSON)
	c.GzipLevel = gzipLevel(r, c.GzipLevel)
	c.MaxBatchBytes = r.integer("MaxBatchBytes", c.MaxBatchBytes, 1024, 64<<20)
	c.MaxBatchEvents = r.integer("MaxBatchEvents", c.MaxBatchEvents, 1, 100000)
	c.RequestTimeout = r.duration("RequestTimeout", c.RequestTimeout)
	c.Concurrency = r.integer("Concurrency", c.Concurrency, 1, 64)
	c.Headers = map[string]string{}
	for k, v := range r.prefixed("Headers") {
		c.Headers[http.CanonicalHeaderKey(k)] = v
	}
	return c
}

func finishHTTPPost(r *reader, d *pipeline.Destination, f format.Formatter, c httppost.Config, log *slog.Logger) {
	if len(r.errs) > 0 {
		return
	}
	if err := c.Validate(); err != nil {
		r.check(err)
		return
	}
	client, err := httppost.New(c, log)
	if err != nil {
		r.check(err)
		return
	}
	d.Formatter = f
	d.Sink = client
}

// readNDJSON reads the NDJSON formatter's settings, Wrap and WrapFields.
func readNDJSON(r *reader) ndjson.Config {
	fc := ndjson.DefaultConfig()
	fc.Wrap = r.boolean("Wrap", fc.Wrap)
	if fields := r.list("WrapFields"); fields != nil {
		fc.Fields = nil
		for _, f := range fields {
			fc.Fields = append(fc.Fields, ndjson.Field(strings.ToLower(f)))
		}
	}
	r.check(fc.Validate())
	return fc
}

// buildHTTP is Type=http: newline-delimited JSON batches for Sumo Logic HTTP sources, the
// Logz.io bulk listener or any HTTPS log intake.
func buildHTTP(r *reader, d *pipeline.Destination, log *slog.Logger) {
	fc := readNDJSON(r)
	c := readHTTPPost(r, httppost.BatchNDJSON)
	f, err := ndjson.New(fc)
	if err != nil {
		r.check(err)
		return
	}
	finishHTTPPost(r, d, f, c, log)
}

// buildLogRhythm is Type=logrhythm: one flat JSON object per record to the Open Collector's
// Webhook Beat, or (Transport=syslog) the same fields as |key=value| text over syslog.
func buildLogRhythm(r *reader, d *pipeline.Destination, log *slog.Logger) {
	fc := logrhythm.DefaultConfig()
	fc.BeatName = r.str("BeatName", fc.BeatName)
	fc.FullyQualifiedBeatName = r.str("FullyQualifiedBeatName", fc.FullyQualifiedBeatName)
	fc.DeviceType = r.str("DeviceType", fc.DeviceType)
	fc.OriginalMessage = r.boolean("OriginalMessage", fc.OriginalMessage)
	fc.MaxOriginalMessage = r.integer("MaxOriginalMessage", fc.MaxOriginalMessage, 0, 64<<20)
	transport := r.oneOf("Transport", "http", "http", "syslog")
	if transport == "syslog" {
		fc.Mode = logrhythm.ModeKV
		buildSyslogTransport(r, d, log, true, func(prefix func([]byte, *alertRecord) []byte) (format.Formatter, error) {
			fc.Prefix = prefix
			if err := fc.Validate(); err != nil {
				return nil, err
			}
			return logrhythm.New(fc)
		})
		return
	}
	fc.Mode = logrhythm.ModeJSON
	r.check(fc.Validate())
	c := readHTTPPost(r, httppost.BatchNone)
	if tok := r.secret("Token"); tok != "" {
		h := r.str("AuthHeader", "Authorization")
		if strings.EqualFold(h, "Authorization") && !strings.Contains(tok, " ") {
			tok = "Bearer " + tok
		}
		c.Headers[http.CanonicalHeaderKey(h)] = tok
	} else {
		r.str("AuthHeader", "")
	}
	f, err := logrhythm.New(fc)
	if err != nil {
		r.check(err)
		return
	}
	finishHTTPPost(r, d, f, c, log)
}
