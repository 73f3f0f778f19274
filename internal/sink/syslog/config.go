package syslog

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/defender-siem/forwarder/internal/sink/relp"
	"github.com/defender-siem/forwarder/internal/sink/tlsconf"
)

// Framings of a stream connection (RFC 6587).
const (
	// FramingOctetCounting writes "MSG-LEN SP MSG" (RFC 6587 §3.4.1, RFC 5425 §4.3).
	FramingOctetCounting = "octet-counting"
	// FramingLF writes "MSG LF" (RFC 6587 §3.4.2, non-transparent). CR, LF and NUL inside a
	// message are replaced by a space so that one message stays one frame.
	FramingLF = "lf"
)

// Config holds a syslog destination's settings.
type Config struct {
	// Address is "tcp://host:port", "tls://host:port", "udp://host:port", or
	// "relp://host:port" and "relp+tls://host:port" for RELP (rsyslog's imrelp), plain or with
	// TLS from the first byte.
	Address string
	// Framing is FramingOctetCounting (default) or FramingLF on tcp; tls always counts
	// octets, as RFC 5425 requires; udp sends one message per datagram and RELP one message per
	// transaction, and both ignore it.
	Framing string
	// TLS configures tls:// and relp+tls:// (verification on, the CA file as the usual way to
	// trust a private SIEM). ServerName defaults to the host of Address.
	TLS tlsconf.Config
	// Window is how many RELP transactions may wait for their answer at once (relp:// and
	// relp+tls:// only).
	Window int
	// DialTimeout bounds connecting, including the TLS handshake.
	DialTimeout time.Duration
	// WriteTimeout bounds writing one batch; over RELP it bounds one write and also how long
	// the client waits for an answer while transactions are open.
	WriteTimeout time.Duration
	// CloseCheck is how long Send waits after writing a batch for the receiver to close or
	// reset the connection, the only sign of trouble syslog over TCP gives. Zero skips the
	// wait (only the check before the next batch remains).
	CloseCheck time.Duration
	// MaxDatagram caps a UDP datagram. RFC 5426 §3.2: receivers SHOULD take 2048 octets, and
	// senders that do not know the path MTU SHOULD stay within 480 (IPv4) or 1180 (IPv6). A
	// longer message is cut on a character boundary and ends with TruncationMarker.
	MaxDatagram int
}

// TruncationMarker ends a UDP message that was cut to MaxDatagram.
const TruncationMarker = "...[truncated]"

// DefaultConfig returns the defaults: octet counting, 10 s to connect, 30 s to write, 20 ms
// close check, 2048-byte datagrams, a RELP window of 128.
func DefaultConfig() Config {
	return Config{
		Framing:      FramingOctetCounting,
		Window:       relp.DefaultConfig().Window,
		DialTimeout:  10 * time.Second,
		WriteTimeout: 30 * time.Second,
		CloseCheck:   20 * time.Millisecond,
		MaxDatagram:  2048,
	}
}

// The RELP schemes.
const (
	schemeRELP    = "relp"
	schemeRELPTLS = "relp+tls"
)

type endpoint struct {
	scheme, hostport, host string
}

func (e endpoint) relp() bool { return e.scheme == schemeRELP || e.scheme == schemeRELPTLS }

func (e endpoint) tls() bool { return e.scheme == "tls" || e.scheme == schemeRELPTLS }

func parseAddress(s string) (endpoint, error) {
	u, err := url.Parse(s)
	if err != nil {
		return endpoint{}, fmt.Errorf("Address %q: %w", s, err)
	}
	switch u.Scheme {
	case "tcp", "tls", "udp", schemeRELP, schemeRELPTLS:
	default:
		return endpoint{}, fmt.Errorf("Address %q: want tcp://, tls://, udp://, relp:// or relp+tls://host:port", s)
	}
	if u.Path != "" || u.RawQuery != "" || u.User != nil {
		return endpoint{}, fmt.Errorf("Address %q: want only scheme://host:port", s)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return endpoint{}, fmt.Errorf("Address %q: want scheme://host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return endpoint{}, fmt.Errorf("Address %q: bad port", s)
	}
	return endpoint{scheme: u.Scheme, hostport: u.Host, host: host}, nil
}

// Validate reports every problem with the settings at once.
func (c Config) Validate() error {
	var errs []error
	ep, err := parseAddress(c.Address)
	if err != nil {
		errs = append(errs, err)
	}
	switch c.Framing {
	case FramingOctetCounting:
	case FramingLF:
		if ep.scheme == "tls" {
			errs = append(errs, errors.New("Framing lf: TLS syslog (RFC 5425) requires octet-counting"))
		}
	default:
		errs = append(errs, fmt.Errorf("Framing %q: want %q or %q", c.Framing, FramingOctetCounting, FramingLF))
	}
	if ep.tls() {
		if err := c.TLS.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("TLS: %w", err))
		}
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, errors.New("DialTimeout must be positive"))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, errors.New("WriteTimeout must be positive"))
	}
	if c.CloseCheck < 0 || c.CloseCheck > 5*time.Second {
		errs = append(errs, errors.New("CloseCheck must be between 0 and 5s"))
	}
	if c.Window < relp.MinWindow || c.Window > relp.MaxWindow {
		errs = append(errs, fmt.Errorf("Window %d: want %d to %d", c.Window, relp.MinWindow, relp.MaxWindow))
	}
	if c.MaxDatagram < 480 || c.MaxDatagram > 65507 {
		errs = append(errs, fmt.Errorf("MaxDatagram %d: want 480 to 65507", c.MaxDatagram))
	}
	return errors.Join(errs...)
}
