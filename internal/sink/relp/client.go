package relp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/defender-siem/forwarder/internal/sink"
)

var _ sink.Sink = (*Client)(nil)

// Config holds a RELP client's settings.
type Config struct {
	// Address is the receiver's host:port.
	Address string
	// TLS, when not nil, wraps the connection in TLS straight after connecting.
	TLS *tls.Config
	// Window is how many transactions may be unanswered at once. Default 128, librelp's.
	Window int
	// DialTimeout bounds connecting, the TLS handshake and the open transaction.
	DialTimeout time.Duration
	// WriteTimeout bounds one write of frames.
	WriteTimeout time.Duration
	// AckTimeout is how long the client waits without any answer while transactions are open
	// before it counts the session as broken.
	AckTimeout time.Duration
	// Software is the relp_software offer: name, version and URL, comma-separated.
	Software string
}

// Limits of the settings.
const (
	MinWindow = 1
	MaxWindow = 10000
)

// DefaultConfig returns the defaults: window 128, 10 s to connect, 30 s to write and to wait
// for an answer.
func DefaultConfig() Config {
	return Config{
		Window:       128,
		DialTimeout:  10 * time.Second,
		WriteTimeout: 30 * time.Second,
		AckTimeout:   30 * time.Second,
		Software:     "defender-siem-forwarder,1,https://github.com/defender-siem/forwarder",
	}
}

// Validate reports every problem with the settings at once.
func (c Config) Validate() error {
	var errs []error
	if host, port, err := net.SplitHostPort(c.Address); err != nil || host == "" {
		errs = append(errs, fmt.Errorf("address %q: want host:port", c.Address))
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		errs = append(errs, fmt.Errorf("address %q: bad port", c.Address))
	}
	if c.Window < MinWindow || c.Window > MaxWindow {
		errs = append(errs, fmt.Errorf("Window %d: want %d to %d", c.Window, MinWindow, MaxWindow))
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, errors.New("DialTimeout must be positive"))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, errors.New("WriteTimeout must be positive"))
	}
	if c.AckTimeout <= 0 {
		errs = append(errs, errors.New("AckTimeout must be positive"))
	}
	if _, err := AppendOffers(nil, []Offer{{Name: "relp_software", Values: splitComma(c.Software)}}); err != nil || c.Software == "" {
		errs = append(errs, fmt.Errorf("Software %q: want name[,version[,url]] without LF", c.Software))
	}
	return errors.Join(errs...)
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// Client is one RELP destination. It is safe for concurrent use; batches are sent one at a
// time over one session.
type Client struct {
	cfg    Config
	log    *slog.Logger
	offers []byte

	mu   sync.Mutex
	sess *session
	buf  []byte
	done bool

	// firstTxnr is the transaction number a new session starts at; 1 except in tests of the
	// wrap from MaxTxnr to 1.
	firstTxnr int
}

// New validates cfg and returns a client. It does not connect: the first Send does.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("relp: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	offers, err := AppendOffers(nil, []Offer{
		{Name: "relp_version", Values: []string{"0"}},
		{Name: "commands", Values: []string{cmdSyslog}},
		{Name: "relp_software", Values: splitComma(cfg.Software)},
	})
	if err != nil {
		return nil, fmt.Errorf("relp: %w", err)
	}
	return &Client{cfg: cfg, log: logger.With("sink", "relp", "address", cfg.Address), offers: offers, firstTxnr: 1}, nil
}

