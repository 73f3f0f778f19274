// Package graph reads Microsoft Graph Security API alerts (GET /v1.0/security/alerts_v2) and
// feeds them to the pipeline: the client (token through azidentity, paging by @odata.nextLink,
// the Prefer header that makes Defender for Cloud alerts visible, 429 handling) and the poll
// that keeps a per-tenant watermark so every alert version is delivered, once in normal
// operation.
package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// DefaultBaseURL is the public cloud's Graph endpoint.
const DefaultBaseURL = "https://graph.microsoft.com"

// PreferHeader makes Graph return evolvable enum members added after unknownFutureValue,
// among them serviceSource microsoftDefenderForCloud: without it Defender for Cloud alerts
// do not come back as such.
const PreferHeader = "include-unknown-enum-members"

// ClientOptions configure a Client.
type ClientOptions struct {
	// BaseURL is the Graph endpoint (DefaultBaseURL, or a national cloud's).
	BaseURL string
	// Scope is the token scope; BaseURL + "/.default" when empty.
	Scope string
	// Sources are the serviceSource values asked for.
	Sources []string
	// PageSize is $top; 0 leaves the page size to Graph.
	PageSize int
	// PageAttempts is how often one page is asked for before the poll gives up on it (it is
	// never skipped: the poll stops and the watermark stays). Default 4.
	PageAttempts int
	// RetryDelay is the first wait between attempts at a page, doubling each time. Default 1s.
	RetryDelay time.Duration
	// HTTP carries the requests; http.DefaultClient when nil.
	HTTP *http.Client
}

// Client lists alerts of one tenant.
type Client struct {
	cred azcore.TokenCredential
	opts ClientOptions
}

// NewClient returns a client that authenticates with cred.
func NewClient(cred azcore.TokenCredential, opts ClientOptions) *Client {
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	if opts.Scope == "" {
		opts.Scope = opts.BaseURL + "/.default"
	}
	if opts.PageAttempts <= 0 {
		opts.PageAttempts = 4
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = time.Second
	}
	if opts.HTTP == nil {
		opts.HTTP = http.DefaultClient
	}
	return &Client{cred: cred, opts: opts}
}

// ThrottledError is a 429 (or 503) from Graph: the poll stops and tries again at its next run.
type ThrottledError struct {
	Status     int
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("graph: throttled (HTTP %d), retry after %s", e.Status, e.RetryAfter)
}

// PageError is a page that could not be read after every attempt.
type PageError struct {
	Page     int
	Attempts int
	Err      error
}

func (e *PageError) Error() string {
	return fmt.Sprintf("graph: page %d not read after %d attempts: %v", e.Page, e.Attempts, e.Err)
}
func (e *PageError) Unwrap() error { return e.Err }

// Filter is the $filter for alerts of sources updated at or after since.
func Filter(sources []string, since time.Time) string {
	var b strings.Builder
	if len(sources) > 1 {
		b.WriteByte('(')
	}
	for i, s := range sources {
		if i > 0 {
			b.WriteString(" or ")
		}
		// OData doubles a quote inside a string literal.
		b.WriteString("serviceSource eq '" + strings.ReplaceAll(s, "'", "''") + "'")
	}
	if len(sources) > 1 {
		b.WriteByte(')')
	}
	if len(sources) > 0 {
		b.WriteString(" and ")
	}
	b.WriteString("lastUpdateDateTime ge " + since.UTC().Format("2006-01-02T15:04:05.0000000Z"))
	return b.String()
}

// FirstURL is the first page's URL for alerts updated at or after since.
func (c *Client) FirstURL(since time.Time) string {
	q := url.Values{}
	q.Set("$filter", Filter(c.opts.Sources, since))
	if c.opts.PageSize > 0 {
		q.Set("$top", strconv.Itoa(c.opts.PageSize))
	}
	// url.Values encodes spaces as '+', which OData reads as a space in the query too, but
	// %20 is what Graph's own examples send.
	return c.opts.BaseURL + "/v1.0/security/alerts_v2?" + strings.ReplaceAll(q.Encode(), "+", "%20")
}

