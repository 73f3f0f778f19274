package servicenow

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/defender-siem/forwarder/internal/sink/tlsconf"
)

// The OAuth grants the client can use at /oauth_token.do.
const (
	GrantPassword          = "password"
	GrantClientCredentials = "client_credentials"
)

// Config holds the transport settings.
type Config struct {
	// URL is the instance, https://<instance>.service-now.com.
	URL string
	// Table is the table incidents live in: incident (default), or sn_si_incident for
	// Security Incident Response.
	Table string
	// Username and Password authenticate with basic auth, or with the OAuth password grant
	// when ClientID is set.
	Username string
	Password string
	// ClientID and ClientSecret switch to OAuth at /oauth_token.do.
	ClientID     string
	ClientSecret string
	// GrantType is GrantPassword (default) or GrantClientCredentials, which the instance
	// accepts only when its admin has enabled it.
	GrantType string
	// ResolveState is the state a resolved or dismissed alert moves its incident to;
	// default "6" (Resolved; closing, 7, needs itil_admin).
	ResolveState string
	// InProgressState is the state of an incident whose alert Defender marks InProgress;
	// default "2".
	InProgressState string
	// NewState is the state an incident is created in for an active alert; default "1".
	NewState string
	// Reopen moves a resolved incident to ReopenState (default "2") when Defender makes its
	// alert active again. Off by default: a work note records the change instead.
	Reopen      bool
	ReopenState string
	// ClosedStates are final states the forwarder never changes; default "7" (Closed) and
	// "8" (Canceled).
	ClosedStates []string
	// DuplicateCloseCode is the close code of an incident resolved as the duplicate of
	// another for the same alert (two instances raced); default "Duplicate".
	DuplicateCloseCode string
	// Concurrency is the number of alerts synchronised at once; default 4.
	Concurrency int
	// RequestTimeout bounds one HTTP request; default 30 s.
	RequestTimeout time.Duration
	// TLS holds certificate settings; verification is on by default.
	TLS tlsconf.Config
	// UserAgent is sent with every request.
	UserAgent string
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Table:              "incident",
		GrantType:          GrantPassword,
		ResolveState:       "6",
		InProgressState:    "2",
		NewState:           "1",
		ReopenState:        "2",
		ClosedStates:       []string{"7", "8"},
		DuplicateCloseCode: "Duplicate",
		Concurrency:        4,
		RequestTimeout:     30 * time.Second,
		UserAgent:          "defender-siem-forwarder",
	}
}

var tableRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// OAuth reports whether the client authenticates with OAuth rather than basic auth.
func (c Config) OAuth() bool { return c.ClientID != "" }

// Validate reports every problem with the settings at once.
func (c Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		errs = append(errs, errors.New("servicenow: Url is required: https://<instance>.service-now.com"))
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		errs = append(errs, fmt.Errorf("servicenow: Url %q: want https://<instance>.service-now.com", c.URL))
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, errors.New("servicenow: Url must not carry credentials, a query or a fragment: use Username/Password or ClientId/ClientSecret"))
	}
	if !tableRE.MatchString(c.Table) {
		errs = append(errs, fmt.Errorf("servicenow: Table %q: want a table name such as incident or sn_si_incident", c.Table))
	}
	switch {
	case c.OAuth():
		if c.ClientSecret == "" {
			errs = append(errs, errors.New("servicenow: ClientSecret is required with ClientId (OAuth)"))
		}
		switch c.GrantType {
		case GrantPassword:
			if c.Username == "" || c.Password == "" {
				errs = append(errs, errors.New("servicenow: the OAuth password grant needs Username and Password (or set GrantType=client_credentials)"))
			}
		case GrantClientCredentials:
		default:
			errs = append(errs, fmt.Errorf("servicenow: GrantType %q: want password or client_credentials", c.GrantType))
		}
	case c.ClientSecret != "":
		errs = append(errs, errors.New("servicenow: ClientSecret is set without ClientId"))
	case c.Username == "" || c.Password == "":
		errs = append(errs, errors.New("servicenow: credentials are required: Username and Password (basic auth), or ClientId and ClientSecret (OAuth)"))
	}
	for _, s := range []struct{ name, v string }{
		{"ResolveState", c.ResolveState}, {"InProgressState", c.InProgressState}, {"NewState", c.NewState}, {"ReopenState", c.ReopenState},
	} {
		if !validValue(s.v) {
			errs = append(errs, fmt.Errorf("servicenow: %s %q: want a state value such as 6", s.name, s.v))
		}
	}
	for _, s := range c.ClosedStates {
		if !validValue(s) {
			errs = append(errs, fmt.Errorf("servicenow: ClosedStates %q: want state values such as 7,8", s))
		}
	}
	if slices.Contains(c.ClosedStates, c.ResolveState) {
		errs = append(errs, fmt.Errorf("servicenow: ResolveState %q is one of ClosedStates, which are never changed: an incident could then never reopen", c.ResolveState))
	}
	if strings.TrimSpace(c.DuplicateCloseCode) == "" {
		errs = append(errs, errors.New("servicenow: DuplicateCloseCode is required"))
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		errs = append(errs, fmt.Errorf("servicenow: Concurrency %d: want 1 to 64", c.Concurrency))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, errors.New("servicenow: RequestTimeout must be positive"))
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("servicenow: %w", err))
	}
	return errors.Join(errs...)
}

// validValue accepts what can go into an encoded query or a field unharmed.
func validValue(v string) bool {
	return v != "" && !strings.ContainsAny(v, "^,\r\n")
}
