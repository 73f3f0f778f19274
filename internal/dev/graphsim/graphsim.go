// Package graphsim is a loopback imitation of the two services the Graph alert poll talks to:
// the Entra ID token endpoint (OpenID configuration and the client-credentials grant with a
// client secret) and GET /v1.0/security/alerts_v2. It serves HTTPS with its own test CA,
// because azidentity insists on an https authority.
//
// What it imitates, as the Graph documentation describes it: $filter on serviceSource and
// lastUpdateDateTime ge, $top, pages linked by an opaque @odata.nextLink, alerts listed
// newest update first and read live at every page (so an alert updated between pages moves to
// the front, as with offset paging), Defender for Cloud alerts hidden unless the request
// carries Prefer: include-unknown-enum-members, 429 with Retry-After, and a clock that may
// be skewed from the caller's.
package graphsim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MDC is the serviceSource of Defender for Cloud alerts.
const MDC = "microsoftDefenderForCloud"

// Server is a running imitation.
type Server struct {
	// URL is https://127.0.0.1:<port>, both the authority host and the Graph base URL.
	URL string

	srv    *http.Server
	ln     net.Listener
	caPEM  []byte
	caPool *x509.CertPool

	mu       sync.Mutex
	apps     map[string]app // client id → app
	tokens   map[string]bool
	alerts   map[string]map[string]any // tenant → id → alert
	skew     time.Duration
	throttle []fault
	fail     []fault
	onPage   func(tenant string, page int)
	requests []Request
	issued   int
}

type app struct{ tenant, secret string }

type fault struct {
	status     int
	retryAfter string
}

// Request is an alerts_v2 request as the imitation saw it.
type Request struct {
	Tenant string
	Query  string
	Prefer string
	Page   int
}

// Start serves on a free loopback port.
func Start() (*Server, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "graphsim test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		ln: ln, URL: "https://" + ln.Addr().String(),
		caPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		caPool: x509.NewCertPool(),
		apps:   map[string]app{}, tokens: map[string]bool{}, alerts: map[string]map[string]any{},
	}
	s.caPool.AddCert(caCert)
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}}
	go func() { _ = s.srv.ServeTLS(ln, "", "") }()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

// CAPEM is the test CA's certificate.
func (s *Server) CAPEM() []byte { return s.caPEM }

// WriteCA writes the CA certificate into dir and returns its path, for a CAFile setting.
func (s *Server) WriteCA(dir string) (string, error) {
	p := filepath.Join(dir, "graphsim-ca.pem")
	return p, os.WriteFile(p, s.caPEM, 0o600)
}

// Client is an HTTP client that trusts the test CA.
func (s *Server) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: s.caPool}}, Timeout: time.Minute}
}

// AddApp registers an app registration in tenant.
func (s *Server) AddApp(tenant, clientID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[clientID] = app{tenant, secret}
}

// SetSkew sets how far the imitation's clock runs ahead of this machine's (negative: behind).
func (s *Server) SetSkew(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skew = d
}

// Now is the imitation's clock.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Add(s.skew).UTC()
}

// Alert builds an alerts_v2 object for tenant with the documented members; the caller may
// change any of them before Put.
func Alert(tenant, id, source, title, severity, status string) map[string]any {
	return map[string]any{
		"@odata.type": "#microsoft.graph.security.alert", "id": id, "providerAlertId": id[strings.IndexByte(id, '_')+1:],
		"incidentId": "1", "status": status, "severity": severity, "classification": "unknown", "determination": "unknown",
		"serviceSource": source, "detectionSource": "microsoftDefenderForServers", "productName": "Microsoft Defender for Cloud",
		"detectorId": "VM_SuspiciousCommand", "tenantId": tenant, "title": title, "description": "graphsim alert " + id,
		"category": "Execution", "alertWebUrl": "https://security.microsoft.com/alerts/" + id + "?tid=" + tenant,
		"mitreTechniques": []any{"T1059"}, "comments": []any{},
		"evidence": []any{
			map[string]any{"@odata.type": "#microsoft.graph.security.azureResourceEvidence", "roles": []any{"compromised"},
				"resourceId":   "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
				"resourceName": "vm1", "resourceType": "Virtual Machine"},
			map[string]any{"@odata.type": "#microsoft.graph.security.ipEvidence", "roles": []any{"attacker"}, "ipAddress": "198.51.100.7"},
		},
	}
}

