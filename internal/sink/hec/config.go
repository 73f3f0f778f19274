package hec

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/defender-siem/forwarder/internal/secret"
	"github.com/defender-siem/forwarder/internal/sink"
	"github.com/defender-siem/forwarder/internal/sink/tlsconf"
)

// Defaults of DefaultConfig.
const (
	DefaultMaxBatchBytes   = 512 << 10
	DefaultMaxBatchEvents  = 500
	DefaultMaxEventBytes   = 5_000_000
	DefaultRequestTimeout  = 30 * time.Second
	DefaultAckTimeout      = 30 * time.Second
	DefaultAckPollInterval = time.Second
	DefaultUserAgent       = "defender-siem-forwarder"
	// DefaultGzipLevel is the fastest level (see sink.DefaultGzipLevel).
	DefaultGzipLevel = sink.DefaultGzipLevel
)

// Config holds a HEC destination's settings.
type Config struct {
	// URL is the HEC base URL, such as https://splunk.example.com:8088 or
	// https://http-inputs-<stack>.splunkcloud.com. A URL that already ends in
	// /services/collector or /services/collector/event is taken as that endpoint's base.
	URL string
	// Token is the HEC token. It is sent only in the Authorization header and never appears in
	// errors, logs or String.
	Token string
	// TLS holds the certificate settings for https URLs. Verification is on by default.
	TLS tlsconf.Config
	// Gzip compresses request bodies (Content-Encoding: gzip). Default true.
	Gzip bool
	// GzipLevel is the compression level, 1 (fastest) to 9 (smallest); 0 means
	// DefaultGzipLevel.
	GzipLevel int
	// UseAck waits for indexer acknowledgment before counting events as delivered. It needs a
	// token with indexer acknowledgment on (Splunk Enterprise only). Default false.
	UseAck bool
	// MaxBatchBytes bounds the uncompressed body of one request. A single event larger than
	// this is still sent, alone. Default 512 KiB.
	MaxBatchBytes int
	// MaxBatchEvents bounds the events in one request. Default 500.
	MaxBatchEvents int
	// MaxEventBytes is the largest single event sent at all; a larger one fails at once as
	// too-large instead of being refused by Splunk (inputs.conf maxEventSize, default 5 MB).
	// Default 5,000,000.
	MaxEventBytes int
	// RequestTimeout bounds one HTTP request, from dialling to reading the answer. Default 30 s.
	RequestTimeout time.Duration
	// AckTimeout bounds the wait for acknowledgments after the last request of a Send, and
	// AckPollInterval is the pause between two queries. Defaults 30 s and 1 s. Used only with
	// UseAck.
	AckTimeout      time.Duration
	AckPollInterval time.Duration
	// UserAgent is sent with every request. Default "defender-siem-forwarder".
	UserAgent string
}

// DefaultConfig returns the defaults; URL and Token must still be set.
func DefaultConfig() Config {
	return Config{
		Gzip:            true,
		GzipLevel:       DefaultGzipLevel,
		MaxBatchBytes:   DefaultMaxBatchBytes,
		MaxBatchEvents:  DefaultMaxBatchEvents,
		MaxEventBytes:   DefaultMaxEventBytes,
		RequestTimeout:  DefaultRequestTimeout,
		AckTimeout:      DefaultAckTimeout,
		AckPollInterval: DefaultAckPollInterval,
		UserAgent:       DefaultUserAgent,
	}
}

