package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/defender-siem/forwarder/internal/dev/graphsim"
)

func startSim(t *testing.T) *graphsim.Server {
	t.Helper()
	s, err := graphsim.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	s.AddApp("tenant-a", "app-a", "s3cret")
	return s
}

func newTestClient(t *testing.T, s *graphsim.Server, opts ClientOptions) *Client {
	t.Helper()
	cred, err := NewCredential(Auth{TenantID: "tenant-a", ClientID: "app-a", ClientSecret: "s3cret", AuthorityHost: s.URL, DisableInstanceDiscovery: true}, s.Client())
	if err != nil {
		t.Fatal(err)
	}
	opts.BaseURL, opts.HTTP = s.URL, s.Client()
	if opts.Sources == nil {
		opts.Sources = []string{graphsim.MDC}
	}
	opts.RetryDelay = 10 * time.Millisecond
	return NewClient(cred, opts)
}

func collect(t *testing.T, c *Client, since time.Time) ([]string, error) {
	t.Helper()
	var ids []string
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.Alerts(ctx, since, func(alerts []json.RawMessage) error {
		for _, a := range alerts {
			var v struct{ ID string }
			if err := json.Unmarshal(a, &v); err != nil {
				return err
			}
			ids = append(ids, v.ID)
		}
		return nil
	})
	return ids, err
}

func putN(s *graphsim.Server, tenant string, n int, source string) {
	for i := range n {
		s.Put(tenant, graphsim.Alert(tenant, fmt.Sprintf("dc%03d_%03d", i, i), source, "alert", "high", "new"))
	}
}

func TestPagingToTheEnd(t *testing.T) {
	s := startSim(t)
	putN(s, "tenant-a", 7, graphsim.MDC)
	c := newTestClient(t, s, ClientOptions{PageSize: 3})
	ids, err := collect(t, c, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 7 {
		t.Fatalf("got %d alerts %v, want 7", len(ids), ids)
	}
	reqs := s.Requests()
	if len(reqs) != 3 {
		t.Errorf("%d requests, want 3 pages", len(reqs))
	}
	// azidentity caches the token: one for the whole listing, not one per page.
	if n := s.TokensIssued(); n != 1 {
		t.Errorf("%d tokens issued, want 1", n)
	}
	for _, r := range reqs {
		if r.Prefer != PreferHeader {
			t.Errorf("page %d sent Prefer %q", r.Page, r.Prefer)
		}
	}
	if !strings.Contains(reqs[0].Query, "serviceSource%20eq%20%27microsoftDefenderForCloud%27%20and%20lastUpdateDateTime%20ge%20") {
		t.Errorf("first query %s", reqs[0].Query)
	}
}

// The imitation hides Defender for Cloud alerts from a request without the Prefer header;
// this shows the rule is there (so that the test above proves the client sends it).
func TestPreferRuleOfTheImitation(t *testing.T) {
	s := startSim(t)
	putN(s, "tenant-a", 2, graphsim.MDC)
	c := newTestClient(t, s, ClientOptions{})
	tok, err := c.cred.GetToken(context.Background(), tokenOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, c.FirstURL(time.Now().Add(-time.Hour)), nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p page
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if len(p.Value) != 0 {
		t.Errorf("without Prefer: %d alerts, want none", len(p.Value))
	}
	ids, err := collect(t, c, time.Now().Add(-time.Hour))
	if err != nil || len(ids) != 2 {
		t.Errorf("with Prefer: %v, %v", ids, err)
	}
}

func TestSourcesAndSince(t *testing.T) {
	s := startSim(t)
	putN(s, "tenant-a", 2, graphsim.MDC)
	s.Put("tenant-a", graphsim.Alert("tenant-a", "ep_1", "microsoftDefenderForEndpoint", "mde", "low", "new"))
	old := graphsim.Alert("tenant-a", "old_1", graphsim.MDC, "old", "low", "new")
	old["lastUpdateDateTime"] = time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339Nano)
	s.Put("tenant-a", old)
	for _, tc := range []struct {
		sources []string
		want    int
	}{
		{[]string{graphsim.MDC}, 2},
		{[]string{graphsim.MDC, "microsoftDefenderForEndpoint"}, 3},
	} {
		ids, err := collect(t, newTestClient(t, s, ClientOptions{Sources: tc.sources}), time.Now().Add(-time.Hour))
		if err != nil || len(ids) != tc.want {
			t.Errorf("sources %v: %v, %v; want %d", tc.sources, ids, err, tc.want)
		}
	}
}

func TestThrottledStopsWithRetryAfter(t *testing.T) {
	s := startSim(t)
	putN(s, "tenant-a", 5, graphsim.MDC)
	c := newTestClient(t, s, ClientOptions{PageSize: 2})
	s.OnPage(func(_ string, p int) {
		if p == 1 {
			s.Throttle(1, "17")
		}
	})
	ids, err := collect(t, c, time.Now().Add(-time.Hour))
	var th *ThrottledError
	if !errors.As(err, &th) || th.RetryAfter != 17*time.Second || th.Status != 429 {
		t.Fatalf("err = %v, want throttled with Retry-After 17s", err)
	}
	if len(ids) != 2 {
		t.Errorf("delivered %d alerts before the 429, want the first page's 2", len(ids))
	}
	if n := len(s.Requests()); n != 2 {
		t.Errorf("%d requests: a 429 must not be retried in the same run", n)
	}
}

func TestPageErrorRetriesThePage(t *testing.T) {
	s := startSim(t)
	putN(s, "tenant-a", 5, graphsim.MDC)
	c := newTestClient(t, s, ClientOptions{PageSize: 2})
	// Page 2 fails twice, then succeeds: every alert arrives, none twice.
	first := true
	s.OnPage(func(_ string, p int) {
		if p == 1 && first {
			first = false
			s.FailNext(2, http.StatusBadGateway)
		}
	})
	ids, err := collect(t, c, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 5 || hasDup(ids) {
		t.Errorf("ids %v, want 5 distinct", ids)
	}
	reqs := s.Requests()
	pages := []int{}
	for _, r := range reqs {
		pages = append(pages, r.Page)
	}
	if fmt.Sprint(pages) != "[1 2 2 2 3]" {
		t.Errorf("pages asked %v, want [1 2 2 2 3]", pages)
	}

	// A page that keeps failing ends the listing with an error; nothing after it is read.
	s2 := startSim(t)
	putN(s2, "tenant-a", 5, graphsim.MDC)
	c2 := newTestClient(t, s2, ClientOptions{PageSize: 2, PageAttempts: 3})
	s2.OnPage(func(_ string, p int) {
		if p == 1 {
			s2.FailNext(10, http.StatusInternalServerError)
		}
	})
	ids, err = collect(t, c2, time.Now().Add(-time.Hour))
	var pe *PageError
	if !errors.As(err, &pe) || pe.Page != 2 || pe.Attempts != 3 {
		t.Fatalf("err = %v, want page 2 failed after 3 attempts", err)
	}
	if len(ids) != 2 {
		t.Errorf("ids %v, want page 1 only", ids)
	}
}

func hasDup(ids []string) bool {
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			return true
		}
		seen[id] = true
	}
	return false
}

