// Package servicenow keeps one ServiceNow incident per Defender for Cloud alert in step with
// the alert, through the Table API. It is the stateful transport behind the servicenow
// destination: for each incident document (internal/format/servicenow) it finds the incident
// by correlation_id, creates it when absent, and otherwise patches only what changed, moving
// it to the resolve state when Defender resolves or dismisses the alert. Nothing is sent for
// a re-export that changes nothing (weekly snapshots, duplicate deliveries).
//
// Two deliveries of the same alert are serialised within the process; across processes, a
// create is followed by a second lookup, and of two incidents for one alert the older wins
// and the newer is resolved as its duplicate, so that a race between instances heals. A
// lookup that returns a record of another alert means the instance ignored the query (it
// drops terms on unknown fields) and is reported as a configuration error, never as found.
//
// It authenticates with basic auth or OAuth (password or client_credentials grant, the token
// cached and renewed before it expires), classifies answers for the caller's retries (429,
// 5xx and transport errors retryable, honouring Retry-After; 401, 403, 404 and other refusals
// permanent, with the instance's error message and detail), and never puts a password,
// secret or token into an error or log.
package servicenow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	redact "github.com/defender-siem/forwarder/internal/secret"
	"github.com/defender-siem/forwarder/internal/sink"
)

// Client synchronises incidents with one ServiceNow table. It is safe for concurrent use.
type Client struct {
	cfg   Config
	hc    *http.Client
	base  string // the instance URL without a trailing slash
	table string // base + /api/now/v2/table/<table>
	tok   *tokenSource
	locks keyedMutex
	// names caches the sys_ids of groups and users configured by name.
	namesMu sync.Mutex
	names   map[string]string
	log     *slog.Logger
	now     func() time.Time
	// secrets are masked in every error text.
	secrets []string
}

var _ sink.Sink = (*Client)(nil)

// New checks cfg and builds the client. logger may be nil.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	base := strings.TrimRight(cfg.URL, "/")
	logger = logger.With("sink", "servicenow", "url", base, "table", cfg.Table)
	tc, err := cfg.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("servicenow: TLS: %w", err)
	}
	if cfg.TLS.InsecureSkipVerify {
		logger.Warn("TLS certificate verification is off for this destination")
	}
	if strings.HasPrefix(base, "http:") {
		logger.Warn("credentials are sent over plain http")
	}
	c := &Client{
		cfg:   cfg,
		base:  base,
		table: base + "/api/now/v2/table/" + cfg.Table,
		log:   logger,
		now:   time.Now,
		names: map[string]string{},
		// An instance that redirects is asking for a login page: the redirect is reported.
		hc: sink.NewHTTPClient(tc, cfg.RequestTimeout, 2*cfg.Concurrency),
	}
	for _, s := range []string{cfg.Password, cfg.ClientSecret} {
		if s != "" {
			c.secrets = append(c.secrets, s)
		}
	}
	if cfg.OAuth() {
		c.tok = &tokenSource{c: c}
	}
	return c, nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// scrub masks credentials, the current access token among them, in s.
func (c *Client) scrub(s string) string {
	if c.tok != nil {
		if t := c.tok.current(); t != "" {
			s = strings.ReplaceAll(s, t, "[REDACTED]")
		}
	}
	return c.scrubSecrets(s)
}

// scrubSecrets masks the configured password and client secret in s.
func (c *Client) scrubSecrets(s string) string {
	for _, v := range c.secrets {
		s = strings.ReplaceAll(s, v, "[REDACTED]")
	}
	return s
}

// maxBody bounds what is read from an answer: a query answers at most a few incidents.
const maxBody = 4 << 20

// response is one answer of the Table API.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one Table API request with credentials and returns the 2xx answer, or the
// classified error. With OAuth, a 401 renews the token once and repeats the request.
func (c *Client) do(ctx context.Context, method, u string, body any) (*response, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, sink.Permanent(sink.ReasonRejected, fmt.Errorf("servicenow: %w", err))
		}
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(raw))
		if err != nil {
			return nil, sink.Permanent(sink.ReasonRejected, fmt.Errorf("servicenow: cannot build a %s request", method))
		}
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.cfg.UserAgent != "" {
			req.Header.Set("User-Agent", c.cfg.UserAgent)
		}
		var token string
		if c.tok != nil {
			if token, err = c.tok.get(ctx); err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+token)
		} else {
			req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return nil, c.transportErr(ctx, method, u, err, c.scrub)
		}
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && c.tok != nil && attempt == 0 {
			// The token may have been revoked or expired early: get a new one, once.
			c.tok.invalidate(token)
			continue
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return nil, c.statusErr(method, u, resp.StatusCode, resp.Header, b, c.scrub)
		}
		if rerr != nil {
			return nil, sink.Retryable(sink.ReasonUnreachable, 0, fmt.Errorf("servicenow: %s %s: reading the answer: %v", method, c.shown(u), rerr))
		}
		return &response{status: resp.StatusCode, header: resp.Header, body: b}, nil
	}
}

