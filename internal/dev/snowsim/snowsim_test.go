package snowsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func call(t *testing.T, s *Server, method, path, body string, auth func(*http.Request)) answer {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth == nil {
		req.SetBasicAuth("admin", "pw")
	} else {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("%s %s answered non-JSON %q", method, path, raw)
		}
	}
	return a
}

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.User, opts.Password = "admin", "pw"
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func q(v ...string) string {
	u := url.Values{}
	for i := 0; i+1 < len(v); i += 2 {
		u.Set(v[i], v[i+1])
	}
	return "?" + u.Encode()
}

func TestCreateAndQuery(t *testing.T) {
	s := start(t, Options{Groups: map[string]string{"SOC": "0123456789abcdef0123456789abcdef"}})
	a := call(t, s, "POST", "/api/now/v2/table/incident"+q("sysparm_input_display_value", "true"),
		`{"short_description":"x","correlation_id":"A1","impact":2,"urgency":"2","assignment_group":"SOC","no_such_field":"ignored"}`, nil)
	if a.status != 201 || !strings.HasPrefix(a.header.Get("Location"), s.URL+"/api/now/table/incident/") {
		t.Fatalf("create: %d Location %q", a.status, a.header.Get("Location"))
	}
	res := a.body["result"].(map[string]any)
	if res["impact"] != "2" || res["priority"] != "3" || res["state"] != "1" || !strings.HasPrefix(res["number"].(string), "INC") {
		t.Errorf("created record: %v", res)
	}
	if _, ok := res["no_such_field"]; ok {
		t.Error("an unknown field was stored")
	}
	ref, ok := res["assignment_group"].(map[string]any)
	if !ok || ref["value"] != "0123456789abcdef0123456789abcdef" || ref["link"] != s.URL+"/api/now/table/sys_user_group/0123456789abcdef0123456789abcdef" {
		t.Errorf("reference field %v, want {link,value} with the group resolved by name", res["assignment_group"])
	}
	s.Insert("incident", map[string]string{"correlation_id": "B2"})

	a = call(t, s, "GET", "/api/now/v2/table/incident"+q("sysparm_query", "correlation_id=a1", "sysparm_fields", "sys_id,correlation_id,assignment_group", "sysparm_exclude_reference_link", "true"), "", nil)
	rows := a.body["result"].([]any)
	if a.status != 200 || a.header.Get("X-Total-Count") != "1" || len(rows) != 1 {
		t.Fatalf("query: %d total %q rows %v", a.status, a.header.Get("X-Total-Count"), rows)
	}
	if row := rows[0].(map[string]any); len(row) != 3 || row["assignment_group"] != "0123456789abcdef0123456789abcdef" {
		t.Errorf("row %v, want the three fields, the reference as its sys_id", row)
	}
	a = call(t, s, "GET", "/api/now/v2/table/incident"+q("sysparm_query", "correlation_id=none"), "", nil)
	if a.status != 200 || len(a.body["result"].([]any)) != 0 || a.header.Get("X-Total-Count") != "0" {
		t.Errorf("v2 without a match: %d %v", a.status, a.body)
	}
	a = call(t, s, "GET", "/api/now/table/incident"+q("sysparm_query", "correlation_id=none"), "", nil)
	if a.status != 404 {
		t.Errorf("v1 without a match: %d, want 404", a.status)
	}
	// The instance's worst habit: a misspelled field is dropped and everything matches.
	a = call(t, s, "GET", "/api/now/v2/table/incident"+q("sysparm_query", "corelation_id=A1", "sysparm_limit", "1"), "", nil)
	if a.header.Get("X-Total-Count") != "2" || len(a.body["result"].([]any)) != 1 || a.header.Get("Link") == "" {
		t.Errorf("misspelled field: total %q rows %d Link %q, want 2 matches, 1 row and a next link", a.header.Get("X-Total-Count"), len(a.body["result"].([]any)), a.header.Get("Link"))
	}
	strict := start(t, Options{InvalidQueryReturnsNoRows: true})
	strict.Insert("incident", map[string]string{"correlation_id": "A1"})
	a = call(t, strict, "GET", "/api/now/v2/table/incident"+q("sysparm_query", "corelation_id=A1"), "", nil)
	if len(a.body["result"].([]any)) != 0 {
		t.Error("with glide.invalid_query.returns_no_rows a misspelled field matched")
	}
}

func TestOrderAndOr(t *testing.T) {
	s := start(t, Options{})
	s.Insert("incident", map[string]string{"correlation_id": "x", "state": "2"})
	s.Insert("incident", map[string]string{"correlation_id": "x", "state": "1"})
	s.Insert("incident", map[string]string{"correlation_id": "y", "state": "1"})
	a := call(t, s, "GET", "/api/now/v2/table/incident"+q("sysparm_query", "correlation_id=x^ORcorrelation_id=y^state=1^ORDERBYDESCnumber", "sysparm_fields", "number"), "", nil)
	rows := a.body["result"].([]any)
	if len(rows) != 2 || rows[0].(map[string]any)["number"] != "INC0010003" || rows[1].(map[string]any)["number"] != "INC0010002" {
		t.Errorf("rows %v", rows)
	}
}

