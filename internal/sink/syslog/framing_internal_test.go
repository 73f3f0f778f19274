package syslog

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendFrame(t *testing.T) {
	tests := []struct {
		name string
		lf   bool
		in   []string
		want string
	}{
		{"octet count in bytes", false, []string{"\xef\xbb\xbfé|x"}, "7 \xef\xbb\xbfé|x"},
		{"octet no trailing LF, raw LF kept", false, []string{"a\nb", "cd"}, "3 a\nb2 cd"},
		{"lf appends LF", true, []string{"<13>1 - - - - - - m", "x"}, "<13>1 - - - - - - m\nx\n"},
		{"lf replaces CR LF NUL", true, []string{"a\r\nb\x00c"}, "a  b c\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{lf: tt.lf}
			var buf []byte
			for _, p := range tt.in {
				buf = c.appendFrame(buf, []byte(p))
			}
			if string(buf) != tt.want {
				t.Errorf("got %q, want %q", buf, tt.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	m := TruncationMarker
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"fits", "abc", 3, "abc"},
		{"cut", strings.Repeat("a", 30), 20, strings.Repeat("a", 20-len(m)) + m},
		{"two-byte char at the cut", strings.Repeat("a", 5) + "é" + strings.Repeat("b", 20), 20, "aaaaa" + m},
		{"escape at the cut", strings.Repeat("a", 5) + `\]` + strings.Repeat("b", 20), 20, "aaaaa" + m},
		{"escaped backslash at the cut kept", strings.Repeat("a", 4) + `\\` + strings.Repeat("b", 20), 20, `aaaa\\` + m},
		{"tiny max", "abcdef", 1, m},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(Truncate(nil, []byte(tt.in), tt.max))
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzFraming(f *testing.F) {
	f.Add([]byte("<13>1 - - - - - - hello\nworld"), 480)
	f.Add([]byte("\xef\xbb\xbf"+strings.Repeat("é\\", 400)), 481)
	f.Add([]byte(strings.Repeat(`\`, 600)), 500)
	f.Fuzz(func(t *testing.T, p []byte, max int) {
		if len(p) == 0 {
			return
		}
		// Octet counting: the frame parses back to exactly the payload.
		oc := (&Client{}).appendFrame(nil, p)
		sp := bytes.IndexByte(oc, ' ')
		n, err := strconv.Atoi(string(oc[:sp]))
		if err != nil || n != len(p) || oc[0] == '0' || !bytes.Equal(oc[sp+1:], p) {
			t.Fatalf("octet frame %q", oc)
		}
		// LF: one frame, one LF at the end.
		lf := (&Client{lf: true}).appendFrame(nil, p)
		if bytes.IndexAny(lf[:len(lf)-1], "\r\n\x00") >= 0 || lf[len(lf)-1] != '\n' || len(lf) != len(p)+1 {
			t.Fatalf("LF frame %q", lf)
		}
		// UDP truncation.
		max = 480 + (max&0xffff)%2000
		tr := Truncate(nil, p, max)
		if len(tr) > max {
			t.Fatalf("%d bytes > %d", len(tr), max)
		}
		if len(p) <= max {
			if !bytes.Equal(tr, p) {
				t.Fatal("short payload changed")
			}
			return
		}
		body := bytes.TrimSuffix(tr, []byte(TruncationMarker))
		if len(body) == len(tr) || !bytes.HasPrefix(p, body) {
			t.Fatalf("truncated %q", tr)
		}
		if utf8.Valid(p) && !utf8.Valid(tr) {
			t.Fatal("cut inside a character")
		}
		k := 0
		for i := len(body) - 1; i >= 0 && body[i] == '\\'; i-- {
			k++
		}
		if k%2 == 1 {
			t.Fatal("cut inside an escape")
		}
	})
}