// shown is the request path for messages: the instance and table are in the logger, and the
// query is long.
func (c *Client) shown(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Path
	}
	return "?"
}

// statusErr classifies a refusal with the shared reading (sink.HTTPStatus): 429, 503, 408
// and 5xx are worth another attempt (after Retry-After when given); 401 and 403 (credentials,
// ACLs, data policies) and every other 4xx or redirect are permanent.
func (c *Client) statusErr(method, u string, code int, h http.Header, body []byte, scrub func(string) string) error {
	msg := fmt.Errorf("servicenow: %s %s: %s%s", method, c.shown(u), sink.StatusText(code), scrub(errorText(body)))
	return sink.HTTPStatus(code, h, c.now(), msg)
}

// errorText reads the instance's {"error":{"message","detail"}} body, or the OAuth
// {"error","error_description"} one, or else a printable excerpt, as ": …" on one line.
func errorText(body []byte) string {
	var sn struct {
		Error json.RawMessage `json:"error"`
		Desc  string          `json:"error_description"`
	}
	var s string
	if json.Unmarshal(body, &sn) == nil && len(sn.Error) > 0 {
		var e struct {
			Message string `json:"message"`
			Detail  any    `json:"detail"`
		}
		var plain string
		switch {
		case json.Unmarshal(sn.Error, &e) == nil:
			s = e.Message
			if d, ok := e.Detail.(string); ok && d != "" {
				s += ": " + d
			}
		case json.Unmarshal(sn.Error, &plain) == nil:
			s = plain
			if sn.Desc != "" {
				s += ": " + sn.Desc
			}
		}
	} else {
		s = string(body)
	}
	s = sink.Snippet([]byte(s))
	if s == "" {
		return ""
	}
	return ": " + s
}

// transportErr classifies a failure to get an answer with the shared reading (sink.Transport),
// naming the request without its query and never the credentials.
func (c *Client) transportErr(ctx context.Context, method, u string, err error, scrub func(string) string) error {
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err
	}
	msg := "servicenow: " + method + " " + c.shown(u) + ": "
	if hint := sink.TransportHint(cause); hint != "" {
		msg += hint + ": "
	}
	return sink.Transport(ctx, &redact.Error{Msg: msg + scrub(cause.Error()), Cause: cause})
}

// tokenSource holds the OAuth access token and renews it before it expires.
type tokenSource struct {
	c   *Client
	mu  sync.Mutex
	tok string
	exp time.Time // when to renew: a little before the token expires
}

func (t *tokenSource) current() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tok
}

func (t *tokenSource) invalidate(tok string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok == tok {
		t.tok = ""
	}
}

// get returns a valid token, asking /oauth_token.do for one when there is none or it is
// about to expire. Callers wait for one request rather than each asking.
func (t *tokenSource) get(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok != "" && t.c.now().Before(t.exp) {
		return t.tok, nil
	}
	cfg := t.c.cfg
	form := url.Values{"grant_type": {cfg.GrantType}, "client_id": {cfg.ClientID}, "client_secret": {cfg.ClientSecret}}
	if cfg.GrantType == GrantPassword {
		form.Set("username", cfg.Username)
		form.Set("password", cfg.Password)
	}
	u := t.c.base + "/oauth_token.do"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return "", sink.Permanent(sink.ReasonRejected, errors.New("servicenow: cannot build the token request"))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := t.c.hc.Do(req)
	if err != nil {
		return "", t.c.transportErr(ctx, http.MethodPost, u, err, t.c.scrubSecrets)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusBadRequest {
		return "", sink.Permanent(sink.ReasonUnauthorized, fmt.Errorf("servicenow: POST /oauth_token.do (%s grant): HTTP %d%s: check ClientId, ClientSecret and the account", cfg.GrantType, resp.StatusCode, t.c.scrubSecrets(errorText(b))))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", t.c.statusErr(http.MethodPost, u, resp.StatusCode, resp.Header, b, t.c.scrubSecrets)
	}
	var ans struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	if err := json.Unmarshal(b, &ans); err != nil || ans.AccessToken == "" {
		return "", sink.Permanent(sink.ReasonUnauthorized, errors.New("servicenow: /oauth_token.do answered without an access_token"))
	}
	secs, err := strconv.ParseFloat(strings.Trim(string(ans.ExpiresIn), `"`), 64)
	if err != nil || secs <= 0 {
		secs = 300
	}
	life := time.Duration(secs * float64(time.Second))
	// Renew a minute early, or a tenth of the lifetime for short-lived tokens, so that a
	// request never carries a token that expires on the way.
	t.tok, t.exp = ans.AccessToken, t.c.now().Add(life-min(time.Minute, life/10))
	return t.tok, nil
}

// keyedMutex serialises work per key.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{}
	refs int
}

// lock waits for key, or for ctx to end.
func (k *keyedMutex) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
