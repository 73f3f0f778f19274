// Package lasim is a loopback imitation of what a Log Analytics destination talks to in Azure:
// the Azure Monitor Logs Ingestion endpoint (a data collection endpoint or rule), the Entra ID
// token endpoint for client secrets and certificates, and the App Service managed identity
// endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER). It exists because none of these can run here.
//
// It follows the public contract envelope for envelope: POST
// /dataCollectionRules/{immutableId}/streams/{stream}?api-version=2023-01-01 with a bearer
// token for https://monitor.azure.com, a JSON array (optionally gzip), 204 on success, the
// {"error":{"code","message"}} body with x-ms-error-code on failure, 413 above 1 MB compressed
// or not, 429 with Retry-After when told to throttle, 403 when the identity lacks the
// Monitoring Metrics Publisher role on the rule, and a single JSON object accepted with 204 but
// stored nowhere (the service's known behaviour). The ingestion endpoint and the Entra ID
// authority are served over TLS with a certificate from a CA generated at start (CAPEM), as
// the SDK sends tokens over https only; the managed identity endpoint is plain http on
// loopback, as App Service's is.
package lasim

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxBody is the largest request body the endpoint takes, compressed and after
// decompression: the documented "1 MB" read as 1,000,000 bytes, the stricter reading.
const MaxBody = 1_000_000

// Audience is the public cloud's ingestion audience, the default resource tokens must be
// issued for.
const Audience = "https://monitor.azure.com"

// Options configure a Server. The zero value is usable.
type Options struct {
	// RuleID is the data collection rule's immutable id. Default "dcr-0123456789abcdef0123456789abcdef".
	RuleID string
	// Streams are the streams the rule declares. Default ["Custom-DefenderForCloud"].
	Streams []string
	// Columns, when not nil, are the declared columns (name to type: string, datetime, long,
	// dynamic…): a row's other properties are dropped, as the service drops what the stream
	// declaration does not name, and a datetime or long that does not parse is refused.
	Columns map[string]string
	// TokenLifetime is how long issued tokens are valid. Default one hour.
	TokenLifetime time.Duration
	// Audience is the resource the ingestion endpoint accepts tokens for: Audience (default),
	// or a sovereign cloud's (https://monitor.azure.us, https://monitor.azure.cn).
	Audience string
}

// Upload is one accepted ingestion request.
type Upload struct {
	Stream string
	// Principal is the identity the token was issued to.
	Principal string
	// Rows is how many rows were stored (0 for a single-object body).
	Rows int
	// WireBytes is the body as sent; BodyBytes after decompression.
	WireBytes, BodyBytes int
	Gzip                 bool
}

type principal struct {
	tenant, secret string
	cert           []byte // DER of the registered certificate
	granted        bool
}

type token struct {
	principal, resource string
	expires             time.Time
}

type fault struct {
	status     int
	retryAfter string
}

// Server is a running imitation.
type Server struct {
	// URL is the https base of the ingestion endpoint, which is also the Entra ID authority
	// host: use it as the Endpoint and as the AuthorityHost.
	URL string
	// IdentityEndpoint and IdentityHeader are what App Service puts in IDENTITY_ENDPOINT and
	// IDENTITY_HEADER.
	IdentityEndpoint, IdentityHeader string
	// CAPEM is the certificate of the CA that signed the https server's certificate.
	CAPEM []byte
	// RuleID is the rule's immutable id.
	RuleID string

	opts     Options
	tlsSrv   *http.Server
	miSrv    *http.Server
	mu       sync.Mutex
	apps     map[string]*principal // client id → app registration
	mis      map[string]*principal // client id ("" for system-assigned) → managed identity
	tokens   map[string]token
	issued   map[string]int // principal → tokens issued
	uploads  []Upload
	requests int
	rows     map[string][]map[string]json.RawMessage
	faults   []fault
}

