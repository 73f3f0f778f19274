// Package snowsim imitates the parts of a ServiceNow instance the servicenow destination
// talks to, on loopback: the Table API (query, read, create, update, delete under
// /api/now/table and /api/now/v2/table) and the OAuth token endpoint /oauth_token.do. It
// answers as the instance does, envelope for envelope: {"result":…} bodies with every value a
// string, reference fields as {"link","value"} unless sysparm_exclude_reference_link is set,
// X-Total-Count on queries, 201 and a Location header on create, an empty array from v2 and a
// 404 from v1 when nothing matches, the {"error":{"message","detail"},"status":"failure"}
// error body, a mandatory close code and close notes on resolve (a data policy, 403), and the
// instance's worst habit: a query term naming a field the table does not have is dropped, so
// the query matches more than it says. Tests can throttle it (429 with Retry-After and the
// X-RateLimit headers), fail requests, reject credentials, expire tokens and hold lookups so
// that two clients race.
package snowsim

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure an instance.
type Options struct {
	// User and Password are the account basic auth and the password grant accept.
	User, Password string
	// ClientID and ClientSecret identify the OAuth application; empty disables OAuth.
	ClientID, ClientSecret string
	// ClientCredentials enables the client_credentials grant, off by default as on a real
	// instance (glide.oauth.inbound.client.credential.grant_type.enabled).
	ClientCredentials bool
	// TokenTTL is the access tokens' lifetime; default 1799 s as the instance answers.
	TokenTTL time.Duration
	// Tables are the tables that exist; default incident. Each has the incident columns.
	Tables []string
	// ExtraColumns are custom columns (u_…) every table has.
	ExtraColumns []string
	// DropColumns are standard columns the tables lack, as a table that does not extend
	// task lacks correlation_id.
	DropColumns []string
	// InvalidQueryReturnsNoRows is the instance property glide.invalid_query.returns_no_rows:
	// a term naming an unknown field then matches nothing instead of being dropped.
	InvalidQueryReturnsNoRows bool
	// Groups and Users map group names and user ids (user_name) to sys_ids: the
	// sys_user_group and sys_user tables, and what sysparm_input_display_value resolves.
	Groups, Users map[string]string
	// TLS serves HTTPS with a self-signed certificate (Certificate gives it).
	TLS bool
}

// Request is one request the instance answered.
type Request struct {
	Method, Path string
	Query        url.Values
	Body         string
	Status       int
}

// Server is a running imitation.
type Server struct {
	// URL is the instance's base URL, like https://<instance>.service-now.com.
	URL string

	opts Options
	srv  *httptest.Server

	mu       sync.Mutex
	tables   map[string]map[string]map[string]string // table → sys_id → column → value
	journal  map[string][]string                     // sys_id → work notes, oldest first
	seq      int
	tokens   map[string]time.Time // access token → expiry
	refresh  map[string]bool
	throttle int
	retryAft int
	fails    []int
	reject   bool
	readOnly bool
	log      []Request
	hold     *gate
}

type gate struct {
	bound   time.Duration
	want    int
	arrived int
	open    chan struct{}
}

// columns every table has; references name the table their sys_ids point into.
var columns = []string{
	"sys_id", "number", "state", "short_description", "description", "impact", "urgency", "priority",
	"correlation_id", "correlation_display", "assignment_group", "caller_id", "category", "subcategory",
	"contact_type", "close_code", "close_notes", "work_notes", "comments", "active", "opened_at",
	"resolved_at", "sys_created_on", "sys_updated_on", "sys_created_by", "sys_updated_by", "parent_incident",
}

var references = map[string]string{"assignment_group": "sys_user_group", "caller_id": "sys_user", "parent_incident": "incident"}

