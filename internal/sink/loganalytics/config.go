package loganalytics

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/defender-siem/forwarder/internal/sink/tlsconf"
)

// MaxRequestBytes is the service's limit on one call, compressed or not ("1 MB"), read as
// 1,000,000 bytes, the stricter reading.
const MaxRequestBytes = 1_000_000

// Config holds a Log Analytics destination's transport settings.
type Config struct {
	// Endpoint is the logs ingestion endpoint: a data collection endpoint
	// (https://<dce>.<region>-1.ingest.monitor.azure.com) or a Direct rule's own endpoint.
	Endpoint string
	// RuleID is the data collection rule's immutable id (dcr-…).
	RuleID string
	// Streams are the streams payloads may name (each declared in the rule, Custom-…).
	Streams []string
	// Credential gets tokens; NewCredential builds one from settings.
	Credential azcore.TokenCredential
	// Audience is the token audience: https://monitor.azure.com (default), .us or .cn.
	Audience string
	// TLS is used for the ingestion endpoint (and, through NewCredential, the authority).
	TLS tlsconf.Config
	// Gzip compresses request bodies when that makes them smaller. Default true.
	Gzip bool
	// MaxBatchBytes caps a request body before compression: the rows, their commas and the
	// array brackets. A row that cannot fit alone is refused as too large. Default and
	// maximum MaxRequestBytes.
	MaxBatchBytes int
	// RequestTimeout bounds one request, token included. Default 30s.
	RequestTimeout time.Duration
	// Concurrency is how many requests one Send keeps in flight. Default 2.
	Concurrency int
}

// DefaultConfig returns the defaults; Endpoint, RuleID, Streams and Credential are left for
// the caller.
func DefaultConfig() Config {
	return Config{
		Audience:       AudiencePublic,
		Gzip:           true,
		MaxBatchBytes:  MaxRequestBytes,
		RequestTimeout: 30 * time.Second,
		Concurrency:    2,
	}
}

// The ingestion audiences of the Azure clouds.
const (
	AudiencePublic     = "https://monitor.azure.com"
	AudienceGovernment = "https://monitor.azure.us"
	AudienceChina      = "https://monitor.azure.cn"
)

// streamName is what the service accepts as a custom stream: Custom- and the table's
// allowed characters. Built-in Microsoft- streams are not writable with this API for the
// tables Defender would use.
var streamName = regexp.MustCompile(`^Custom-[A-Za-z][A-Za-z0-9_]{0,62}$`)

var ruleID = regexp.MustCompile(`^dcr-[0-9a-fA-F]{32}$`)

// Validate reports every problem with the settings at once.
func (c Config) Validate() error {
	var errs []error
	if c.Endpoint == "" {
		errs = append(errs, errors.New("loganalytics: Endpoint is required"))
	} else if u, err := url.Parse(c.Endpoint); err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" {
		errs = append(errs, fmt.Errorf("loganalytics: Endpoint %q: want an https URL such as https://<dce>.<region>-1.ingest.monitor.azure.com", c.Endpoint))
	}
	if !ruleID.MatchString(c.RuleID) {
		errs = append(errs, fmt.Errorf("loganalytics: RuleId %q: want the rule's immutable id, dcr- and 32 hex digits (the rule's JSON view, immutableId)", c.RuleID))
	}
	if len(c.Streams) == 0 {
		errs = append(errs, errors.New("loganalytics: at least one stream is required"))
	}
	for _, s := range c.Streams {
		if !streamName.MatchString(s) {
			errs = append(errs, fmt.Errorf("loganalytics: stream %q: want Custom- followed by a letter and letters, digits or _ (the rule's streamDeclarations name)", s))
		}
	}
	if c.Credential == nil {
		errs = append(errs, errors.New("loganalytics: a credential is required"))
	}
	if u, err := url.Parse(c.Audience); c.Audience == "" || err != nil || u.Scheme != "https" {
		errs = append(errs, fmt.Errorf("loganalytics: Audience %q: want an https URL such as %s", c.Audience, AudiencePublic))
	}
	if c.MaxBatchBytes < 1024 || c.MaxBatchBytes > MaxRequestBytes {
		errs = append(errs, fmt.Errorf("loganalytics: MaxBatchBytes %d: want 1024 to %d (the service takes at most 1 MB a call)", c.MaxBatchBytes, MaxRequestBytes))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("loganalytics: RequestTimeout %v: must be positive", c.RequestTimeout))
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		errs = append(errs, fmt.Errorf("loganalytics: Concurrency %d: want 1 to 64", c.Concurrency))
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("loganalytics: TLS: %w", err))
	}
	return errors.Join(errs...)
}

// Payload frames a row for Send: the stream it goes to, a line feed, the row (one JSON
// object on one line). It appends to dst.
func Payload(dst []byte, stream string, row []byte) []byte {
	dst = append(dst, stream...)
	dst = append(dst, '\n')
	return append(dst, row...)
}

// AppendStream starts a payload for stream; the caller appends the row.
func AppendStream(dst []byte, stream string) []byte {
	return append(append(dst, stream...), '\n')
}

// splitPayload is Payload's inverse.
func splitPayload(p []byte) (stream string, row []byte, ok bool) {
	i := bytes.IndexByte(p[:min(len(p), 80)], '\n')
	if i <= 0 {
		return "", nil, false
	}
	return string(p[:i]), p[i+1:], true
}