// Put stores (or replaces) an alert of tenant. A missing createdDateTime or
// lastUpdateDateTime is set to the imitation's clock, as Graph stamps them.
func (s *Server) Put(tenant string, a map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().Add(s.skew).UTC().Format("2006-01-02T15:04:05.0000000Z")
	if _, ok := a["createdDateTime"]; !ok {
		a["createdDateTime"] = now
	}
	if _, ok := a["lastUpdateDateTime"]; !ok {
		a["lastUpdateDateTime"] = now
	}
	if s.alerts[tenant] == nil {
		s.alerts[tenant] = map[string]any{}
	}
	cp := map[string]any{}
	for k, v := range a {
		cp[k] = v
	}
	s.alerts[tenant][a["id"].(string)] = cp
}

// Update changes an existing alert's members and stamps lastUpdateDateTime with the clock,
// as a status change in the portal does. It reports whether the alert exists.
func (s *Server) Update(tenant, id string, members map[string]any) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.alerts[tenant][id].(map[string]any)
	if !ok {
		return false
	}
	for k, v := range members {
		a[k] = v
	}
	// A second update within the same tick must still read as a new version.
	t := time.Now().Add(s.skew).UTC()
	if prev, err := time.Parse(time.RFC3339Nano, a["lastUpdateDateTime"].(string)); err == nil && !t.After(prev) {
		t = prev.Add(time.Microsecond)
	}
	a["lastUpdateDateTime"] = t.Format("2006-01-02T15:04:05.0000000Z")
	return true
}

// Throttle makes the next n alerts_v2 requests answer 429 with this Retry-After.
func (s *Server) Throttle(n int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.throttle = append(s.throttle, fault{http.StatusTooManyRequests, retryAfter})
	}
}

// FailNext makes the next n alerts_v2 requests answer status (a 5xx, say).
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fail = append(s.fail, fault{status: status})
	}
}