// Start starts an instance on 127.0.0.1.
func Start(opts Options) (*Server, error) {
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 1799 * time.Second
	}
	if len(opts.Tables) == 0 {
		opts.Tables = []string{"incident"}
	}
	s := &Server{opts: opts, tables: map[string]map[string]map[string]string{}, journal: map[string][]string{},
		tokens: map[string]time.Time{}, refresh: map[string]bool{}}
	for _, t := range opts.Tables {
		s.tables[t] = map[string]map[string]string{}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// A client refusing the self-signed certificate is what a TLS test wants, not news.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	_ = s.srv.Listener.Close()
	s.srv.Listener = ln
	if opts.TLS {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	s.URL = s.srv.URL
	return s, nil
}

// Close stops the instance.
func (s *Server) Close() { s.srv.Close() }

// Certificate is the HTTPS certificate (nil without TLS), for a CA file.
func (s *Server) Certificate() *tls.Certificate {
	if s.srv.TLS == nil || len(s.srv.TLS.Certificates) == 0 {
		return nil
	}
	return &s.srv.TLS.Certificates[0]
}

// CertificatePEM is the HTTPS certificate in PEM (nil without TLS), for a CAFile.
func (s *Server) CertificatePEM() []byte {
	if s.srv.Certificate() == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// Throttle makes the next n Table API requests answer 429 with Retry-After: retryAfter seconds.
func (s *Server) Throttle(n, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle, s.retryAft = n, retryAfter
}

// FailNext makes the next Table API requests answer the given statuses, one each.
func (s *Server) FailNext(codes ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = append(s.fails, codes...)
}

// RejectCredentials makes every request answer 401, as after a password change.
func (s *Server) RejectCredentials(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = on
}

// ReadOnly makes writes fail with an ACL 403, as for an account without the itil role.
func (s *Server) ReadOnly(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readOnly = on
}

// ExpireTokens makes every access token issued so far invalid.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]time.Time{}
}

// HoldLookups holds the next n queries (GETs with sysparm_query) until all n have arrived, so
// that n clients all see the same answer before any of them writes. A held query is released
// after bound at the latest.
func (s *Server) HoldLookups(n int, bound time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = &gate{want: n, open: make(chan struct{}), bound: bound}
}

// Requests returns the requests answered so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// Writes counts the POST, PATCH, PUT and DELETE requests that succeeded.
func (s *Server) Writes() int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method != http.MethodGet && r.Path != "/oauth_token.do" && r.Status < 300 {
			n++
		}
	}
	return n
}

// Records returns a copy of every record of table, oldest first.
func (s *Server) Records(table string) []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]string
	for _, r := range s.tables[table] {
		out = append(out, copyMap(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["number"] < out[j]["number"] })
	return out
}

// Find returns copies of table's records whose column equals value, oldest first.
func (s *Server) Find(table, column, value string) []map[string]string {
	var out []map[string]string
	for _, r := range s.Records(table) {
		if r[column] == value {
			out = append(out, r)
		}
	}
	return out
}

// WorkNotes returns the work notes of a record, oldest first.
func (s *Server) WorkNotes(sysID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.journal[sysID]...)
}

// Insert stores a record directly (a record the SOC or another tool made) and returns its sys_id.
func (s *Server) Insert(table string, fields map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.newRecord(table)
	for k, v := range fields {
		r[k] = v
	}
	r["priority"] = priority(r["impact"], r["urgency"])
	s.tables[table][r["sys_id"]] = r
	return r["sys_id"]
}