// Send sends every payload as one syslog transaction and returns one error per payload, nil
// only for those the receiver answered 200. A session that breaks (a reset, a close, a
// serverclose hint, no answer within AckTimeout) is replaced by a new one and its unanswered
// payloads are sent again there, as long as each session moves something forward; what is
// still unanswered when ctx ends, or when a new session cannot be had, fails as retryable.
// When a new session breaks before any answer, its first payload is sent alone on the next
// one; if that breaks too, that payload fails alone (retryably) and the rest go on, so one
// message the receiver cannot take (imrelp with oversizeMode="abort") does not hold the batch.
// An answer other than 200 fails its payload permanently, with the receiver's text.
func (c *Client) Send(ctx context.Context, payloads [][]byte) []error {
	errs := make([]error, len(payloads))
	todo := make([]int, 0, len(payloads))
	for i, p := range payloads {
		switch {
		case len(p) == 0:
			errs[i] = sink.Permanent(sink.ReasonRejected, errors.New("relp: empty message"))
			continue
		case len(p) > MaxTxnr:
			errs[i] = sink.Permanent(sink.ReasonTooLarge, fmt.Errorf("relp: a message of %d octets is longer than a frame can carry", len(p)))
			continue
		}
		todo = append(todo, i)
	}
	if len(todo) == 0 {
		return errs
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		failAll(errs, todo, sink.Retryable(sink.ReasonUnreachable, 0, errors.New("relp: client closed")))
		return errs
	}
	// probe sends the first message alone on the next session; probed says that was tried
	// already in this Send, which bounds the new sessions a Send opens without progress to three.
	probe, probed := false, false
	for len(todo) > 0 {
		if err := ctx.Err(); err != nil {
			failAll(errs, todo, c.classify(err))
			return errs
		}
		carried := c.sess != nil
		if carried && !c.sess.usable() {
			c.log.Info("relp session ended while idle; opening a new one", "err", errString(c.sess.cause()))
			c.drop()
			carried = false
		}
		if c.sess == nil {
			s, err := c.open(ctx)
			if err != nil {
				failAll(errs, todo, c.classify(err))
				return errs
			}
			c.sess = s
		}
		send := todo
		if probe {
			send = todo[:1]
		}
		answered, rest, err := c.run(ctx, c.sess, payloads, send, errs)
		if probe {
			rest = append(rest, todo[1:]...)
			probe = false
		}
		todo = rest
		if err == nil {
			continue
		}
		c.drop()
		if ctxErr := ctx.Err(); ctxErr != nil {
			failAll(errs, todo, c.classify(fmt.Errorf("%w (%d transactions unanswered: %w)", ctxErr, len(todo), err)))
			return errs
		}
		// A receiver that went silent is not helped by probing; one that closed may be.
		if answered == 0 && !carried && !errors.Is(err, context.DeadlineExceeded) {
			switch {
			case len(send) == 1 && len(todo) > 1 && probed:
				// The message sent alone broke a new session too: it is the likely cause (a
				// receiver that closes on an oversized message, say). It fails alone, retryably,
				// and the rest go on.
				errs[todo[0]] = c.classify(fmt.Errorf("the receiver closed the session on this message, sent alone: %w", err))
				todo = todo[1:]
				continue
			case len(todo) > 1 && !probed:
				// A new session that broke before any answer: send its first message alone on
				// the next one, to tell a poison message from a receiver that is down.
				probe, probed = true, true
				c.log.Warn("relp session broke before any answer; sending the first message alone to find out why", "err", err.Error())
				continue
			}
		}
		if answered == 0 && !carried {
			// The receiver is not taking messages now; the caller's backoff decides when to try
			// again.
			failAll(errs, todo, c.classify(err))
			return errs
		}
		c.log.Warn("relp session broke; sending the unanswered messages again on a new session", "err", err.Error(), "unanswered", len(todo))
	}
	return errs
}

// Close ends the session with a close transaction when it is idle, then closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	s := c.sess
	if s == nil {
		return nil
	}
	c.sess = nil
	if s.usable() {
		s.closeTxn(c.cfg.DialTimeout)
	}
	return s.shut()
}