// Start starts the imitation on 127.0.0.1.
func Start(opts Options) (*Server, error) {
	if opts.RuleID == "" {
		opts.RuleID = "dcr-0123456789abcdef0123456789abcdef"
	}
	if len(opts.Streams) == 0 {
		opts.Streams = []string{"Custom-DefenderForCloud"}
	}
	if opts.Audience == "" {
		opts.Audience = Audience
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	ca, err := newCA()
	if err != nil {
		return nil, err
	}
	tlsConf, err := ca.serverConfig()
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts: opts, RuleID: opts.RuleID, CAPEM: ca.pem,
		apps: map[string]*principal{}, mis: map[string]*principal{},
		tokens: map[string]token{}, issued: map[string]int{},
		rows:           map[string][]map[string]json.RawMessage{},
		IdentityHeader: randomHex(16),
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = tl.Close()
		return nil, err
	}
	s.URL = "https://" + tl.Addr().String()
	s.IdentityEndpoint = "http://" + ml.Addr().String() + "/msi/token"
	s.tlsSrv = &http.Server{Handler: http.HandlerFunc(s.serveTLS), TLSConfig: tlsConf, ReadHeaderTimeout: 10 * time.Second,
		// A client that does not trust the CA is an expected test case, not news.
		ErrorLog: log.New(io.Discard, "", 0)}
	s.miSrv = &http.Server{Handler: http.HandlerFunc(s.serveIdentity), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.tlsSrv.ServeTLS(tl, "", "") }()
	go func() { _ = s.miSrv.Serve(ml) }()
	return s, nil
}

// Close stops both servers.
func (s *Server) Close() error {
	return errors.Join(s.tlsSrv.Close(), s.miSrv.Close())
}

// AddApp registers an application (a service principal) in tenant with a client secret
// and/or a certificate (DER). It has no role on the rule until Grant.
func (s *Server) AddApp(tenant, clientID, secret string, certDER []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[clientID] = &principal{tenant: tenant, secret: secret, cert: certDER}
}

// AddManagedIdentity assigns a managed identity to the "app": clientID "" is the
// system-assigned one, anything else a user-assigned one.
func (s *Server) AddManagedIdentity(clientID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mis[clientID] = &principal{}
}

// Grant gives the principal (an app's client id, a managed identity's client id, or
// "system" for the system-assigned identity) Monitoring Metrics Publisher on the rule.
func (s *Server) Grant(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.lookup(name); p != nil {
		p.granted = true
	}
}

func (s *Server) lookup(name string) *principal {
	if name == "system" {
		return s.mis[""]
	}
	if p, ok := s.apps[name]; ok {
		return p
	}
	if strings.HasPrefix(name, "mi:") {
		return s.mis[strings.TrimPrefix(name, "mi:")]
	}
	return s.mis[name]
}

// FailNext makes the next n ingestion requests fail with status, with a Retry-After header
// when retryAfter is not empty. Faults queue in order.
func (s *Server) FailNext(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status, retryAfter})
	}
}

// Rows returns the rows stored for stream, in arrival order.
func (s *Server) Rows(stream string) []map[string]json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]json.RawMessage(nil), s.rows[stream]...)
}

// Uploads returns the accepted ingestion requests.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Upload(nil), s.uploads...)
}

// Requests counts ingestion requests, answered however.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// TokensIssued counts the tokens issued to a principal (named as for Grant).
func (s *Server) TokensIssued(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued[name]
}

func (s *Server) serveTLS(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 4 && parts[0] == "dataCollectionRules" && parts[2] == "streams":
		s.ingest(w, r, parts[1], parts[3])
	case len(parts) == 4 && parts[1] == "v2.0" && parts[2] == ".well-known" && parts[3] == "openid-configuration":
		s.openID(w, r, parts[0])
	case len(parts) == 4 && parts[1] == "oauth2" && parts[2] == "v2.0" && parts[3] == "token":
		s.entraToken(w, r, parts[0])
	default:
		http.NotFound(w, r)
	}
}

// monitorError answers like the ingestion endpoint does.
func monitorError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-ms-error-code", code)
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": msg}})
	_, _ = w.Write(b)
}