// Update changes a record directly, as a person in the instance would.
func (s *Server) Update(table, sysID string, fields map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.tables[table][sysID]; r != nil {
		for k, v := range fields {
			r[k] = v
		}
	}
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (s *Server) hasColumn(c string) bool {
	for _, x := range s.opts.DropColumns {
		if x == c {
			return false
		}
	}
	for _, x := range columns {
		if x == c {
			return true
		}
	}
	for _, x := range s.opts.ExtraColumns {
		if x == c {
			return true
		}
	}
	return false
}

func newSysID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newRecord makes a record with the defaults the instance fills in; the caller holds mu.
func (s *Server) newRecord(table string) map[string]string {
	s.seq++
	prefix := "INC"
	if table != "incident" {
		prefix = strings.ToUpper(table[:min(3, len(table))])
	}
	now := time.Now().UTC().Format("2006-01-02 15:04:05")
	r := map[string]string{}
	for _, c := range columns {
		if s.hasColumn(c) {
			r[c] = ""
		}
	}
	for _, c := range s.opts.ExtraColumns {
		r[c] = ""
	}
	r["sys_id"] = newSysID()
	r["number"] = fmt.Sprintf("%s%07d", prefix, 10000+s.seq)
	r["state"], r["impact"], r["urgency"], r["active"] = "1", "3", "3", "true"
	r["opened_at"], r["sys_created_on"], r["sys_updated_on"] = now, now, now
	r["sys_created_by"], r["sys_updated_by"] = s.opts.User, s.opts.User
	return r
}

// priority is the default impact × urgency matrix.
func priority(impact, urgency string) string {
	i, _ := strconv.Atoi(impact)
	u, _ := strconv.Atoi(urgency)
	if i < 1 || i > 3 {
		i = 3
	}
	if u < 1 || u > 3 {
		u = 3
	}
	return strconv.Itoa([4][4]int{{}, {0, 1, 2, 3}, {0, 2, 3, 4}, {0, 3, 4, 5}}[i][u])
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	if r.URL.Path == "/oauth_token.do" {
		s.token(rec, r, body)
	} else {
		s.table(rec, r, body)
	}
	s.mu.Lock()
	s.log = append(s.log, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: string(body), Status: rec.status})
	s.mu.Unlock()
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// fail writes the instance's error body.
func fail(w http.ResponseWriter, code int, message, detail string) {
	var d any
	if detail != "" {
		d = detail
	}
	writeJSON(w, code, map[string]any{"error": map[string]any{"message": message, "detail": d}, "status": "failure"})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request, body []byte) {
	denied := func() {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error_description": "access_denied", "error": "server_error"})
	}
	if r.Method != http.MethodPost {
		fail(w, http.StatusMethodNotAllowed, "Method not Supported", "")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || s.opts.ClientID == "" || form.Get("client_id") != s.opts.ClientID || form.Get("client_secret") != s.opts.ClientSecret {
		denied()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reject {
		denied()
		return
	}
	switch form.Get("grant_type") {
	case "password":
		if form.Get("username") != s.opts.User || form.Get("password") != s.opts.Password {
			denied()
			return
		}
	case "client_credentials":
		if !s.opts.ClientCredentials {
			denied()
			return
		}
	case "refresh_token":
		if !s.refresh[form.Get("refresh_token")] {
			denied()
			return
		}
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error_description": "invalid_request", "error": "invalid_request"})
		return
	}
	tok, ref := newSysID()+newSysID(), newSysID()
	s.tokens[tok] = time.Now().Add(s.opts.TokenTTL)
	s.refresh[ref] = true
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "refresh_token": ref, "scope": "useraccount",
		"token_type": "Bearer", "expires_in": int(s.opts.TokenTTL / time.Second)})
}

// authorised checks the Authorization header; the caller holds mu.
func (s *Server) authorised(r *http.Request) bool {
	if s.reject {
		return false
	}
	h := r.Header.Get("Authorization")
	if b, ok := strings.CutPrefix(h, "Basic "); ok {
		raw, err := base64.StdEncoding.DecodeString(b)
		return err == nil && s.opts.User != "" && string(raw) == s.opts.User+":"+s.opts.Password
	}
	if t, ok := strings.CutPrefix(h, "Bearer "); ok {
		exp, ok := s.tokens[t]
		return ok && time.Now().Before(exp)
	}
	return false
}

func (s *Server) table(w http.ResponseWriter, r *http.Request, body []byte) {
	rest, v2 := strings.CutPrefix(r.URL.Path, "/api/now/v2/table/")
	if !v2 {
		var ok bool
		if rest, ok = strings.CutPrefix(r.URL.Path, "/api/now/table/"); !ok {
			fail(w, http.StatusBadRequest, "Requested URI does not represent any resource", "")
			return
		}
	}
	tableName, sysID, _ := strings.Cut(rest, "/")
	q := r.URL.Query()

	s.mu.Lock()
	if !s.authorised(r) {
		s.mu.Unlock()
		fail(w, http.StatusUnauthorized, "User Not Authenticated", "Required to provide Auth information")
		return
	}
	if s.throttle > 0 {
		s.throttle--
		ra := s.retryAft
		s.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(ra))
		w.Header().Set("X-RateLimit-Limit", "10")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Duration(ra)*time.Second).Unix(), 10))
		w.Header().Set("X-RateLimit-Rule", "b9e1c6a1db2310102b2a7fb8ca9619c3")
		fail(w, http.StatusTooManyRequests, "Rate limit exceeded", "Rate limit of 10 requests per hour for Table API exceeded")
		return
	}
	if len(s.fails) > 0 {
		code := s.fails[0]
		s.fails = s.fails[1:]
		s.mu.Unlock()
		fail(w, code, http.StatusText(code), "injected failure")
		return
	}
	if names, column := s.nameTable(tableName); column != "" && r.Method == http.MethodGet && sysID == "" {
		s.mu.Unlock()
		s.queryNames(w, names, column, q)
		return
	}
	tbl, ok := s.tables[tableName]
	if !ok {
		s.mu.Unlock()
		fail(w, http.StatusBadRequest, "Invalid table "+tableName, "")
		return
	}
	if r.Method != http.MethodGet && s.readOnly {
		s.mu.Unlock()
		fail(w, http.StatusForbidden, "Operation Failed", "ACL Exception Insert Failed due to security constraints")
		return
	}
	if r.Method == http.MethodGet && sysID == "" && q.Get("sysparm_query") != "" && s.hold != nil {
		// The query runs now, as it arrives, and only its answer waits for the others: every
		// held lookup sees the table as it was before any of them was answered, which is the
		// race two instances can have, whatever order the scheduler wakes them in.
		hold := s.hold
		hold.arrived++
		if hold.arrived >= hold.want {
			close(hold.open)
			s.hold = nil
		}
		answer := httptest.NewRecorder()
		s.query(answer, tableName, tbl, q, v2)
		s.mu.Unlock()
		select {
		case <-hold.open:
		case <-time.After(hold.bound):
		}
		for k, v := range answer.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(answer.Code)
		_, _ = w.Write(answer.Body.Bytes())
		return
	}
	s.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && sysID == "":
		s.query(w, tableName, tbl, q, v2)
	case r.Method == http.MethodGet:
		rec, ok := tbl[sysID]
		if !ok {
			fail(w, http.StatusNotFound, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"result": s.render(rec, q)})
	case r.Method == http.MethodPost && sysID == "":
		fields, err := decodeBody(body)
		if err != nil {
			fail(w, http.StatusBadRequest, "Exception while reading request", err.Error())
			return
		}
		rec := s.newRecord(tableName)
		if msg := s.apply(rec, fields, q); msg != "" {
			s.seq--
			fail(w, http.StatusForbidden, "Operation Failed", msg)
			return
		}
		tbl[rec["sys_id"]] = rec
		w.Header().Set("Location", s.URL+"/api/now/table/"+tableName+"/"+rec["sys_id"])
		writeJSON(w, http.StatusCreated, map[string]any{"result": s.render(rec, q)})
	case (r.Method == http.MethodPatch || r.Method == http.MethodPut) && sysID != "":
		rec, ok := tbl[sysID]
		if !ok {
			fail(w, http.StatusNotFound, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
			return
		}
		fields, err := decodeBody(body)
		if err != nil {
			fail(w, http.StatusBadRequest, "Exception while reading request", err.Error())
			return
		}
		next := copyMap(rec)
		if msg := s.apply(next, fields, q); msg != "" {
			fail(w, http.StatusForbidden, "Operation Failed", msg)
			return
		}
		next["sys_updated_on"] = time.Now().UTC().Format("2006-01-02 15:04:05")
		tbl[sysID] = next
		writeJSON(w, http.StatusOK, map[string]any{"result": s.render(next, q)})
	case r.Method == http.MethodDelete && sysID != "":
		if _, ok := tbl[sysID]; !ok {
			fail(w, http.StatusNotFound, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
			return
		}
		delete(tbl, sysID)
		w.WriteHeader(http.StatusNoContent)
	default:
		fail(w, http.StatusMethodNotAllowed, "Method not Supported", "")
	}
}

