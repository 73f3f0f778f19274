package graphsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func start(t *testing.T) *Server {
	t.Helper()
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	s.AddApp("t1", "app", "secret")
	return s
}

func token(t *testing.T, s *Server, tenant, secret string) (int, map[string]any) {
	t.Helper()
	resp, err := s.Client().PostForm(s.URL+"/"+tenant+"/oauth2/v2.0/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {secret},
		"scope": {s.URL + "/.default"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func get(t *testing.T, s *Server, path, tok string, prefer bool) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if prefer {
		req.Header.Set("Prefer", "include-unknown-enum-members")
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	return resp.StatusCode, body
}

// The envelopes the imitation answers, as the Entra ID and Graph documentation describe them.
func TestEnvelopes(t *testing.T) {
	s := start(t)
	if st, b := token(t, s, "t1", "wrong"); st != http.StatusUnauthorized || b["error"] != "invalid_client" {
		t.Errorf("wrong secret: %d %v", st, b)
	}
	if st, b := token(t, s, "t2", "secret"); st != http.StatusBadRequest || b["error"] != "unauthorized_client" {
		t.Errorf("other tenant: %d %v", st, b)
	}
	st, b := token(t, s, "t1", "secret")
	if st != http.StatusOK || b["token_type"] != "Bearer" || b["expires_in"] == nil {
		t.Fatalf("token: %d %v", st, b)
	}
	tok := b["access_token"].(string)
	if st, b := get(t, s, "/v1.0/security/alerts_v2", "", true); st != http.StatusUnauthorized || b["error"] == nil {
		t.Errorf("no bearer: %d %v", st, b)
	}
	if st, _ := get(t, s, "/v1.0/security/alerts_v2?$top=0", tok, true); st != http.StatusBadRequest {
		t.Errorf("$top=0: %d", st)
	}
	if st, _ := get(t, s, "/v1.0/security/alerts_v2?$skiptoken=%25%25", tok, true); st != http.StatusBadRequest {
		t.Errorf("bad skip token: %d", st)
	}
	for i, src := range []string{MDC, MDC, MDC, "microsoftDefenderForEndpoint"} {
		s.Put("t1", Alert("t1", "x_"+string(rune('a'+i)), src, "t", "high", "new"))
	}
	// Without Prefer the Defender for Cloud alerts are not listed; with it, paged by $top.
	if _, b := get(t, s, "/v1.0/security/alerts_v2", tok, false); len(b["value"].([]any)) != 1 {
		t.Errorf("without Prefer: %v", b["value"])
	}
	_, b = get(t, s, "/v1.0/security/alerts_v2?$top=2&$filter="+url.QueryEscape("serviceSource eq 'microsoftDefenderForCloud'"), tok, true)
	next, _ := b["@odata.nextLink"].(string)
	if len(b["value"].([]any)) != 2 || !strings.HasPrefix(next, s.URL+"/v1.0/security/alerts_v2?$skiptoken=") {
		t.Fatalf("page 1: %v", b)
	}
	_, b = get(t, s, strings.TrimPrefix(next, s.URL), tok, true)
	if len(b["value"].([]any)) != 1 || b["@odata.nextLink"] != nil {
		t.Errorf("page 2: %v", b)
	}
	s.Throttle(1, "9")
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/v1.0/security/alerts_v2", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "9" {
		t.Errorf("throttle: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