// Validate reports every problem with the settings at once. Its messages never hold the token.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := endpoints(c.URL); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.Token == "":
		errs = append(errs, errors.New("hec: Token is required"))
	case strings.HasPrefix(strings.ToLower(c.Token), "splunk "):
		errs = append(errs, errors.New("hec: Token must be the token alone, without the \"Splunk \" prefix"))
	case strings.ContainsFunc(c.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		// It would end up in a header; say what is wrong without saying what it is.
		errs = append(errs, errors.New("hec: Token contains spaces or control characters"))
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("hec: TLS: %w", err))
	}
	if c.GzipLevel < 0 || c.GzipLevel > 9 {
		errs = append(errs, fmt.Errorf("hec: GzipLevel must be 1 (fastest) to 9 (smallest), got %d", c.GzipLevel))
	}
	if c.MaxBatchBytes <= 0 {
		errs = append(errs, fmt.Errorf("hec: MaxBatchBytes must be positive, got %d", c.MaxBatchBytes))
	}
	if c.MaxBatchEvents <= 0 {
		errs = append(errs, fmt.Errorf("hec: MaxBatchEvents must be positive, got %d", c.MaxBatchEvents))
	}
	if c.MaxEventBytes <= 0 {
		errs = append(errs, fmt.Errorf("hec: MaxEventBytes must be positive, got %d", c.MaxEventBytes))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("hec: RequestTimeout must be positive, got %s", c.RequestTimeout))
	}
	if c.UseAck {
		if c.AckTimeout <= 0 {
			errs = append(errs, fmt.Errorf("hec: AckTimeout must be positive with UseAck, got %s", c.AckTimeout))
		}
		if c.AckPollInterval <= 0 {
			errs = append(errs, fmt.Errorf("hec: AckPollInterval must be positive with UseAck, got %s", c.AckPollInterval))
		} else if c.AckTimeout > 0 && c.AckPollInterval >= c.AckTimeout {
			errs = append(errs, fmt.Errorf("hec: AckPollInterval (%s) must be shorter than AckTimeout (%s)", c.AckPollInterval, c.AckTimeout))
		}
	}
	if strings.ContainsFunc(c.UserAgent, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		errs = append(errs, errors.New("hec: UserAgent contains control characters"))
	}
	return errors.Join(errs...)
}

// String renders the settings with the token redacted, so a Config can be logged.
func (c Config) String() string {
	tok := ""
	if c.Token != "" {
		tok = secret.Mask
	}
	return fmt.Sprintf("hec.Config{URL:%q Token:%s TLS:%+v Gzip:%t GzipLevel:%d UseAck:%t MaxBatchBytes:%d MaxBatchEvents:%d MaxEventBytes:%d RequestTimeout:%s AckTimeout:%s AckPollInterval:%s UserAgent:%q}",
		c.URL, tok, c.TLS, c.Gzip, c.GzipLevel, c.UseAck, c.MaxBatchBytes, c.MaxBatchEvents, c.MaxEventBytes,
		c.RequestTimeout, c.AckTimeout, c.AckPollInterval, c.UserAgent)
}

// GoString keeps %#v from printing the token.
func (c Config) GoString() string { return c.String() }

// LogValue keeps slog from printing the token.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// endpoints derives the event and ack URLs from the configured base URL.
func endpoints(raw string) (event, ack string, err error) {
	if raw == "" {
		return "", "", errors.New("hec: URL is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("hec: URL: %w", err)
	}
	var errs []error
	if u.Scheme != "https" && u.Scheme != "http" {
		errs = append(errs, fmt.Errorf("hec: URL %q: scheme must be https or http", u.Redacted()))
	}
	if u.Host == "" {
		errs = append(errs, fmt.Errorf("hec: URL %q has no host", u.Redacted()))
	}
	if u.User != nil {
		errs = append(errs, fmt.Errorf("hec: URL %q must not hold credentials; use Token", u.Redacted()))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("hec: URL %q must not have a query or fragment", u.Redacted()))
	}
	if len(errs) > 0 {
		return "", "", errors.Join(errs...)
	}
	base := strings.TrimRight(u.Path, "/")
	for _, s := range []string{"/services/collector/event/1.0", "/services/collector/event", "/services/collector"} {
		if strings.HasSuffix(base, s) {
			base = strings.TrimSuffix(base, s)
			break
		}
	}
	u.Path, u.RawPath = base+"/services/collector/event", ""
	event = u.String()
	u.Path = base + "/services/collector/ack"
	ack = u.String()
	return event, ack, nil
}
