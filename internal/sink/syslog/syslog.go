// Package syslog sends formatted syslog messages over TCP (RFC 6587 octet counting or LF
// framing), TLS (RFC 5425) or UDP (RFC 5426). It keeps one connection open between batches,
// reconnects when the receiver goes away and reports every payload that may not have arrived
// as retryable, so the caller's retries make delivery at-least-once: duplicates are possible,
// silent loss over TCP and TLS is not, within the limits syslog itself sets (see Send).
//
// UDP has no acknowledgement at all: a datagram the network or the receiver drops is lost
// without any error. Prefer TLS.
//
// relp:// and relp+tls:// addresses send each message as one RELP transaction (package relp):
// a message counts as delivered only when the receiver answered it 200, which closes the gap
// TCP and TLS leave. Prefer relp+tls:// where the collector is rsyslog.
package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/sink"
	"github.com/defender-siem/forwarder/internal/sink/relp"
)

var _ sink.Sink = (*Client)(nil)

// flushSize is how much framed data is buffered before a write.
const flushSize = 64 << 10

// Client is a syslog destination. It is safe for concurrent use; batches are sent one at a
// time over one connection.
type Client struct {
	cfg  Config
	ep   endpoint
	tls  *tls.Config
	log  *slog.Logger
	lf   bool
	mu   sync.Mutex
	conn net.Conn
	buf  []byte
	done bool
	// relp sends instead when Address is relp:// or relp+tls://.
	relp *relp.Client
}

// New validates cfg and returns a client. It does not connect: the first Send does.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("syslog sink: %w", err)
	}
	ep, _ := parseAddress(cfg.Address)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg, ep: ep, log: logger.With("sink", "syslog", "address", cfg.Address), lf: cfg.Framing == FramingLF && ep.scheme == "tcp"}
	if ep.tls() {
		tc, err := cfg.TLS.Build()
		if err != nil {
			return nil, fmt.Errorf("syslog sink: TLS: %w", err)
		}
		if tc.ServerName == "" {
			tc.ServerName = ep.host
		}
		c.tls = tc
	}
	if ep.relp() {
		rc := relp.DefaultConfig()
		rc.Address = ep.hostport
		rc.TLS = c.tls
		rc.Window = cfg.Window
		rc.DialTimeout = cfg.DialTimeout
		rc.WriteTimeout = cfg.WriteTimeout
		rc.AckTimeout = cfg.WriteTimeout
		client, err := relp.New(rc, logger)
		if err != nil {
			return nil, fmt.Errorf("syslog sink: %w", err)
		}
		c.relp = client
	}
	return c, nil
}

// Send writes every payload as one syslog message and returns one error per payload.
//
// TCP and TLS give no acknowledgement, and a write to a connection the receiver has already
// closed succeeds locally. So Send checks the connection before writing (a receiver that
// closed or reset it is noticed, and Send reconnects) and, for CloseCheck after writing, waits
// for a close or reset. Any failure marks the whole batch retryable, since any part of it may
// be lost. A receiver that dies after that wait can still lose the last batch's tail: that is
// the limit of syslog without an application acknowledgement (RELP).
//
// Over relp:// and relp+tls:// every payload is one transaction and nil means the receiver
// answered it 200 (see relp.Client.Send).
func (c *Client) Send(ctx context.Context, payloads [][]byte) []error {
	if c.relp != nil {
		return c.relp.Send(ctx, payloads)
	}
	errs := make([]error, len(payloads))
	if len(payloads) == 0 {
		return errs
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		fill(errs, sink.Retryable(sink.ReasonUnreachable, 0, errors.New("syslog: client closed")))
		return errs
	}
	if err := ctx.Err(); err != nil {
		fill(errs, c.classify(err))
		return errs
	}
	if c.ep.scheme == "udp" {
		c.sendUDP(ctx, payloads, errs)
		return errs
	}
	c.sendStream(ctx, payloads, errs)
	return errs
}

// WholeBatch is true for TCP, TLS and UDP, where Send can only tell a batch as a whole was
// written, and false for RELP, which acknowledges every message.
func (c *Client) WholeBatch() bool { return c.relp == nil }

