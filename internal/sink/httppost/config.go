package httppost

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/defender-siem/forwarder/internal/sink"
	"github.com/defender-siem/forwarder/internal/sink/tlsconf"
)

// Batch says how payloads share requests.
type Batch string

const (
	// BatchNone sends one payload per request: the LogRhythm Webhook Beat takes one JSON
	// object per POST.
	BatchNone Batch = "none"
	// BatchNDJSON sends many payloads per request, each followed by "\n": Sumo Logic HTTP
	// sources, the Logz.io bulk listener and most HTTPS log intakes take this.
	BatchNDJSON Batch = "ndjson"
)

// Config holds an HTTP(S) destination's settings.
type Config struct {
	// URL is where payloads are POSTed. Secrets in it (a Logz.io ?token=, a Sumo Logic
	// collector code in the path) are never printed.
	URL string
	// Headers are added to every request, e.g. Authorization or X-Sumo-Category. Their
	// values are treated as secrets and never printed.
	Headers map[string]string
	// TLS is the TLS setting for https URLs; certificates are verified unless it says
	// otherwise.
	TLS tlsconf.Config
	// Gzip compresses request bodies (Content-Encoding: gzip). Default false.
	Gzip bool
	// GzipLevel is the compression level, 1 (fastest) to 9 (smallest); 0 means
	// DefaultGzipLevel.
	GzipLevel int
	// Batch is BatchNone (default) or BatchNDJSON.
	Batch Batch
	// MaxBatchBytes caps an uncompressed request body in bytes; a single payload above it is
	// refused as too large without being sent. Default 1,000,000 (Sumo Logic's recommended
	// maximum request size).
	MaxBatchBytes int
	// MaxBatchEvents caps the payloads in one NDJSON request (0: no cap). Default 1000.
	MaxBatchEvents int
	// RequestTimeout bounds one request, connection and response included. Default 30s.
	RequestTimeout time.Duration
	// Concurrency is how many requests one Send keeps in flight. Default 4.
	Concurrency int
	// UserAgent is the User-Agent header. Default "defender-siem-forwarder".
	UserAgent string
	// ContentType is the Content-Type header. Default "application/json" with BatchNone,
	// "application/x-ndjson" with BatchNDJSON.
	ContentType string
}

// DefaultGzipLevel is the fastest level (see sink.DefaultGzipLevel).
const DefaultGzipLevel = sink.DefaultGzipLevel

// DefaultConfig returns the defaults; URL is left for the caller.
func DefaultConfig() Config {
	return Config{
		Batch:          BatchNone,
		GzipLevel:      DefaultGzipLevel,
		MaxBatchBytes:  1_000_000,
		MaxBatchEvents: 1000,
		RequestTimeout: 30 * time.Second,
		Concurrency:    4,
		UserAgent:      "defender-siem-forwarder",
	}
}

// managedHeaders are set by the client itself.
var managedHeaders = []string{"Content-Length", "Content-Encoding", "Transfer-Encoding", "Connection", "Host"}

// Validate reports every problem with the settings at once. Messages name settings and
// header names, never header values or the URL's secrets.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("httppost: URL is required"))
	} else if u, err := url.Parse(c.URL); err != nil {
		errs = append(errs, errors.New("httppost: URL does not parse as a URL"))
	} else {
		if u.Scheme != "http" && u.Scheme != "https" {
			errs = append(errs, fmt.Errorf("httppost: URL scheme %q: want http or https", u.Scheme))
		}
		if u.Host == "" {
			errs = append(errs, errors.New("httppost: URL has no host"))
		}
	}
	for name, v := range c.Headers {
		if !validToken(name) {
			errs = append(errs, fmt.Errorf("httppost: Headers: %q is not a valid header name", name))
		}
		for _, m := range managedHeaders {
			if strings.EqualFold(name, m) {
				errs = append(errs, fmt.Errorf("httppost: Headers: %s is set by the client and cannot be configured", name))
			}
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			errs = append(errs, fmt.Errorf("httppost: Headers: the value of %s holds CR, LF or NUL", name))
		}
	}
	if c.Batch != BatchNone && c.Batch != BatchNDJSON {
		errs = append(errs, fmt.Errorf("httppost: Batch %q: want %q or %q", c.Batch, BatchNone, BatchNDJSON))
	}
	if c.GzipLevel < 0 || c.GzipLevel > 9 {
		errs = append(errs, fmt.Errorf("httppost: GzipLevel %d: want 1 (fastest) to 9 (smallest)", c.GzipLevel))
	}
	if c.MaxBatchBytes <= 0 {
		errs = append(errs, fmt.Errorf("httppost: MaxBatchBytes %d: must be positive", c.MaxBatchBytes))
	}
	if c.MaxBatchEvents < 0 {
		errs = append(errs, fmt.Errorf("httppost: MaxBatchEvents %d: must be 0 (no cap) or more", c.MaxBatchEvents))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("httppost: RequestTimeout %v: must be positive", c.RequestTimeout))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("httppost: Concurrency %d: must be 1 or more", c.Concurrency))
	}
	if strings.ContainsAny(c.UserAgent+c.ContentType, "\r\n\x00") {
		errs = append(errs, errors.New("httppost: UserAgent and ContentType must not hold CR, LF or NUL"))
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("httppost: TLS: %w", err))
	}
	return errors.Join(errs...)
}

// validToken reports whether s is an RFC 9110 token, what a header name must be.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}