// decodeBody reads a JSON object of field values; the instance takes numbers and booleans
// as their text.
func decodeBody(body []byte) (map[string]string, error) {
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range raw {
		switch t := v.(type) {
		case string:
			out[k] = t
		case float64:
			out[k] = strconv.FormatFloat(t, 'f', -1, 64)
		case bool:
			out[k] = strconv.FormatBool(t)
		case nil:
			out[k] = ""
		}
	}
	return out, nil
}

// apply writes fields into rec as the instance would: unknown columns are ignored, work
// notes go to the journal, display values are resolved when asked, and the data policy
// refuses a resolve without close code and notes. It returns the refusal, if any; the caller
// holds mu.
func (s *Server) apply(rec, fields map[string]string, q url.Values) string {
	display := q.Get("sysparm_input_display_value") == "true"
	var note string
	for k, v := range fields {
		switch {
		case k == "work_notes":
			note = v
		case k == "sys_id" || k == "number" || k == "priority" || k == "sys_created_on":
		case !s.hasColumn(k):
		default:
			if ref := references[k]; ref != "" && display && v != "" {
				names := s.opts.Groups
				if ref == "sys_user" {
					names = s.opts.Users
				}
				v = names[v]
			}
			rec[k] = v
		}
	}
	if rec["state"] == "6" || rec["state"] == "7" {
		var missing []string
		if rec["close_code"] == "" {
			missing = append(missing, "Resolution code")
		}
		if rec["close_notes"] == "" {
			missing = append(missing, "Resolution notes")
		}
		if len(missing) > 0 {
			return "Data Policy Exception: \n The following fields are mandatory: " + strings.Join(missing, ", ") + "\n"
		}
		if rec["resolved_at"] == "" {
			rec["resolved_at"] = time.Now().UTC().Format("2006-01-02 15:04:05")
		}
		rec["active"] = "false"
	} else {
		rec["resolved_at"], rec["active"] = "", "true"
	}
	rec["priority"] = priority(rec["impact"], rec["urgency"])
	if note != "" {
		s.journal[rec["sys_id"]] = append(s.journal[rec["sys_id"]], note)
	}
	return ""
}

