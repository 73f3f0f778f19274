package httppost

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func FuzzRetryAfter(f *testing.F) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{"", "0", "120", "-1", "99999999999999999999", now.Add(time.Minute).Format(http.TimeFormat), "Mon, 02 Jan 2006"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if d := retryAfter(v, now); d < 0 || d > maxRetryAfter {
			t.Fatalf("retryAfter(%q) = %v, outside [0, %v]", v, d, maxRetryAfter)
		}
	})
}

func FuzzCleanSnippet(f *testing.F) {
	for _, s := range []string{"", "<html>\r\n<body>502</body></html>", "\x00\xff\xfe", strings.Repeat("é", 300)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := cleanSnippet(b)
		if !utf8.ValidString(s) || strings.ContainsAny(s, "\r\n\x00") {
			t.Fatalf("cleanSnippet(%q) = %q", b, s)
		}
		if len(s) > len(": ")+200+len("…") {
			t.Fatalf("snippet of %d bytes", len(s))
		}
	})
}

func FuzzRedactURL(f *testing.F) {
	f.Add("LOGZIOTOKEN0123456789", "ZaVnC4dhaV1-MZMtRgtYk8YGvVQmaJ2yJxKJdn28eSaT9DXwMg", "Bearer abcdefgh")
	f.Add("a b&c=d", "seg/with/slash", "x")
	f.Fuzz(func(t *testing.T, token, code, header string) {
		raw := "https://intake.example/receiver/" + url.PathEscape(code) + "?token=" + url.QueryEscape(token)
		r := newRedactor(raw, map[string]string{"Authorization": header})
		// The shown URL keeps its shape, with every query value replaced and every long path
		// segment (a collector code) replaced.
		u, err := url.Parse(r.url)
		if err != nil {
			t.Fatalf("redacted URL %q does not parse: %v", r.url, err)
		}
		for k, vs := range u.Query() {
			for _, v := range vs {
				if v != "REDACTED" {
					t.Fatalf("query %s=%q shown in %q", k, v, r.url)
				}
			}
		}
		for _, seg := range strings.Split(u.Path, "/") {
			if len(seg) >= 16 && seg != "REDACTED" {
				t.Fatalf("long path segment %q shown in %q", seg, r.url)
			}
		}
		// Text that quotes the credentials back has them masked.
		for _, secret := range []string{token, header} {
			s := strings.TrimSpace(secret)
			msg := r.String("echo " + secret + " end")
			if len(s) >= 4 && strings.Contains(msg, s) && !strings.Contains("echo REDACTED end", s) {
				t.Fatalf("%q visible in %q", s, msg)
			}
		}
	})
}