func TestWrongSecret(t *testing.T) {
	s := startSim(t)
	cred, err := NewCredential(Auth{TenantID: "tenant-a", ClientID: "app-a", ClientSecret: "wrong", AuthorityHost: s.URL, DisableInstanceDiscovery: true}, s.Client())
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(cred, ClientOptions{BaseURL: s.URL, HTTP: s.Client(), Sources: []string{graphsim.MDC}, PageAttempts: 1})
	_, err = collect(t, c, time.Now())
	if err == nil || strings.Contains(err.Error(), "wrong") {
		t.Errorf("err = %v: want an authentication error that does not quote the secret", err)
	}
}

func TestFilterQuoting(t *testing.T) {
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	got := Filter([]string{"a'b", "c"}, since)
	want := "(serviceSource eq 'a''b' or serviceSource eq 'c') and lastUpdateDateTime ge 2026-03-01T12:00:00.0000000Z"
	if got != want {
		t.Errorf("Filter = %q, want %q", got, want)
	}
}

func TestNextLinkElsewhereRefused(t *testing.T) {
	if sameOrigin("https://evil.example/v1.0/security/alerts_v2?x", "https://graph.microsoft.com") {
		t.Fatal("another host accepted")
	}
	if !sameOrigin("https://graph.microsoft.com/v1.0/security/alerts_v2?$skiptoken=x", "https://graph.microsoft.com") {
		t.Fatal("same host refused")
	}
}

// A hostile source name cannot leave its OData string literal: every quote is doubled, so
// the literal ends only where Filter ends it.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{"microsoftDefenderForCloud", "a' or 1 eq 1 or 'x", "''", "é'\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Filter([]string{s}, time.Unix(0, 0))
		lit, ok := strings.CutPrefix(got, "serviceSource eq '")
		if !ok {
			t.Fatalf("filter %q", got)
		}
		// Walk the literal: '' is an escaped quote, a lone ' ends it.
		i := 0
		for ; i < len(lit); i++ {
			if lit[i] == '\'' {
				if i+1 < len(lit) && lit[i+1] == '\'' {
					i++
					continue
				}
				break
			}
		}
		if rest := lit[i:]; rest != "' and lastUpdateDateTime ge 1970-01-01T00:00:00.0000000Z" {
			t.Fatalf("literal for %q ends early; rest %q", s, rest)
		}
	})
}