func (s *Server) ingest(w http.ResponseWriter, r *http.Request, rule, stream string) {
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		monitorError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "only POST is supported")
		return
	}
	if r.URL.Query().Get("api-version") != "2023-01-01" {
		monitorError(w, http.StatusBadRequest, "InvalidApiVersion", "the api-version query parameter is missing or not supported")
		return
	}
	who, ok := s.bearer(r)
	if !ok {
		monitorError(w, http.StatusUnauthorized, "InvalidToken", "the authentication token is missing, expired or not issued for "+s.opts.Audience)
		return
	}
	// A fault is taken by the next request that would otherwise have been served.
	s.mu.Lock()
	var f *fault
	if len(s.faults) > 0 {
		f = &s.faults[0]
		s.faults = s.faults[1:]
	}
	s.mu.Unlock()
	if f != nil {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		monitorError(w, f.status, http.StatusText(f.status), "fault injected by the imitation")
		return
	}
	if rule != s.opts.RuleID || !contains(s.opts.Streams, stream) {
		monitorError(w, http.StatusNotFound, "NotFound", "data collection rule "+rule+" or its stream "+stream+" was not found")
		return
	}
	s.mu.Lock()
	p := s.lookup(who)
	granted := p != nil && p.granted
	s.mu.Unlock()
	if !granted {
		monitorError(w, http.StatusForbidden, "OperationFailed", "The authentication token provided does not have access to ingest data for the data collection rule with immutable Id '"+rule+"'.")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		monitorError(w, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "Content-Type must be application/json")
		return
	}
	wire, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		monitorError(w, http.StatusBadRequest, "InvalidPayload", "cannot read the body")
		return
	}
	if len(wire) > MaxBody {
		monitorError(w, http.StatusRequestEntityTooLarge, "ContentLengthLimitExceeded", "the request body exceeds 1 MB")
		return
	}
	body, gz := wire, false
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(wire))
		if err != nil {
			monitorError(w, http.StatusBadRequest, "InvalidContentEncoding", "the body is not gzip")
			return
		}
		body, err = io.ReadAll(io.LimitReader(zr, MaxBody+1))
		if err != nil {
			monitorError(w, http.StatusBadRequest, "InvalidContentEncoding", "the body is not gzip")
			return
		}
		if len(body) > MaxBody {
			monitorError(w, http.StatusRequestEntityTooLarge, "ContentLengthLimitExceeded", "the decompressed request body exceeds 1 MB")
			return
		}
		gz = true
	default:
		monitorError(w, http.StatusBadRequest, "InvalidContentEncoding", "unsupported Content-Encoding "+enc)
		return
	}
	up := Upload{Stream: stream, Principal: who, WireBytes: len(wire), BodyBytes: len(body), Gzip: gz}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed) {
		// Accepted and stored nowhere: what the service does with a bare object.
		s.mu.Lock()
		s.uploads = append(s.uploads, up)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var rows []map[string]json.RawMessage
	if err := json.Unmarshal(body, &rows); err != nil {
		monitorError(w, http.StatusBadRequest, "InvalidPayload", "Data of the request is invalid: the body must be a JSON array of objects")
		return
	}
	for i, row := range rows {
		if row == nil {
			monitorError(w, http.StatusBadRequest, "InvalidPayload", fmt.Sprintf("row %d is not an object", i))
			return
		}
		if err := s.checkRow(row); err != nil {
			monitorError(w, http.StatusBadRequest, "InvalidPayload", fmt.Sprintf("row %d: %v", i, err))
			return
		}
	}
	up.Rows = len(rows)
	s.mu.Lock()
	s.uploads = append(s.uploads, up)
	s.rows[stream] = append(s.rows[stream], rows...)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) checkRow(row map[string]json.RawMessage) error {
	if s.opts.Columns == nil {
		return nil
	}
	for k, v := range row {
		typ, ok := s.opts.Columns[k]
		if !ok {
			delete(row, k)
			continue
		}
		if string(v) == "null" {
			continue
		}
		switch typ {
		case "datetime":
			var str string
			if json.Unmarshal(v, &str) != nil {
				return fmt.Errorf("%s is not a datetime string", k)
			}
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				return fmt.Errorf("%s: %q is not a datetime", k, str)
			}
		case "long", "int":
			if _, err := strconv.ParseInt(string(v), 10, 64); err != nil {
				return fmt.Errorf("%s: %s is not a whole number", k, v)
			}
		case "string":
			if v[0] != '"' {
				return fmt.Errorf("%s: %s is not a string", k, v)
			}
		}
	}
	return nil
}

// bearer returns the principal of a valid token for the monitor audience.
func (s *Server) bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tok]
	if !ok || time.Now().After(t.expires) || strings.TrimRight(t.resource, "/") != s.opts.Audience {
		return "", false
	}
	return t.principal, true
}

// issue stores a token for principal and resource and returns it.
func (s *Server) issue(name, resource string) (string, time.Time) {
	tok := randomHex(24)
	exp := time.Now().Add(s.opts.TokenLifetime)
	s.mu.Lock()
	s.tokens[tok] = token{principal: name, resource: resource, expires: exp}
	s.issued[name]++
	s.mu.Unlock()
	return tok, exp
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// WriteCA writes CAPEM to ca.pem in dir and returns its path, for a CAFile setting.
func (s *Server) WriteCA(dir string) (string, error) {
	path := filepath.Join(dir, "ca.pem")
	return path, os.WriteFile(path, s.CAPEM, 0o600)
}