// render shapes a record as the Table API returns it.
func (s *Server) render(rec map[string]string, q url.Values) map[string]any {
	exclude := q.Get("sysparm_exclude_reference_link") == "true"
	var want []string
	if f := q.Get("sysparm_fields"); f != "" {
		for _, c := range strings.Split(f, ",") {
			if c = strings.TrimSpace(c); c != "" && s.hasColumn(c) {
				want = append(want, c)
			}
		}
	} else {
		for c := range rec {
			want = append(want, c)
		}
	}
	out := map[string]any{}
	for _, c := range want {
		v := rec[c]
		if c == "work_notes" || c == "comments" {
			v = "" // journal fields read back empty
		}
		if ref := references[c]; ref != "" && !exclude && v != "" {
			out[c] = map[string]string{"link": s.URL + "/api/now/table/" + ref + "/" + v, "value": v}
			continue
		}
		out[c] = v
	}
	return out
}

// nameTable gives the group and user tables, read-only, from Options.Groups and Users.
func (s *Server) nameTable(table string) (map[string]string, string) {
	switch table {
	case "sys_user_group":
		return s.opts.Groups, "name"
	case "sys_user":
		return s.opts.Users, "user_name"
	}
	return nil, ""
}

// queryNames answers a query on the group or user table: column=value terms only, unknown
// fields dropped as on any table.
func (s *Server) queryNames(w http.ResponseWriter, names map[string]string, column string, q url.Values) {
	var want []string
	for _, part := range strings.Split(q.Get("sysparm_query"), "^") {
		if f, v, ok := strings.Cut(part, "="); ok && f == column {
			want = append(want, v)
		}
	}
	out := []map[string]any{}
	for name, id := range names {
		keep := true
		for _, v := range want {
			keep = keep && strings.EqualFold(name, v)
		}
		if keep {
			out = append(out, map[string]any{"sys_id": id, column: name})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["sys_id"].(string) < out[j]["sys_id"].(string) })
	w.Header().Set("X-Total-Count", strconv.Itoa(len(out)))
	writeJSON(w, http.StatusOK, map[string]any{"result": out})
}

type term struct {
	field, op, value string
	or               bool
}

