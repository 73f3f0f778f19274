package servicenow

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
	"github.com/defender-siem/forwarder/internal/dev/snowsim"
	snformat "github.com/defender-siem/forwarder/internal/format/servicenow"
	"github.com/defender-siem/forwarder/internal/sink"
)

const (
	user     = "svc-defender"
	password = "Pa55word-never-shown-7f3a"
	clientID = "c0ffee0123456789"
	secret   = "client-secret-never-shown-91b2"
)

func startSim(t *testing.T, opts snowsim.Options) *snowsim.Server {
	t.Helper()
	if opts.User == "" {
		opts.User, opts.Password = user, password
	}
	s, err := snowsim.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func newClient(t *testing.T, s *snowsim.Server, mutate func(*Config)) *Client {
	t.Helper()
	cfg := DefaultConfig()
	cfg.URL = s.URL
	cfg.Username, cfg.Password = user, password
	cfg.RequestTimeout = 10 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// doc renders the sample alert with id, status and severity as the formatter does.
func doc(t *testing.T, id, status string, sev alert.Severity, extra string) []byte {
	t.Helper()
	rec := alerttest.ElasticAlert(t)
	rec.Alert.SystemAlertID, rec.ID = id, id
	rec.Alert.Status, rec.Status = status, status
	rec.Alert.Severity, rec.Severity = sev, sev
	rec.Alert.Description += extra
	f, err := snformat.New(snformat.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.Format(nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func send(t *testing.T, c *Client, payloads ...[]byte) []error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := c.Send(ctx, payloads)
	if len(errs) != len(payloads) {
		t.Fatalf("%d errors for %d payloads", len(errs), len(payloads))
	}
	return errs
}

func mustSend(t *testing.T, c *Client, payloads ...[]byte) {
	t.Helper()
	for i, err := range send(t, c, payloads...) {
		if err != nil {
			t.Fatalf("payload %d: %v", i, err)
		}
	}
}

// only returns the one incident that carries id, failing unless there is exactly one.
func only(t *testing.T, s *snowsim.Server, id string) map[string]string {
	t.Helper()
	got := s.Find("incident", "correlation_id", id)
	if len(got) != 1 {
		t.Fatalf("%d incidents carry correlation_id %s, want 1: %v", len(got), id, got)
	}
	return got[0]
}

func TestLifecycle(t *testing.T) {
	s := startSim(t, snowsim.Options{})
	c := newClient(t, s, nil)
	const id = "2517184898549829577_lifecycle"

	mustSend(t, c, doc(t, id, "Active", alert.SeverityHigh, ""))
	inc := only(t, s, id)
	for k, want := range map[string]string{"state": "1", "impact": "1", "urgency": "1", "priority": "1",
		"correlation_display": "Microsoft Defender for Cloud", "short_description": "[SAMPLE ALERT] Login from a suspicious IP"} {
		if inc[k] != want {
			t.Errorf("created %s = %q, want %q", k, inc[k], want)
		}
	}
	if !strings.HasPrefix(inc["description"], "Microsoft Defender for Cloud alert\nSeverity: High\nStatus: Active\n") {
		t.Errorf("description starts %.80q", inc["description"])
	}

	step := func(name string, payload []byte, wantWrites int) map[string]string {
		t.Helper()
		before := s.Writes()
		mustSend(t, c, payload)
		if got := s.Writes() - before; got != wantWrites {
			t.Errorf("%s: %d writes, want %d", name, got, wantWrites)
		}
		return only(t, s, id)
	}
	step("the same export again", doc(t, id, "Active", alert.SeverityHigh, ""), 0)
	inc = step("a changed description", doc(t, id, "Active", alert.SeverityHigh, " More."), 1)
	if !strings.Contains(inc["description"], "suspicious activity. More.") {
		t.Error("the description was not updated")
	}
	inc = step("InProgress", doc(t, id, "InProgress", alert.SeverityHigh, " More."), 1)
	if inc["state"] != "2" {
		t.Errorf("InProgress: state %q, want 2", inc["state"])
	}
	inc = step("Resolved", doc(t, id, "Resolved", alert.SeverityHigh, " More."), 1)
	if inc["state"] != "6" || inc["close_code"] != "Solution provided" || !strings.HasPrefix(inc["close_notes"], "Resolved in Microsoft Defender for Cloud.") {
		t.Errorf("Resolved: state %q close_code %q close_notes %q", inc["state"], inc["close_code"], inc["close_notes"])
	}
	step("the weekly snapshot", doc(t, id, "Resolved", alert.SeverityHigh, " More."), 0)
	inc = step("Active again, Reopen off", doc(t, id, "Active", alert.SeverityHigh, " More."), 1)
	if inc["state"] != "6" {
		t.Errorf("reactivated with Reopen off: state %q, want 6", inc["state"])
	}
	notes := s.WorkNotes(inc["sys_id"])
	want := []string{
		"Created by the Defender for Cloud forwarder for alert " + id + " (status Active).",
		"Microsoft Defender for Cloud: status changed from Active to InProgress.",
		"Microsoft Defender for Cloud: status changed from InProgress to Resolved.",
		"Microsoft Defender for Cloud: status changed from Resolved to Active. The incident stays resolved (Reopen is off).",
	}
	if strings.Join(notes, "\n") != strings.Join(want, "\n") {
		t.Errorf("work notes:\n%s\nwant:\n%s", strings.Join(notes, "\n"), strings.Join(want, "\n"))
	}

	reopen := newClient(t, s, func(c *Config) { c.Reopen = true })
	mustSend(t, reopen, doc(t, id, "Resolved", alert.SeverityHigh, " More."))
	if got := only(t, s, id)["state"]; got != "6" {
		t.Fatalf("state %q after Resolved, want 6", got)
	}
	mustSend(t, reopen, doc(t, id, "Dismissed", alert.SeverityHigh, " More."))
	mustSend(t, reopen, doc(t, id, "Active", alert.SeverityHigh, " More."))
	if got := only(t, s, id)["state"]; got != "2" {
		t.Errorf("reactivated with Reopen on: state %q, want 2", got)
	}
	if n := len(s.Records("incident")); n != 1 {
		t.Errorf("%d incidents, want 1", n)
	}
}

// What the SOC does by hand survives re-exports that do not change what it concerns.
func TestSOCChangesSurvive(t *testing.T) {
	s := startSim(t, snowsim.Options{})
	c := newClient(t, s, nil)
	const id = "soc-edits"
	mustSend(t, c, doc(t, id, "Active", alert.SeverityMedium, ""))
	inc := only(t, s, id)
	s.Update("incident", inc["sys_id"], map[string]string{"impact": "1", "state": "6", "close_code": "Solution provided", "close_notes": "fixed by hand"})
	before := s.Writes()
	mustSend(t, c, doc(t, id, "Active", alert.SeverityMedium, ""))
	if s.Writes() != before {
		t.Error("an unchanged re-export wrote to an incident the SOC had changed")
	}
	inc = only(t, s, id)
	if inc["impact"] != "1" || inc["state"] != "6" {
		t.Errorf("impact %q state %q: the SOC's changes were undone", inc["impact"], inc["state"])
	}
	mustSend(t, c, doc(t, id, "Active", alert.SeverityLow, ""))
	if inc = only(t, s, id); inc["impact"] != "3" || inc["urgency"] != "3" {
		t.Errorf("severity Low: impact %q urgency %q, want 3 3", inc["impact"], inc["urgency"])
	}
	// Closed is final.
	s.Update("incident", inc["sys_id"], map[string]string{"state": "7"})
	mustSend(t, c, doc(t, id, "Resolved", alert.SeverityLow, ""))
	if inc = only(t, s, id); inc["state"] != "7" {
		t.Errorf("a closed incident moved to state %q", inc["state"])
	}
}

func TestSameAlertTwiceInOneSend(t *testing.T) {
	s := startSim(t, snowsim.Options{})
	c := newClient(t, s, nil)
	errs := send(t, c, doc(t, "twice", "Active", alert.SeverityHigh, ""), doc(t, "other", "Active", alert.SeverityLow, ""),
		doc(t, "twice", "Resolved", alert.SeverityHigh, ""), doc(t, "twice", "Resolved", alert.SeverityHigh, ""))
	for i, err := range errs {
		if err != nil {
			t.Fatalf("payload %d: %v", i, err)
		}
	}
	if inc := only(t, s, "twice"); inc["state"] != "6" {
		t.Errorf("state %q, want 6: the later export was applied first", inc["state"])
	}
	only(t, s, "other")
}

// Once an export of an alert fails and may be retried, the later exports of the same alert
// wait for the retry rather than being applied before it.
func TestLaterExportsWaitForAFailedOne(t *testing.T) {
	s := startSim(t, snowsim.Options{})
	c := newClient(t, s, func(c *Config) { c.Concurrency = 1 })
	s.FailNext(503)
	errs := send(t, c, doc(t, "order", "Active", alert.SeverityHigh, ""), doc(t, "order", "Resolved", alert.SeverityHigh, ""))
	for i, err := range errs {
		if err == nil || sink.IsPermanent(err) {
			t.Errorf("payload %d: %v, want a retryable error", i, err)
		}
	}
	if n := len(s.Records("incident")); n != 0 {
		t.Errorf("%d incidents after the failed attempt", n)
	}
}

// Two processes deliver the same new alert at the same moment: both find nothing and both
// create; the second lookup heals it to one incident.
func TestRaceBetweenInstancesHeals(t *testing.T) {
	s := startSim(t, snowsim.Options{})
	a, b := newClient(t, s, nil), newClient(t, s, nil)
	const id = "raced"
	s.HoldLookups(2, 20*time.Second)
	var wg sync.WaitGroup
	var errA, errB []error
	wg.Go(func() { errA = send(t, a, doc(t, id, "Active", alert.SeverityHigh, "")) })
	wg.Go(func() { errB = send(t, b, doc(t, id, "Active", alert.SeverityHigh, "")) })
	wg.Wait()
	if errA[0] != nil || errB[0] != nil {
		t.Fatalf("errors %v %v", errA[0], errB[0])
	}
	all := s.Records("incident")
	if len(all) != 2 {
		t.Fatalf("%d incidents, want 2 (the race must really have happened)", len(all))
	}
	kept := only(t, s, id)
	if kept["number"] != all[0]["number"] {
		t.Errorf("kept %s, want the older %s", kept["number"], all[0]["number"])
	}
	dup := all[1]
	if dup["correlation_id"] != "" || dup["state"] != "6" || dup["close_code"] != "Duplicate" || !strings.Contains(dup["close_notes"], "Duplicate of "+kept["number"]) {
		t.Errorf("the newer incident: correlation_id %q state %q close_code %q close_notes %q", dup["correlation_id"], dup["state"], dup["close_code"], dup["close_notes"])
	}
	// Both go on updating the one that was kept.
	mustSend(t, b, doc(t, id, "Resolved", alert.SeverityHigh, ""))
	if got := only(t, s, id); got["state"] != "6" || got["number"] != kept["number"] {
		t.Errorf("after Resolved: %s state %q", got["number"], got["state"])
	}
}

// Duplicates left by an instance that stopped before healing are healed by the next lookup.
func TestExistingDuplicatesHeal(t *testing.T) {
	s := startSim(t, snowsim.Options{})
	c := newClient(t, s, nil)
	first := s.Insert("incident", map[string]string{"correlation_id": "left", "short_description": "x"})
	s.Insert("incident", map[string]string{"correlation_id": "left", "short_description": "x"})
	mustSend(t, c, doc(t, "left", "Active", alert.SeverityHigh, ""))
	if got := only(t, s, "left"); got["sys_id"] != first {
		t.Errorf("kept %s, want the older", got["number"])
	}
}

func TestIgnoredQueryIsAConfigurationError(t *testing.T) {
	t.Run("records without correlation_id", func(t *testing.T) {
		s := startSim(t, snowsim.Options{DropColumns: []string{"correlation_id"}})
		s.Insert("incident", map[string]string{"short_description": "someone else's"})
		c := newClient(t, s, nil)
		err := send(t, c, doc(t, "ignored", "Active", alert.SeverityHigh, ""))[0]
		if !sink.IsPermanent(err) || !strings.Contains(err.Error(), "ignored the query") {
			t.Fatalf("%v, want a permanent error saying the query was ignored", err)
		}
		if s.Writes() != 0 {
			t.Errorf("%d writes after an ignored query", s.Writes())
		}
	})
	t.Run("an empty table", func(t *testing.T) {
		s := startSim(t, snowsim.Options{DropColumns: []string{"correlation_id"}})
		c := newClient(t, s, nil)
		err := send(t, c, doc(t, "ignored", "Active", alert.SeverityHigh, ""))[0]
		if !sink.IsPermanent(err) || !strings.Contains(err.Error(), "does not keep correlation_id") {
			t.Fatalf("%v, want a permanent error saying the table does not keep the id", err)
		}
		// The next export does not add another.
		_ = send(t, c, doc(t, "ignored", "Active", alert.SeverityHigh, ""))
		if n := len(s.Records("incident")); n != 1 {
			t.Errorf("%d incidents, want the 1 that showed the problem", n)
		}
	})
	t.Run("too many matches", func(t *testing.T) {
		s := startSim(t, snowsim.Options{})
		for range maxMatches + 1 {
			s.Insert("incident", map[string]string{"correlation_id": "many"})
		}
		c := newClient(t, s, nil)
		err := send(t, c, doc(t, "many", "Active", alert.SeverityHigh, ""))[0]
		if !sink.IsPermanent(err) || !strings.Contains(err.Error(), "matches 6 records") {
			t.Fatalf("%v, want a permanent error", err)
		}
	})
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		arrange   func(*snowsim.Server)
		mutate    func(*Config)
		permanent bool
		reason    sink.Reason
		says      string
		wait      time.Duration
	}{
		{name: "429", arrange: func(s *snowsim.Server) { s.Throttle(1, 7) }, reason: sink.ReasonThrottled, says: "Rate limit of 10 requests per hour", wait: 7 * time.Second},
		{name: "503", arrange: func(s *snowsim.Server) { s.FailNext(503) }, reason: sink.ReasonThrottled, says: "HTTP 503"},
		{name: "401", arrange: func(s *snowsim.Server) { s.RejectCredentials(true) }, permanent: true, reason: sink.ReasonUnauthorized, says: "User Not Authenticated: Required to provide Auth information"},
		{name: "403 ACL", arrange: func(s *snowsim.Server) { s.ReadOnly(true) }, permanent: true, reason: sink.ReasonUnauthorized, says: "ACL Exception"},
		{name: "404", arrange: func(s *snowsim.Server) { s.FailNext(404) }, permanent: true, reason: sink.ReasonRejected, says: "HTTP 404"},
		{name: "missing table", mutate: func(c *Config) { c.Table = "sn_si_incident" }, permanent: true, reason: sink.ReasonRejected, says: "Invalid table sn_si_incident"},
		{name: "wrong password", mutate: func(c *Config) { c.Password = "wrong-password-also-secret" }, permanent: true, reason: sink.ReasonUnauthorized, says: "HTTP 401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t, snowsim.Options{})
			if tc.arrange != nil {
				tc.arrange(s)
			}
			c := newClient(t, s, tc.mutate)
			err := send(t, c, doc(t, "errors", "Active", alert.SeverityHigh, ""))[0]
			if err == nil {
				t.Fatal("no error")
			}
			if sink.IsPermanent(err) != tc.permanent || sink.ReasonOf(err) != tc.reason {
				t.Errorf("%v: permanent %v reason %s, want %v %s", err, sink.IsPermanent(err), sink.ReasonOf(err), tc.permanent, tc.reason)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%v does not say %q", err, tc.says)
			}
			if ra, _ := sink.RetryAfter(err); ra != tc.wait {
				t.Errorf("Retry-After %v, want %v", ra, tc.wait)
			}
			for _, secret := range []string{password, "wrong-password-also-secret"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows the password: %v", err)
				}
			}
		})
	}
}

func TestDataPolicyRefusal(t *testing.T) {
	s := startSim(t, snowsim.Options{})
	c := newClient(t, s, nil)
	// A document that resolves without close fields, as a misconfigured formatter would write.
	bad := []byte(`{"correlation_id":"policy","kind":"alert","status":"Resolved","severity":"High","fields":{"short_description":"x","description":"d"},"priority":{"impact":"1","urgency":"1"},"create":{"correlation_id":"policy"}}`)
	err := send(t, c, bad)[0]
	if !sink.IsPermanent(err) || !strings.Contains(err.Error(), "Data Policy Exception") {
		t.Fatalf("%v, want a permanent data-policy refusal", err)
	}
	if err := send(t, c, []byte(`{"not":"a document"}`))[0]; !sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonRejected {
		t.Errorf("a bad payload: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	s := startSim(t, snowsim.Options{})
	c := newClient(t, s, nil)
	s.Close()
	err := send(t, c, doc(t, "down", "Active", alert.SeverityHigh, ""))[0]
	if err == nil || sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonUnreachable {
		t.Errorf("%v, want a retryable unreachable", err)
	}
}

func tokenRequests(s *snowsim.Server) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Path == "/oauth_token.do" {
			n++
		}
	}
	return n
}

func TestOAuth(t *testing.T) {
	t.Run("password grant, token cached and renewed", func(t *testing.T) {
		s := startSim(t, snowsim.Options{ClientID: clientID, ClientSecret: secret, TokenTTL: time.Hour})
		c := newClient(t, s, func(c *Config) { c.ClientID, c.ClientSecret = clientID, secret })
		clock := time.Now()
		var mu sync.Mutex
		c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
		for i := range 3 {
			mustSend(t, c, doc(t, fmt.Sprintf("oauth-%d", i), "Active", alert.SeverityHigh, ""))
		}
		if n := tokenRequests(s); n != 1 {
			t.Errorf("%d token requests for three alerts, want 1", n)
		}
		mu.Lock()
		clock = clock.Add(59*time.Minute + 30*time.Second) // inside the last minute of the token's life
		mu.Unlock()
		mustSend(t, c, doc(t, "oauth-3", "Active", alert.SeverityHigh, ""))
		if n := tokenRequests(s); n != 2 {
			t.Errorf("%d token requests, want 2: the token was not renewed before it expired", n)
		}
		s.ExpireTokens() // revoked early: a 401, a new token, the request again
		mustSend(t, c, doc(t, "oauth-4", "Active", alert.SeverityHigh, ""))
		if n := tokenRequests(s); n != 3 {
			t.Errorf("%d token requests, want 3", n)
		}
		for _, r := range s.Requests() {
			if r.Path != "/oauth_token.do" && strings.Contains(r.Query.Encode(), secret) {
				t.Error("the client secret travelled in a Table API request")
			}
		}
	})
	t.Run("client_credentials disabled on the instance", func(t *testing.T) {
		s := startSim(t, snowsim.Options{ClientID: clientID, ClientSecret: secret})
		c := newClient(t, s, func(c *Config) {
			c.ClientID, c.ClientSecret, c.GrantType, c.Username, c.Password = clientID, secret, GrantClientCredentials, "", ""
		})
		err := send(t, c, doc(t, "cc", "Active", alert.SeverityHigh, ""))[0]
		if !sink.IsPermanent(err) || sink.ReasonOf(err) != sink.ReasonUnauthorized || !strings.Contains(err.Error(), "access_denied") {
			t.Fatalf("%v, want a permanent unauthorized naming access_denied", err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error shows the secret: %v", err)
		}
	})
	t.Run("client_credentials enabled", func(t *testing.T) {
		s := startSim(t, snowsim.Options{ClientID: clientID, ClientSecret: secret, ClientCredentials: true})
		c := newClient(t, s, func(c *Config) {
			c.ClientID, c.ClientSecret, c.GrantType, c.Username, c.Password = clientID, secret, GrantClientCredentials, "", ""
		})
		mustSend(t, c, doc(t, "cc", "Active", alert.SeverityHigh, ""))
		only(t, s, "cc")
	})
}

func TestTLS(t *testing.T) {
	s := startSim(t, snowsim.Options{TLS: true})
	err := send(t, newClient(t, s, nil), doc(t, "tls", "Active", alert.SeverityHigh, ""))[0]
	if !sink.IsPermanent(err) || !strings.Contains(err.Error(), "TLS certificate is not trusted") {
		t.Fatalf("an untrusted certificate: %v", err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, s.CertificatePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	mustSend(t, newClient(t, s, func(c *Config) { c.TLS.CAFile = ca }), doc(t, "tls", "Active", alert.SeverityHigh, ""))
	only(t, s, "tls")
}

func TestValidate(t *testing.T) {
	c := DefaultConfig()
	c.URL = "ftp://x"
	c.Table = "Incident"
	c.ClientSecret = "s"
	c.ResolveState = "7"
	c.Concurrency = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"Url \"ftp://x\"", "Table \"Incident\"", "ClientSecret is set without ClientId", "ResolveState \"7\" is one of ClosedStates", "Concurrency 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	c = DefaultConfig()
	c.URL, c.ClientID, c.ClientSecret = "https://x.service-now.com", "id", "s"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "password grant needs Username and Password") {
		t.Errorf("password grant without a user: %v", err)
	}
	c.GrantType = GrantClientCredentials
	if err := c.Validate(); err != nil {
		t.Errorf("client_credentials: %v", err)
	}
	c = DefaultConfig()
	c.URL = "https://x.service-now.com"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "credentials are required") {
		t.Errorf("no credentials: %v", err)
	}
}

// Groups and callers may be configured by name; the incident gets their sys_ids, and an
// unknown name is a refusal that names it.
func TestNamesResolved(t *testing.T) {
	const group, caller = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	s := startSim(t, snowsim.Options{Groups: map[string]string{"SOC Tier 1": group}, Users: map[string]string{"defender.bot": caller}})
	c := newClient(t, s, nil)
	f, err := snformat.New(func() snformat.Config {
		cfg := snformat.DefaultConfig()
		cfg.AssignmentGroup, cfg.CallerID = "SOC Tier 1", "defender.bot"
		return cfg
	}())
	if err != nil {
		t.Fatal(err)
	}
	render := func(id string) []byte {
		rec := alerttest.ElasticAlert(t)
		rec.Alert.SystemAlertID = id
		b, err := f.Format(nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	mustSend(t, c, render("named-1"), render("named-2"))
	for _, id := range []string{"named-1", "named-2"} {
		if inc := only(t, s, id); inc["assignment_group"] != group || inc["caller_id"] != caller || inc["state"] != "1" {
			t.Errorf("%s: assignment_group %q caller_id %q state %q", id, inc["assignment_group"], inc["caller_id"], inc["state"])
		}
	}
	lookups := 0
	for _, r := range s.Requests() {
		if strings.Contains(r.Path, "/sys_user") {
			lookups++
		}
	}
	if lookups != 2 {
		t.Errorf("%d name lookups for two incidents, want 2 (one per name, then cached)", lookups)
	}
	f2, _ := snformat.New(func() snformat.Config {
		cfg := snformat.DefaultConfig()
		cfg.AssignmentGroup = "No Such Group"
		return cfg
	}())
	rec := alerttest.ElasticAlert(t)
	rec.Alert.SystemAlertID = "named-3"
	b, _ := f2.Format(nil, rec)
	if err := send(t, c, b)[0]; !sink.IsPermanent(err) || !strings.Contains(err.Error(), `no sys_user_group has name "No Such Group"`) {
		t.Errorf("an unknown group: %v", err)
	}
}

// A recommendation opens an incident only while its resource is unhealthy, and closes it
// when the resource is healthy again; an alert first seen resolved still gets its incident.
func TestRecommendationOpensOnlyWhenUnhealthy(t *testing.T) {
	s := startSim(t, snowsim.Options{})
	c := newClient(t, s, nil)
	f, err := snformat.New(snformat.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	rec := alerttest.Assessment(t) // Healthy
	render := func(status string) []byte {
		r := *rec
		r.Status = status
		b, err := f.Format(nil, &r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	id := snformat.RecommendationCorrelationID(rec.ID)
	mustSend(t, c, render("Healthy"))
	if n := len(s.Records("incident")); n != 0 {
		t.Fatalf("%d incidents for a healthy assessment", n)
	}
	mustSend(t, c, render("Unhealthy"))
	if inc := only(t, s, id); inc["state"] != "1" {
		t.Errorf("unhealthy: state %q", inc["state"])
	}
	mustSend(t, c, render("Healthy"))
	if inc := only(t, s, id); inc["state"] != "6" {
		t.Errorf("healthy again: state %q, want 6", inc["state"])
	}
	mustSend(t, c, doc(t, "first-seen-dismissed", "Dismissed", alert.SeverityLow, ""))
	if inc := only(t, s, "first-seen-dismissed"); inc["state"] != "6" || inc["close_code"] != "No resolution provided" {
		t.Errorf("an alert first seen dismissed: state %q close_code %q", inc["state"], inc["close_code"])
	}
}

// Within one process, exports of the same alert wait for each other: concurrent Sends of a
// new alert create one incident, with no duplicate to heal. The instance holds the first
// lookup for a while for a second one, which arrives only if the client does not serialise.
func TestSameAlertSerialisedWithinAProcess(t *testing.T) {
	s := startSim(t, snowsim.Options{})
	c := newClient(t, s, nil)
	s.HoldLookups(2, 500*time.Millisecond)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := send(t, c, doc(t, "serialised", "Active", alert.SeverityHigh, ""))[0]; err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(s.Records("incident")); n != 1 {
		t.Errorf("%d incidents created, want 1: two exports of one alert ran at once", n)
	}
}