// OnPage runs fn before each alerts_v2 page is served (page counts from 1 per listing), for
// changes between pages. fn must not call OnPage.
func (s *Server) OnPage(fn func(tenant string, page int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onPage = fn
}

// Requests returns the alerts_v2 requests served so far (faults included).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// TokensIssued counts the tokens handed out.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func graphError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 4 && parts[1] == "v2.0" && parts[2] == ".well-known" && parts[3] == "openid-configuration":
		base := s.URL + "/" + parts[0]
		writeJSON(w, http.StatusOK, map[string]any{
			"token_endpoint": base + "/oauth2/v2.0/token", "authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer": base + "/v2.0", "jwks_uri": base + "/discovery/v2.0/keys",
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
			"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		})
	case len(parts) == 4 && parts[1] == "oauth2" && parts[2] == "v2.0" && parts[3] == "token":
		s.token(w, r, parts[0])
	case r.URL.Path == "/v1.0/security/alerts_v2":
		s.list(w, r)
	default:
		graphError(w, http.StatusNotFound, "UnknownPath", "no such path "+r.URL.Path)
	}
}

func (s *Server) token(w http.ResponseWriter, r *http.Request, tenant string) {
	entra := func(status int, code, desc string) {
		writeJSON(w, status, map[string]any{"error": code, "error_description": desc, "error_codes": []int{}})
	}
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		entra(http.StatusBadRequest, "invalid_request", "AADSTS900561: The endpoint only accepts POST requests.")
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "client_credentials" {
		entra(http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
		return
	}
	scoped := false
	for _, sc := range strings.Fields(f.Get("scope")) {
		scoped = scoped || strings.HasSuffix(sc, "/.default")
	}
	if !scoped {
		entra(http.StatusBadRequest, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid.")
		return
	}
	s.mu.Lock()
	a, ok := s.apps[f.Get("client_id")]
	s.mu.Unlock()
	switch {
	case !ok || a.tenant != tenant:
		entra(http.StatusBadRequest, "unauthorized_client", "AADSTS700016: Application not found in the directory '"+tenant+"'.")
		return
	case f.Get("client_secret") != a.secret:
		entra(http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := tenant + "." + hex.EncodeToString(b)
	s.mu.Lock()
	s.tokens[tok] = true
	s.issued++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok})
}

var (
	sourceTerm = regexp.MustCompile(`serviceSource eq '((?:[^']|'')*)'`)
	sinceTerm  = regexp.MustCompile(`lastUpdateDateTime ge (\S+)`)
)

// cursor is what the opaque skip token stands for.
type cursor struct {
	Filter string `json:"f"`
	Top    int    `json:"t"`
	Skip   int    `json:"s"`
	Page   int    `json:"p"`
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	s.mu.Lock()
	valid := ok && s.tokens[tok]
	s.mu.Unlock()
	if !valid {
		graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty or invalid.")
		return
	}
	tenant := tok[:strings.IndexByte(tok, '.')]
	q := r.URL.Query()
	c := cursor{Filter: q.Get("$filter"), Top: 100, Page: 1}
	if st := q.Get("$skiptoken"); st != "" {
		b, err := base64.RawURLEncoding.DecodeString(st)
		if err != nil || json.Unmarshal(b, &c) != nil {
			graphError(w, http.StatusBadRequest, "BadRequest", "Invalid skip token.")
			return
		}
	} else if t := q.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 {
			graphError(w, http.StatusBadRequest, "BadRequest", "Invalid $top.")
			return
		}
		c.Top = n
	}
	prefer := r.Header.Get("Prefer")
	s.mu.Lock()
	s.requests = append(s.requests, Request{Tenant: tenant, Query: r.URL.RawQuery, Prefer: prefer, Page: c.Page})
	var f *fault
	if len(s.throttle) > 0 {
		f, s.throttle = &s.throttle[0], s.throttle[1:]
	} else if len(s.fail) > 0 {
		f, s.fail = &s.fail[0], s.fail[1:]
	}
	hook := s.onPage
	s.mu.Unlock()
	if f != nil {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		graphError(w, f.status, "TooManyRequests", "simulated fault")
		return
	}
	if hook != nil {
		hook(tenant, c.Page)
	}
	var sources []string
	for _, m := range sourceTerm.FindAllStringSubmatch(c.Filter, -1) {
		sources = append(sources, strings.ReplaceAll(m[1], "''", "'"))
	}
	var since time.Time
	if m := sinceTerm.FindStringSubmatch(c.Filter); m != nil {
		t, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			graphError(w, http.StatusBadRequest, "BadRequest", "Invalid filter clause: "+m[1])
			return
		}
		since = t
	}
	includeUnknown := strings.Contains(strings.ToLower(prefer), "include-unknown-enum-members")

	s.mu.Lock()
	var match []map[string]any
	for _, v := range s.alerts[tenant] {
		a := v.(map[string]any)
		src, _ := a["serviceSource"].(string)
		// Without the Prefer header, members after unknownFutureValue are not returned:
		// Defender for Cloud alerts are not listed at all.
		if src == MDC && !includeUnknown {
			continue
		}
		if len(sources) > 0 && !contains(sources, src) {
			continue
		}
		lu, _ := time.Parse(time.RFC3339Nano, a["lastUpdateDateTime"].(string))
		if lu.Before(since) {
			continue
		}
		b, _ := json.Marshal(a)
		var cp map[string]any
		_ = json.Unmarshal(b, &cp)
		match = append(match, cp)
	}
	s.mu.Unlock()
	// Most recent first, as the documentation says; ties by id so pages are stable.
	sort.Slice(match, func(i, j int) bool {
		li, lj := match[i]["lastUpdateDateTime"].(string), match[j]["lastUpdateDateTime"].(string)
		if li != lj {
			return li > lj
		}
		return match[i]["id"].(string) < match[j]["id"].(string)
	})
	start := min(c.Skip, len(match))
	end := min(start+c.Top, len(match))
	body := map[string]any{"@odata.context": s.URL + "/v1.0/$metadata#security/alerts_v2", "value": match[start:end]}
	if end < len(match) {
		next := c
		next.Skip, next.Page = end, c.Page+1
		b, _ := json.Marshal(next)
		body["@odata.nextLink"] = s.URL + "/v1.0/security/alerts_v2?$skiptoken=" + base64.RawURLEncoding.EncodeToString(b)
	}
	writeJSON(w, http.StatusOK, body)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// String describes the server, for test logs.
func (s *Server) String() string { return fmt.Sprintf("graphsim at %s", s.URL) }