// parseQuery reads an encoded query: terms joined by ^ (AND) or ^OR, operators = != ISEMPTY
// ISNOTEMPTY STARTSWITH, and ORDERBY / ORDERBYDESC. A term on an unknown field is dropped,
// unless the instance property says it matches nothing.
func (s *Server) parseQuery(qs string) (terms []term, order []string, none bool) {
	if qs == "" {
		return nil, nil, false
	}
	for _, part := range strings.Split(qs, "^") {
		or := false
		if strings.HasPrefix(part, "OR") && !strings.HasPrefix(part, "ORDERBY") {
			part, or = part[2:], true
		}
		switch {
		case strings.HasPrefix(part, "ORDERBYDESC"):
			order = append(order, "-"+part[len("ORDERBYDESC"):])
			continue
		case strings.HasPrefix(part, "ORDERBY"):
			order = append(order, part[len("ORDERBY"):])
			continue
		}
		var t term
		switch {
		case strings.HasSuffix(part, "ISNOTEMPTY"):
			t = term{field: strings.TrimSuffix(part, "ISNOTEMPTY"), op: "ISNOTEMPTY"}
		case strings.HasSuffix(part, "ISEMPTY"):
			t = term{field: strings.TrimSuffix(part, "ISEMPTY"), op: "ISEMPTY"}
		case strings.Contains(part, "!="):
			f, v, _ := strings.Cut(part, "!=")
			t = term{field: f, op: "!=", value: v}
		case strings.Contains(part, "STARTSWITH"):
			f, v, _ := strings.Cut(part, "STARTSWITH")
			t = term{field: f, op: "STARTSWITH", value: v}
		case strings.Contains(part, "="):
			f, v, _ := strings.Cut(part, "=")
			t = term{field: f, op: "=", value: v}
		default:
			continue
		}
		if !s.hasColumn(t.field) {
			if s.opts.InvalidQueryReturnsNoRows {
				none = true
			}
			continue
		}
		t.or = or
		terms = append(terms, t)
	}
	return terms, order, none
}

func (t term) match(rec map[string]string) bool {
	v := rec[t.field]
	switch t.op {
	case "=":
		// String comparisons on the instance's database are case-insensitive.
		return strings.EqualFold(v, t.value)
	case "!=":
		return !strings.EqualFold(v, t.value)
	case "ISEMPTY":
		return v == ""
	case "ISNOTEMPTY":
		return v != ""
	case "STARTSWITH":
		return len(v) >= len(t.value) && strings.EqualFold(v[:len(t.value)], t.value)
	}
	return false
}

// matches evaluates terms: OR binds a term to the one before it, AND joins the groups.
func matches(terms []term, rec map[string]string) bool {
	ok, group := true, false
	for i, t := range terms {
		if i > 0 && !t.or {
			ok = ok && group
			group = false
		}
		group = group || t.match(rec)
	}
	if len(terms) > 0 {
		ok = ok && group
	}
	return ok
}

func (s *Server) query(w http.ResponseWriter, tableName string, tbl map[string]map[string]string, q url.Values, v2 bool) {
	terms, order, none := s.parseQuery(q.Get("sysparm_query"))
	var rows []map[string]string
	if !none {
		for _, rec := range tbl {
			if matches(terms, rec) {
				rows = append(rows, rec)
			}
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		for _, o := range order {
			desc := strings.HasPrefix(o, "-")
			f := strings.TrimPrefix(o, "-")
			a, b := rows[i][f], rows[j][f]
			if a != b {
				return (a < b) != desc
			}
		}
		return rows[i]["number"] < rows[j]["number"]
	})
	total := len(rows)
	offset, _ := strconv.Atoi(q.Get("sysparm_offset"))
	limit := 10000
	if l, err := strconv.Atoi(q.Get("sysparm_limit")); err == nil && l > 0 {
		limit = l
	}
	rows = rows[min(offset, len(rows)):]
	rows = rows[:min(limit, len(rows))]
	if total == 0 && !v2 {
		fail(w, http.StatusNotFound, "No Record found", "Records matching query not found. Check query parameter or offset parameter")
		return
	}
	out := make([]map[string]any, 0, len(rows))
	for _, rec := range rows {
		out = append(out, s.render(rec, q))
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
	if offset+limit < total {
		w.Header().Set("Link", fmt.Sprintf(`<%s/api/now/table/%s?sysparm_offset=%d&sysparm_limit=%d>;rel="next"`, s.URL, tableName, offset+limit, limit))
	}
	writeJSON(w, http.StatusOK, map[string]any{"result": out})
}
