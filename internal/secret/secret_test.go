package secret

import (
	"bytes"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

func TestScrubber(t *testing.T) {
	s := New("abcdef-token", "abcdef", "tiny", "")
	tests := []struct{ in, want string }{
		{"Authorization: Splunk abcdef-token", "Authorization: Splunk " + Mask},
		{"key=abcdef;", "key=" + Mask + ";"},
		{"tiny is not masked", "tiny is not masked"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := s.String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := (*Scrubber)(nil).String("x"); got != "x" {
		t.Errorf("nil scrubber changed text: %q", got)
	}
}

func TestReplaceAttrScrubsLogs(t *testing.T) {
	var buf bytes.Buffer
	s := New("s3cr3t-value")
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: s.ReplaceAttr}))
	log.Error("send failed s3cr3t-value", "err", errors.New("401 for token s3cr3t-value"), "url", "https://x/?token=s3cr3t-value")
	out := buf.String()
	if strings.Contains(out, "s3cr3t-value") {
		t.Errorf("secret in log line: %s", out)
	}
	if strings.Count(out, Mask) != 3 {
		t.Errorf("want 3 masks (message, err, url): %s", out)
	}
}

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://oc.example:8085/webhook", "https://oc.example:8085/webhook"},
		{"https://listener.logz.io:8071/?token=abcdefABCDEF1234&type=defender", "https://listener.logz.io:8071/?token=[REDACTED]&type=[REDACTED]"},
		{"https://endpoint4.collection.sumologic.com/receiver/v1/http/ZaVnC4dhaV1-MZMtRgtYk8YGvVQ==", "https://endpoint4.collection.sumologic.com/receiver/v1/http/[REDACTED]"},
		{"https://user:hunter22@intake.example/in", "https://user:[REDACTED]@intake.example/in"},
		{"://not a url", "[REDACTED]"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got, _ := URL(tt.in); got != tt.want {
				t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzURL(f *testing.F) {
	f.Add("LOGZIOTOKEN0123456789", "ZaVnC4dhaV1-MZMtRgtYk8YGvVQmaJ2yJxKJdn28eSaT9DXwMg")
	f.Add("a b&c=d", "seg/with/slash")
	f.Fuzz(func(t *testing.T, token, code string) {
		raw := "https://intake.example/receiver/" + url.PathEscape(code) + "?token=" + url.QueryEscape(token)
		shown, values := URL(raw)
		// The shown URL keeps its shape, with every query value and every long path segment
		// (a collector code) masked.
		u, err := url.Parse(strings.ReplaceAll(shown, Mask, "M"))
		if err != nil {
			t.Fatalf("shown URL %q does not parse: %v", shown, err)
		}
		for k, vs := range u.Query() {
			for _, v := range vs {
				if v != "M" {
					t.Fatalf("query %s=%q shown in %q", k, v, shown)
				}
			}
		}
		for _, seg := range strings.Split(u.Path, "/") {
			if len(seg) >= 16 {
				t.Fatalf("long path segment %q shown in %q", seg, shown)
			}
		}
		// Text that quotes the credential back has it masked by a Scrubber of the values.
		s := strings.TrimSpace(token)
		msg := New(values...).String("echo " + token + " end")
		if len(s) >= minLen && strings.Contains(msg, s) && !strings.Contains("echo "+Mask+" end", s) {
			t.Fatalf("%q visible in %q", s, msg)
		}
	})
}