func failAll(errs []error, idx []int, err error) {
	for _, i := range idx {
		errs[i] = err
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (c *Client) drop() {
	if c.sess != nil {
		_ = c.sess.shut()
		c.sess = nil
	}
}

// inflight is one transaction waiting for its answer.
type inflight struct {
	txnr int
	idx  int
}

// run sends todo over s within the window and collects the answers. It returns nil when every
// payload of todo is answered; otherwise the number answered on this session, the payloads
// still unanswered in their original order, and why the session cannot go on.
func (c *Client) run(ctx context.Context, s *session, payloads [][]byte, todo []int, errs []error) (answered int, rest []int, err error) {
	stop := context.AfterFunc(ctx, func() { _ = s.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	window := make([]inflight, 0, min(c.cfg.Window, len(todo)))
	pos := 0
	unanswered := func() []int {
		out := make([]int, 0, len(window)+len(todo)-pos)
		for _, t := range window {
			out = append(out, t.idx)
		}
		return append(out, todo[pos:]...)
	}
	// broken ends the run: answers that arrived before the end still count.
	broken := func(why error) (int, []int, error) {
		if n, perr := c.settle(s, &window, errs); perr == nil {
			answered += n
		}
		return answered, unanswered(), why
	}
	timer := time.NewTimer(c.cfg.AckTimeout)
	defer timer.Stop()
	for pos < len(todo) || len(window) > 0 {
		buf := c.buf[:0]
		for len(window) < c.cfg.Window && pos < len(todo) && !s.closing() {
			t := s.nextTxnr()
			// Send checked the length, and t and the command are valid, so this cannot fail.
			buf, _ = AppendFrame(buf, Frame{Txnr: t, Command: cmdSyslog, Data: payloads[todo[pos]]})
			window = append(window, inflight{txnr: t, idx: todo[pos]})
			pos++
		}
		if len(buf) > 0 {
			err := s.write(buf, c.cfg.WriteTimeout)
			if cap(buf) <= 1<<20 {
				c.buf = buf[:0]
			}
			if err != nil {
				return broken(fmt.Errorf("relp: write: %w", err))
			}
		}
		if len(window) == 0 {
			if pos < len(todo) {
				return answered, unanswered(), errors.New("relp: the receiver announced it is closing the session (serverclose)")
			}
			break
		}
		select {
		case <-s.notify:
		case <-s.dead:
			return broken(s.cause())
		case <-timer.C:
			return broken(fmt.Errorf("relp: no answer within %s with %d transactions open: %w", c.cfg.AckTimeout, len(window), context.DeadlineExceeded))
		case <-ctx.Done():
			return broken(ctx.Err())
		}
		n, perr := c.settle(s, &window, errs)
		answered += n
		if perr != nil {
			return answered, unanswered(), perr
		}
		if n > 0 {
			timer.Reset(c.cfg.AckTimeout)
		}
	}
	return answered, nil, nil
}

// settle matches the answers the reader queued to the open transactions and records each
// payload's outcome. An answer to no open transaction breaks the session: the peer and the
// client no longer agree on what was sent.
func (c *Client) settle(s *session, window *[]inflight, errs []error) (int, error) {
	n := 0
	for _, a := range s.take() {
		w := *window
		i := 0
		for i < len(w) && w[i].txnr != a.txnr {
			i++
		}
		if i == len(w) {
			return n, fmt.Errorf("%w: answer for transaction %d, which is not open", ErrFrame, a.txnr)
		}
		idx := w[i].idx
		if i == 0 {
			*window = w[1:] // the usual case: servers answer in order
		} else {
			*window = append(w[:i], w[i+1:]...)
		}
		n++
		if a.rsp.OK() {
			errs[idx] = nil
			continue
		}
		errs[idx] = sink.Permanent(sink.ReasonRejected, fmt.Errorf("relp %s: the receiver answered %d %q", c.cfg.Address, a.rsp.Status, a.rsp.Text))
	}
	return n, nil
}

// open connects, starts TLS when configured, and runs the open transaction.
func (c *Client) open(ctx context.Context) (*session, error) {
	d := &net.Dialer{Timeout: c.cfg.DialTimeout, KeepAlive: 30 * time.Second}
	var (
		conn net.Conn
		err  error
		// asked says the server asked for a client certificate, and whether one was sent.
		asked, sent bool
	)
	if c.cfg.TLS != nil {
		tc := c.cfg.TLS.Clone()
		certs := tc.Certificates
		tc.Certificates = nil
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked = true
			if len(certs) == 0 {
				return &tls.Certificate{}, nil
			}
			sent = true
			return &certs[0], nil
		}
		conn, err = (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(ctx, "tcp", c.cfg.Address)
	} else {
		conn, err = d.DialContext(ctx, "tcp", c.cfg.Address)
	}
	if err != nil {
		return nil, err
	}
	s, err := c.handshake(ctx, conn)
	if err != nil && asked && errors.Is(err, errClosedAtOpen) {
		// With TLS 1.3 a server that rejects the client's certificate just closes after the
		// handshake (imrelp does, without an alert): say what most likely happened.
		if !sent {
			return nil, sink.Permanent(sink.ReasonUnauthorized, fmt.Errorf(
				"relp %s: the receiver asks for a TLS client certificate and none is configured (set ClientCert and ClientKey): %w", c.cfg.Address, err))
		}
		return nil, fmt.Errorf("the receiver closed the session right after the TLS handshake; it may not accept the client certificate (for imrelp see tls.authMode and tls.permittedPeer): %w", err)
	}
	return s, err
}

// errClosedAtOpen marks a session that ended before the open was answered.
var errClosedAtOpen = errors.New("the receiver closed the connection before answering open")

// handshake runs the open transaction on a new connection.
func (c *Client) handshake(ctx context.Context, conn net.Conn) (*session, error) {
	s := newSession(conn, c.firstTxnr)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	t := s.nextTxnr()
	frame, err := AppendFrame(nil, Frame{Txnr: t, Command: cmdOpen, Data: c.offers})
	if err != nil {
		_ = s.shut()
		return nil, err
	}
	if err := s.write(frame, c.cfg.DialTimeout); err != nil {
		// With TLS 1.3 a server that refuses the client's certificate says so only after the
		// handshake, in an alert the reader may already hold: that says more than the broken
		// pipe the write saw.
		if rerr := s.alert(time.Second); rerr != nil {
			err = rerr
		} else if s.ended() {
			err = fmt.Errorf("%w (%w)", errClosedAtOpen, err)
		}
		_ = s.shut()
		return nil, fmt.Errorf("relp: open: %w", err)
	}
	timer := time.NewTimer(c.cfg.DialTimeout)
	defer timer.Stop()
	for {
		select {
		case <-s.notify:
		case <-s.dead:
		case <-timer.C:
			_ = s.shut()
			return nil, fmt.Errorf("relp: open: no answer within %s: %w", c.cfg.DialTimeout, context.DeadlineExceeded)
		case <-ctx.Done():
			_ = s.shut()
			return nil, ctx.Err()
		}
		as := s.take()
		if len(as) == 0 {
			select {
			case <-s.dead:
				_ = s.shut()
				return nil, fmt.Errorf("relp: open: %w (%w)", errClosedAtOpen, s.cause())
			default:
				continue
			}
		}
		a := as[0]
		switch {
		case len(as) > 1 || a.txnr != t:
			err = fmt.Errorf("%w: answer for transaction %d while only the open (%d) is outstanding", ErrFrame, a.txnr, t)
		case !a.rsp.OK():
			err = fmt.Errorf("relp: the receiver refused the session: %d %q", a.rsp.Status, a.rsp.Text)
		default:
			err = checkOffers(a.rsp.Data)
		}
		if err != nil {
			_ = s.shut()
			return nil, err
		}
		return s, nil
	}
}

// checkOffers checks the offers the server accepted: the specification says a session needs a
// relp_version offer in the answer, and the syslog command may be used only if offered back.
func checkOffers(data []byte) error {
	offers, err := ParseOffers(data)
	if err != nil {
		return err
	}
	v, ok := offer(offers, "relp_version")
	if !ok || len(v) != 1 {
		return fmt.Errorf("%w: the receiver's open answer has no relp_version", ErrFrame)
	}
	if n, err := strconv.Atoi(v[0]); err != nil || n < 0 {
		return fmt.Errorf("%w: the receiver's relp_version %q is not a version number", ErrFrame, v[0])
	}
	cmds, _ := offer(offers, "commands")
	for _, cmd := range cmds {
		if cmd == cmdSyslog {
			return nil
		}
	}
	return errors.New("relp: the receiver does not offer the syslog command")
}

// classify turns a transport error into a sink error with the shared reading (sink.Transport):
// certificate and handshake problems are permanent, since trying again cannot help until the
// settings change; timeouts and everything else are retryable.
func (c *Client) classify(err error) error {
	var se *sink.Error
	if errors.As(err, &se) {
		return err
	}
	msg := "relp %s: "
	if hint := sink.TransportHint(err); hint != "" {
		msg += hint + ": "
	}
	return sink.Transport(context.Background(), fmt.Errorf(msg+"%w", c.cfg.Address, err))
}

// answer is one rsp frame the reader took off the wire.
type answer struct {
	txnr int
	rsp  Response
}

// session is one RELP connection. A reader goroutine takes every frame off the wire as it
// arrives, so answers never pile up in the socket while the client writes (the specification's
// advice against a stalled server), and a close or a serverclose hint is seen at once.
type session struct {
	conn net.Conn
	next int // the next transaction number; used by the Send goroutine only

	mu       sync.Mutex
	answers  []answer
	err      error
	shutting bool
	notify   chan struct{} // a token whenever answers or a hint arrive
	dead     chan struct{} // closed when the reader stops; err says why
	hint     bool          // serverclose seen
}

func newSession(conn net.Conn, first int) *session {
	s := &session{conn: conn, next: first, notify: make(chan struct{}, 1), dead: make(chan struct{})}
	go s.read()
	return s
}

func (s *session) nextTxnr() int {
	t := s.next
	if s.next >= MaxTxnr {
		s.next = 1
	} else {
		s.next++
	}
	return t
}

func (s *session) write(b []byte, timeout time.Duration) error {
	if err := s.conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := s.conn.Write(b)
	return err
}

func (s *session) read() {
	defer close(s.dead)
	r := bufio.NewReaderSize(s.conn, 4096)
	for {
		f, err := ReadFrame(r, DefaultMaxData)
		if err == nil {
			err = s.handle(f)
		}
		if err != nil {
			s.mu.Lock()
			if s.shutting {
				err = errors.New("relp: session closed by the client")
			} else if s.hint {
				err = fmt.Errorf("relp: the receiver closed the session after a serverclose hint: %w", err)
			} else {
				err = fmt.Errorf("relp: session broke: %w", err)
			}
			s.err = err
			s.mu.Unlock()
			_ = s.conn.Close()
			return
		}
	}
}

func (s *session) handle(f Frame) error {
	switch {
	case f.Txnr == 0 && f.Command == hintServerClose:
		s.mu.Lock()
		s.hint = true
		s.mu.Unlock()
	case f.Txnr == 0:
		// Other hints are advisory and may be ignored.
		return nil
	case f.Command == cmdRsp:
		rsp, err := ParseResponse(f.Data)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.answers = append(s.answers, answer{txnr: f.Txnr, rsp: rsp})
		s.mu.Unlock()
	default:
		return fmt.Errorf("%w: the receiver sent command %q, only rsp and hints may come from a server", ErrFrame, f.Command)
	}
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

func (s *session) take() []answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.answers
	s.answers = nil
	return a
}

func (s *session) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hint
}

// usable reports whether new transactions may start on the session.
func (s *session) usable() bool {
	select {
	case <-s.dead:
		return false
	default:
	}
	return !s.closing()
}

func (s *session) cause() error {
	<-s.dead
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// ended reports whether the reader has stopped.
func (s *session) ended() bool {
	select {
	case <-s.dead:
		return true
	default:
		return false
	}
}

// alert waits up to wait for the reader to stop and returns its error if that is a TLS alert
// from the peer.
func (s *session) alert(wait time.Duration) error {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-s.dead:
	case <-timer.C:
		return nil
	}
	var ae tls.AlertError
	if err := s.cause(); errors.As(err, &ae) {
		return err
	}
	return nil
}

// closeTxn runs the close transaction, waiting at most wait for its answer.
func (s *session) closeTxn(wait time.Duration) {
	frame, err := AppendFrame(nil, Frame{Txnr: s.nextTxnr(), Command: cmdClose})
	if err != nil || s.write(frame, wait) != nil {
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-s.notify:
	case <-s.dead:
	case <-timer.C:
	}
}

// shut closes the connection and waits for the reader to stop.
func (s *session) shut() error {
	s.mu.Lock()
	s.shutting = true
	s.mu.Unlock()
	err := s.conn.Close()
	<-s.dead
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
