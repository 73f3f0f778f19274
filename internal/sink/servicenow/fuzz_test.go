package servicenow

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/alert"
)

// Whatever the instance answers, the error text is one printable, bounded line.
func FuzzErrorText(f *testing.F) {
	f.Add([]byte(`{"error":{"message":"Rate limit exceeded","detail":"Rate limit of 10 requests per hour for Table API exceeded"},"status":"failure"}`))
	f.Add([]byte(`{"error_description":"access_denied","error":"server_error"}`))
	f.Add([]byte("<html>\r\n<body>Login\u2028page</body></html>"))
	f.Add([]byte(`{"error":{"message":"a\nb","detail":{"x":1}}}`))
	f.Add([]byte("\xff\xfe\x00"))
	f.Fuzz(func(t *testing.T, body []byte) {
		s := errorText(body)
		if s == "" {
			return
		}
		if !strings.HasPrefix(s, ": ") || len(s) > 2+300+len("…") || !utf8.ValidString(s) {
			t.Fatalf("errorText = %q", s)
		}
		for _, r := range s {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
				t.Fatalf("errorText holds %U: %q", r, s)
			}
		}
	})
}

// An instance (or a proxy in front of it) that answers garbage makes Send fail the payload,
// never panic, never report a delivery it cannot have made.
func FuzzAnswers(f *testing.F) {
	f.Add([]byte(`{"result":[]}`), []byte(`{"result":{"sys_id":"a","number":"INC1","correlation_id":"fuzz-id"}}`), 200)
	f.Add([]byte(`{"result":[{"sys_id":1,"correlation_id":{"value":"fuzz-id"}}]}`), []byte(`{}`), 200)
	f.Add([]byte(`{"result":null}`), []byte(`null`), 201)
	f.Add([]byte(`[]`), []byte(`{"result":[]}`), 500)
	f.Fuzz(func(t *testing.T, lookup, created []byte, status int) {
		if status < 100 || status > 599 {
			status = 200
		}
		posted := false
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.Method {
			case http.MethodGet:
				_, _ = w.Write(lookup)
			case http.MethodPost:
				posted = true
				w.WriteHeader(status)
				_, _ = w.Write(created)
			default:
				w.WriteHeader(status)
				_, _ = w.Write(created)
			}
		}))
		defer srv.Close()
		cfg := DefaultConfig()
		cfg.URL, cfg.Username, cfg.Password, cfg.RequestTimeout = srv.URL, user, password, 5*time.Second
		c, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errs := c.Send(ctx, [][]byte{doc(t, "fuzz-id", "Active", alert.SeverityHigh, "")})
		if len(errs) != 1 {
			t.Fatalf("%d errors", len(errs))
		}
		if errs[0] == nil && posted && !strings.Contains(string(created), "fuzz-id") {
			t.Fatalf("delivered although the create answer %q does not carry the correlation id", created)
		}
		if errs[0] != nil && strings.Contains(errs[0].Error(), password) {
			t.Fatalf("the error shows the password: %v", errs[0])
		}
	})
}