type page struct {
	Value    []json.RawMessage `json:"value"`
	NextLink string            `json:"@odata.nextLink"`
}

// Alerts calls fn with each page's alerts, in order, following @odata.nextLink (as an opaque
// URL) to the end. A failed page is asked for again; a throttled one ends the listing with a
// *ThrottledError; fn's error ends it too. Nothing is ever skipped: either every page reached
// fn or Alerts returns an error.
func (c *Client) Alerts(ctx context.Context, since time.Time, fn func(alerts []json.RawMessage) error) error {
	next := c.FirstURL(since)
	for n := 1; next != ""; n++ {
		p, err := c.page(ctx, next, n)
		if err != nil {
			return err
		}
		if err := fn(p.Value); err != nil {
			return err
		}
		if p.NextLink != "" && !sameOrigin(p.NextLink, c.opts.BaseURL) {
			// The bearer token must not leave for another host.
			return &PageError{Page: n + 1, Attempts: 0, Err: fmt.Errorf("nextLink points away from %s", c.opts.BaseURL)}
		}
		next = p.NextLink
	}
	return nil
}

func sameOrigin(link, base string) bool {
	l, err1 := url.Parse(link)
	b, err2 := url.Parse(base)
	return err1 == nil && err2 == nil && strings.EqualFold(l.Scheme, b.Scheme) && strings.EqualFold(l.Host, b.Host)
}

func (c *Client) page(ctx context.Context, u string, n int) (page, error) {
	delay := c.opts.RetryDelay
	var last error
	for attempt := 1; attempt <= c.opts.PageAttempts; attempt++ {
		p, err := c.get(ctx, u)
		if err == nil {
			return p, nil
		}
		var th *ThrottledError
		if errors.As(err, &th) || ctx.Err() != nil {
			return page{}, err
		}
		last = err
		if attempt == c.opts.PageAttempts {
			break
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return page{}, &PageError{Page: n, Attempts: attempt, Err: ctx.Err()}
		case <-t.C:
		}
		delay *= 2
	}
	return page{}, &PageError{Page: n, Attempts: c.opts.PageAttempts, Err: last}
}

// maxPageBytes bounds one page's body: a page of alerts with their evidence is a few MB.
const maxPageBytes = 64 << 20

func (c *Client) get(ctx context.Context, u string) (page, error) {
	tok, err := c.cred.GetToken(ctx, tokenOpts(c))
	if err != nil {
		return page{}, fmt.Errorf("graph: token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return page{}, fmt.Errorf("graph: request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Prefer", PreferHeader)
	req.Header.Set("Accept", "application/json")
	resp, err := c.opts.HTTP.Do(req)
	if err != nil {
		return page{}, fmt.Errorf("graph: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBytes+1))
	if err != nil {
		return page{}, fmt.Errorf("graph: reading page: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return page{}, &ThrottledError{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	case resp.StatusCode != http.StatusOK:
		return page{}, fmt.Errorf("graph: HTTP %d: %s", resp.StatusCode, snippet(body))
	case len(body) > maxPageBytes:
		return page{}, fmt.Errorf("graph: page larger than %d bytes", maxPageBytes)
	}
	var p page
	if err := json.Unmarshal(body, &p); err != nil {
		return page{}, fmt.Errorf("graph: undecodable page: %w", err)
	}
	return p, nil
}

// retryAfter reads Retry-After in seconds or as an HTTP date; absent or unreadable is 0.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// snippet is the start of an error body, for messages: Graph error bodies name the problem
// and never carry the token.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func tokenOpts(c *Client) policy.TokenRequestOptions {
	return policy.TokenRequestOptions{Scopes: []string{c.opts.Scope}}
}