func TestUpdateJournalAndPolicy(t *testing.T) {
	s := start(t, Options{})
	id := s.Insert("incident", map[string]string{"correlation_id": "x"})
	a := call(t, s, "PATCH", "/api/now/v2/table/incident/"+id, `{"state":"6"}`, nil)
	if a.status != 403 || !strings.Contains(a.body["error"].(map[string]any)["detail"].(string), "mandatory") || a.body["status"] != "failure" {
		t.Errorf("resolve without close fields: %d %v", a.status, a.body)
	}
	a = call(t, s, "PATCH", "/api/now/v2/table/incident/"+id, `{"state":"6","close_code":"Solution provided","close_notes":"n","work_notes":"note 1"}`, nil)
	if a.status != 200 || a.body["result"].(map[string]any)["work_notes"] != "" {
		t.Errorf("resolve: %d %v", a.status, a.body)
	}
	if notes := s.WorkNotes(id); len(notes) != 1 || notes[0] != "note 1" {
		t.Errorf("work notes %v", notes)
	}
	if a = call(t, s, "DELETE", "/api/now/v2/table/incident/"+id, "", nil); a.status != 204 {
		t.Errorf("delete: %d", a.status)
	}
	if a = call(t, s, "GET", "/api/now/v2/table/incident/"+id, "", nil); a.status != 404 {
		t.Errorf("read after delete: %d", a.status)
	}
	if a = call(t, s, "GET", "/api/now/v2/table/sn_si_incident", "", nil); a.status != 400 || a.body["error"].(map[string]any)["message"] != "Invalid table sn_si_incident" {
		t.Errorf("unknown table: %d %v", a.status, a.body)
	}
}

func TestFailuresAndAuth(t *testing.T) {
	s := start(t, Options{ClientID: "cid", ClientSecret: "csecret"})
	s.Throttle(1, 9)
	a := call(t, s, "GET", "/api/now/v2/table/incident", "", nil)
	if a.status != 429 || a.header.Get("Retry-After") != "9" || a.header.Get("X-RateLimit-Limit") == "" || a.header.Get("X-RateLimit-Reset") == "" ||
		a.body["error"].(map[string]any)["message"] != "Rate limit exceeded" {
		t.Errorf("throttled: %d %v %v", a.status, a.header, a.body)
	}
	if a = call(t, s, "GET", "/api/now/v2/table/incident", "", nil); a.status != 200 {
		t.Errorf("after the throttle: %d", a.status)
	}
	if a = call(t, s, "GET", "/api/now/v2/table/incident", "", func(r *http.Request) { r.SetBasicAuth("admin", "nope") }); a.status != 401 ||
		a.body["error"].(map[string]any)["message"] != "User Not Authenticated" {
		t.Errorf("wrong password: %d %v", a.status, a.body)
	}
	form := func(v url.Values) answer {
		resp, err := http.PostForm(s.URL+"/oauth_token.do", v)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return answer{status: resp.StatusCode, body: m}
	}
	tok := form(url.Values{"grant_type": {"password"}, "client_id": {"cid"}, "client_secret": {"csecret"}, "username": {"admin"}, "password": {"pw"}})
	if tok.status != 200 || tok.body["token_type"] != "Bearer" || tok.body["expires_in"] != float64(1799) {
		t.Fatalf("token: %d %v", tok.status, tok.body)
	}
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok.body["access_token"].(string)) }
	if a = call(t, s, "GET", "/api/now/v2/table/incident", "", bearer); a.status != 200 {
		t.Errorf("with the token: %d", a.status)
	}
	s.ExpireTokens()
	if a = call(t, s, "GET", "/api/now/v2/table/incident", "", bearer); a.status != 401 {
		t.Errorf("with an expired token: %d", a.status)
	}
	if cc := form(url.Values{"grant_type": {"client_credentials"}, "client_id": {"cid"}, "client_secret": {"csecret"}}); cc.status != 401 || cc.body["error_description"] != "access_denied" {
		t.Errorf("client_credentials while disabled: %d %v", cc.status, cc.body)
	}
	ref := form(url.Values{"grant_type": {"refresh_token"}, "client_id": {"cid"}, "client_secret": {"csecret"}, "refresh_token": {tok.body["refresh_token"].(string)}})
	if ref.status != 200 {
		t.Errorf("refresh grant: %d %v", ref.status, ref.body)
	}
}