// Close closes the connection (TLS sends close_notify; RELP ends its session with close).
func (c *Client) Close() error {
	if c.relp != nil {
		return c.relp.Close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	return c.drop()
}

func (c *Client) drop() error {
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	return err
}

func fill(errs []error, err error) {
	for i := range errs {
		if errs[i] == nil {
			errs[i] = err
		}
	}
}

func (c *Client) sendStream(ctx context.Context, payloads [][]byte, errs []error) {
	if c.conn != nil {
		if err := c.stillOpen(); err != nil {
			c.log.Warn("syslog receiver closed the connection; reconnecting", "err", err.Error())
			_ = c.drop()
		}
	}
	if err := c.connect(ctx); err != nil {
		fill(errs, err)
		return
	}
	deadline := time.Now().Add(c.cfg.WriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn := c.conn
	if err := conn.SetWriteDeadline(deadline); err != nil {
		c.fail(errs, err)
		return
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()

	buf := c.buf[:0]
	for i, p := range payloads {
		if len(p) == 0 {
			// Octet counting cannot frame an empty message and LF framing would send a blank line.
			errs[i] = sink.Permanent(sink.ReasonRejected, errors.New("syslog: empty message"))
			continue
		}
		buf = c.appendFrame(buf, p)
		if len(buf) >= flushSize {
			if _, err := conn.Write(buf); err != nil {
				c.buf = buf[:0]
				c.fail(errs, c.writeErr(ctx, err))
				return
			}
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		if _, err := conn.Write(buf); err != nil {
			c.buf = buf[:0]
			c.fail(errs, c.writeErr(ctx, err))
			return
		}
	}
	if cap(buf) <= 4*flushSize {
		c.buf = buf[:0]
	}
	if c.cfg.CloseCheck > 0 {
		if err := c.peerGone(c.cfg.CloseCheck); err != nil {
			c.fail(errs, fmt.Errorf("syslog: the receiver closed the connection after the batch was written: %w", err))
		}
	}
}

// writeErr prefers the context's error when the context ended the write.
func (c *Client) writeErr(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%w (%w)", ctxErr, err)
	}
	return err
}

// fail drops the connection and gives every payload not already failed the error.
func (c *Client) fail(errs []error, err error) {
	_ = c.drop()
	fill(errs, c.classify(err))
}

func (c *Client) appendFrame(buf, p []byte) []byte {
	if !c.lf {
		buf = strconv.AppendInt(buf, int64(len(p)), 10)
		buf = append(buf, ' ')
		return append(buf, p...)
	}
	start := len(buf)
	buf = append(buf, p...)
	for i := start; i < len(buf); i++ {
		if b := buf[i]; b == '\n' || b == '\r' || b == 0 {
			buf[i] = ' '
		}
	}
	return append(buf, '\n')
}

type peekResult int

const (
	peekUnknown peekResult = iota // cannot tell without reading
	peekEmpty                     // open, nothing to read
	peekData                      // bytes are waiting (a TLS alert, say)
	peekClosed                    // the receiver closed or reset the connection
)

// stillOpen reports how the receiver ended the connection, nil if it looks open. It peeks at
// the socket without waiting when it can, and otherwise reads for a millisecond.
func (c *Client) stillOpen() error {
	raw := c.conn
	if tc, ok := raw.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	switch res, err := peek(raw); res {
	case peekEmpty:
		return nil
	case peekClosed:
		return err
	}
	return c.peerGone(time.Millisecond)
}

// peerGone reads for up to wait and reports how the receiver ended the connection, nil if
// it is still open. A syslog receiver never sends data, so anything read is discarded.
func (c *Client) peerGone(wait time.Duration) error {
	conn := c.conn
	if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return err
	}
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	var b [256]byte
	for {
		_, err := conn.Read(b[:])
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	}
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{Timeout: c.cfg.DialTimeout, KeepAlive: 30 * time.Second}
	switch c.ep.scheme {
	case "tls":
		td := &tls.Dialer{NetDialer: d, Config: c.tls}
		return td.DialContext(ctx, "tcp", c.ep.hostport)
	case "udp":
		return d.DialContext(ctx, "udp", c.ep.hostport)
	}
	return d.DialContext(ctx, "tcp", c.ep.hostport)
}

// connect dials when there is no connection, returning the failure classified.
func (c *Client) connect(ctx context.Context) error {
	if c.conn != nil {
		return nil
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return c.classify(err)
	}
	c.conn = conn
	return nil
}

func (c *Client) sendUDP(ctx context.Context, payloads [][]byte, errs []error) {
	for i, p := range payloads {
		if err := ctx.Err(); err != nil {
			fill(errs, c.classify(err))
			return
		}
		if len(p) == 0 {
			errs[i] = sink.Permanent(sink.ReasonRejected, errors.New("syslog: empty message"))
			continue
		}
		if err := c.connect(ctx); err != nil {
			fill(errs, err)
			return
		}
		c.buf = Truncate(c.buf[:0], p, c.cfg.MaxDatagram)
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout))
		if _, err := c.conn.Write(c.buf); err != nil {
			// A refused datagram (an ICMP error from an earlier one) shows up here.
			_ = c.drop()
			errs[i] = c.classify(err)
		}
	}
}

// Truncate appends p to dst cut to at most max bytes. A longer message ends with
// TruncationMarker, cut on a UTF-8 character boundary and never between a backslash and the
// character it escapes (SD values and CEF use backslash escapes).
func Truncate(dst, p []byte, max int) []byte {
	if len(p) <= max {
		return append(dst, p...)
	}
	cut := max - len(TruncationMarker)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(p[cut]) {
		cut--
	}
	n := 0
	for i := cut - 1; i >= 0 && p[i] == '\\'; i-- {
		n++
	}
	if n%2 == 1 {
		cut--
	}
	dst = append(dst, p[:cut]...)
	return append(dst, TruncationMarker...)
}

// classify turns a transport error into a sink error with the shared reading (sink.Transport):
// certificate and handshake problems are permanent, since trying again cannot help until the
// settings change; timeouts and everything else are retryable.
func (c *Client) classify(err error) error {
	msg := "syslog %s: "
	if hint := sink.TransportHint(err); hint != "" {
		msg += hint + ": "
	}
	return sink.Transport(context.Background(), fmt.Errorf(msg+"%w", c.ep.hostport, err))
}
