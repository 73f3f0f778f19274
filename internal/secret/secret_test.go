package secret

import (
	"bytes"
	"errors"
	"log/slog"
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
