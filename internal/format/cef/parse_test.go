package cef_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/defender-siem/forwarder/internal/alert"
	"github.com/defender-siem/forwarder/internal/dev/alerttest"
	"github.com/defender-siem/forwarder/internal/format/cef"
)

// parsed is a CEF line as a strict reader of the CEF rules sees it.
type parsed struct {
	header    []string // unescaped: version, vendor, product, version, signature, name, severity
	rawHeader []string
	ext       map[string]string
	rawExt    map[string]string
	keys      []string
}

// parseCEF is a small reference reader, independent of the formatter: the header is seven
// fields split on unescaped '|' (only \\ and \| are escapes there); the extension is split on
// unescaped '=', the key being the last space-separated word before it; values unescape
// \\ \= \n \r, and any other backslash or a raw '=' is an error.
func parseCEF(s string) (parsed, error) {
	p := parsed{ext: map[string]string{}, rawExt: map[string]string{}}
	if !strings.HasPrefix(s, "CEF:") {
		return p, errors.New("no CEF: prefix")
	}
	s = s[len("CEF:"):]
	var cur, raw strings.Builder
	i := 0
	for len(p.header) < 7 {
		if i >= len(s) {
			return p, fmt.Errorf("only %d header fields", len(p.header))
		}
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && (s[i+1] == '\\' || s[i+1] == '|'):
			cur.WriteByte(s[i+1])
			raw.WriteString(s[i : i+2])
			i += 2
		case c == '\\':
			return p, fmt.Errorf("bad header escape at %d", i)
		case c == '|':
			p.header = append(p.header, cur.String())
			p.rawHeader = append(p.rawHeader, raw.String())
			cur.Reset()
			raw.Reset()
			i++
		default:
			cur.WriteByte(c)
			raw.WriteByte(c)
			i++
		}
	}
	ext := s[i:]
	// Unescaped '=' positions.
	var eqs []int
	for j := 0; j < len(ext); j++ {
		if ext[j] == '\\' {
			j++
			continue
		}
		if ext[j] == '=' {
			eqs = append(eqs, j)
		}
	}
	if len(eqs) == 0 {
		if strings.TrimSpace(ext) != "" {
			return p, fmt.Errorf("extension without a key: %q", ext)
		}
		return p, nil
	}
	keyStart := func(eq int) int {
		k := strings.LastIndexByte(ext[:eq], ' ')
		return k + 1
	}
	if strings.TrimLeft(ext[:keyStart(eqs[0])], " ") != "" {
		return p, fmt.Errorf("text before the first key: %q", ext[:eqs[0]])
	}
	for n, eq := range eqs {
		key := ext[keyStart(eq):eq]
		if key == "" {
			return p, fmt.Errorf("empty key at %d", eq)
		}
		end := len(ext)
		if n+1 < len(eqs) {
			end = keyStart(eqs[n+1]) - 1
			if end < eq+1 {
				return p, fmt.Errorf("no space before key at %d", eqs[n+1])
			}
		}
		rawv := ext[eq+1 : end]
		var v strings.Builder
		for j := 0; j < len(rawv); j++ {
			c := rawv[j]
			if c != '\\' {
				v.WriteByte(c)
				continue
			}
			if j+1 >= len(rawv) {
				return p, fmt.Errorf("dangling backslash in %s", key)
			}
			j++
			switch rawv[j] {
			case '\\', '=':
				v.WriteByte(rawv[j])
			case 'n':
				v.WriteByte('\n')
			case 'r':
				v.WriteByte('\r')
			default:
				return p, fmt.Errorf("bad escape \\%c in %s", rawv[j], key)
			}
		}
		if _, dup := p.ext[key]; dup {
			return p, fmt.Errorf("duplicate key %s", key)
		}
		p.ext[key] = v.String()
		p.rawExt[key] = rawv
		p.keys = append(p.keys, key)
	}
	return p, nil
}

// cleanValue is what an extension value should read back as.
func cleanValue(s string, max int) string {
	var out []byte
	var escLen int
	s = strings.TrimLeft(s, " ")
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		var add string
		w := n
		switch {
		case r == utf8.RuneError && n == 1:
			add, w = "\uFFFD", 3
		case r == '\\' || r == '=' || r == '\n' || r == '\r':
			add, w = string(r), 2
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			add, w = " ", 1
		default:
			add = s[i : i+n]
		}
		if escLen+w > max {
			break
		}
		if len(out) == 0 && add == " " {
			i += n
			continue
		}
		out = append(out, add...)
		escLen += w
		i += n
	}
	return strings.TrimRight(string(out), " ")
}

func FuzzFormat(f *testing.F) {
	f.Add(alerttest.HostileText, "Type|x", "desc\\=", "user", int64(1717416000123))
	f.Add("", "", "", "", int64(0))
	f.Add(" a=b \\", "\\|", "\n\r", "\xff\xc2", int64(-5))
	f.Add(string(alerttest.ReadSample(f, "mdc_repo_readme_eventhub_alert_sample.jsonc")), "‘é’", strings.Repeat("=", 700), "x y=z", int64(1))
	f.Fuzz(func(t *testing.T, text, typ, desc, user string, ms int64) {
		for _, header := range []string{"rfc3164", "rfc5424"} {
			cfg := cef.DefaultConfig()
			cfg.Syslog.Header = header
			cfg.Syslog.Now = func() time.Time { return time.Unix(0, 0) }
			cfg.NoExtensionSpace = len(text)%2 == 1
			fm, err := cef.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			rec := &alert.Record{
				Kind: alert.Kind(typ), ID: text, DisplayName: text, Status: user, Description: desc,
				SubscriptionID: user, ResourceID: text, Severity: alert.Severity(len(desc) % 6),
				Time: time.UnixMilli(ms),
			}
			if len(desc)%2 == 0 {
				rec.Alert = &alert.Alert{
					SystemAlertID: text, AlertType: typ, DisplayName: text, Description: desc,
					Intent: []string{user, text}, CompromisedEntity: user, TimeGenerated: time.UnixMilli(ms),
					ExtendedProperties: map[string]string{"ActionTaken": desc},
					Entities: []alert.Entity{
						{Type: "account", Fields: map[string]any{"Name": user}},
						{Type: "ip", Fields: map[string]any{"Address": text}},
					},
				}
			}
			out, err := fm.Format(nil, rec)
			if err != nil {
				t.Fatal(err)
			}
			p := checkCEF(t, out)
			pairs := cef.Extension(rec)
			n := 0
			for _, kv := range pairs {
				want := cleanValue(kv.Value, kv.Max)
				got, ok := p.ext[kv.Key]
				if want == "" {
					if ok {
						t.Fatalf("%s written for a blank value", kv.Key)
					}
					continue
				}
				n++
				if got != want {
					t.Fatalf("%s = %q, want %q", kv.Key, got, want)
				}
				if len(p.rawExt[kv.Key]) > kv.Max {
					t.Fatalf("%s escaped is %d bytes, limit %d", kv.Key, len(p.rawExt[kv.Key]), kv.Max)
				}
			}
			if n != len(p.keys) {
				t.Fatalf("keys %v, want %d", p.keys, n)
			}
		}
	})
}
