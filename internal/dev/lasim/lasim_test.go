package lasim

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// client trusts the imitation's CA.
func client(t *testing.T, s *Server) *http.Client {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CAPEM) {
		t.Fatal("CAPEM holds no certificate")
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

func miToken(t *testing.T, s *Server, clientID string) string {
	t.Helper()
	q := url.Values{"api-version": {"2019-08-01"}, "resource": {Audience + "/"}, "client_id": {clientID}}
	req, _ := http.NewRequest(http.MethodGet, s.IdentityEndpoint+"?"+q.Encode(), nil)
	req.Header.Set("X-IDENTITY-HEADER", s.IdentityHeader)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresOn   string `json:"expires_on"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 || tok.AccessToken == "" || tok.ExpiresOn == "" {
		t.Fatalf("token: %d %v %+v", resp.StatusCode, err, tok)
	}
	return tok.AccessToken
}

func post(t *testing.T, s *Server, tok, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client(t, s).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("x-ms-error-code") + " " + string(b)
}

// TestEnvelope checks the imitation's own contract, answer by answer.
func TestEnvelope(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.AddManagedIdentity("mi-1")
	s.Grant("mi-1")
	s.AddManagedIdentity("mi-2") // no role
	good := "/dataCollectionRules/" + s.RuleID + "/streams/Custom-DefenderForCloud?api-version=2023-01-01"
	tok := miToken(t, s, "mi-1")
	for _, tc := range []struct {
		name, tok, path, body string
		status                int
		rows                  int
	}{
		{"array", tok, good, `[{"a":1},{"a":2}]`, 204, 2},
		{"bare object: accepted, stored nowhere", tok, good, `{"a":3}`, 204, 0},
		{"no token", "", good, `[]`, 401, 0},
		{"no role", miToken(t, s, "mi-2"), good, `[{"a":1}]`, 403, 0},
		{"no api-version", tok, strings.TrimSuffix(good, "?api-version=2023-01-01"), `[]`, 400, 0},
		{"unknown stream", tok, strings.Replace(good, "Custom-DefenderForCloud", "Custom-X", 1), `[]`, 404, 0},
		{"not JSON", tok, good, `[{`, 400, 0},
		{"too large", tok, good, "[" + strings.Repeat(" ", MaxBody) + "]", 413, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.Rows("Custom-DefenderForCloud"))
			status, body := post(t, s, tc.tok, tc.path, tc.body)
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, body, tc.status)
			}
			if status >= 400 && !strings.Contains(body, `"error":{"code"`) {
				t.Errorf("error body %s", body)
			}
			if n := len(s.Rows("Custom-DefenderForCloud")) - before; n != tc.rows {
				t.Errorf("stored %d rows, want %d", n, tc.rows)
			}
		})
	}
	s.FailNext(1, 429, "3")
	req, _ := http.NewRequest(http.MethodPost, s.URL+good, bytes.NewReader([]byte("[]")))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client(t, s).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" {
		t.Errorf("throttle: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
