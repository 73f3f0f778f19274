// Package secret keeps credentials out of text: the handler knows every secret setting value at
// start, and everything it logs, answers or stores as an error passes through a Scrubber first.
package secret

import (
	"log/slog"
	"net/url"
	"sort"
	"strings"
)

// Mask replaces a secret wherever it appears.
const Mask = "[REDACTED]"

// minLen keeps short values ("1", "true") from masking half of every log line; real tokens
// and keys are far longer.
const minLen = 6

// Scrubber replaces known secret values.
type Scrubber struct {
	r *strings.Replacer
}

// New returns a Scrubber for values. Values shorter than six characters are ignored.
func New(values ...string) *Scrubber {
	uniq := map[string]bool{}
	for _, v := range values {
		v = strings.TrimSpace(v)
		if len(v) >= minLen {
			uniq[v] = true
		}
	}
	if len(uniq) == 0 {
		return &Scrubber{}
	}
	list := make([]string, 0, len(uniq))
	for v := range uniq {
		list = append(list, v)
	}
	// Longest first, so a secret that contains another is masked whole.
	sort.Slice(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	pairs := make([]string, 0, 2*len(list))
	for _, v := range list {
		pairs = append(pairs, v, Mask)
	}
	return &Scrubber{r: strings.NewReplacer(pairs...)}
}

// String returns s with every secret masked.
func (s *Scrubber) String(v string) string {
	if s == nil || s.r == nil {
		return v
	}
	return s.r.Replace(v)
}

// ReplaceAttr is a slog.HandlerOptions.ReplaceAttr that scrubs every string and error value.
func (s *Scrubber) ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(s.String(a.Value.String()))
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			a.Value = slog.StringValue(s.String(err.Error()))
		}
	}
	return a
}

// URL returns rawURL as it may be shown, with its password, every query value and every long
// path segment (a Sumo Logic HTTP source carries its collector code in the path) masked, and
// the values it masked, in plain and escaped form, for a Scrubber. A URL that does not parse
// is shown as Mask alone.
func URL(rawURL string) (shown string, values []string) {
	add := func(vs ...string) {
		for _, v := range vs {
			if v != "" {
				values = append(values, v)
			}
		}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return Mask, []string{rawURL}
	}
	if p, ok := u.User.Password(); ok {
		add(p, url.QueryEscape(p))
		u.User = url.UserPassword(u.User.Username(), Mask)
	}
	q := u.Query()
	for _, vs := range q {
		for i, v := range vs {
			add(v, url.QueryEscape(v))
			vs[i] = Mask
		}
	}
	segs := strings.Split(u.Path, "/")
	for i, s := range segs {
		if len(s) >= 16 {
			add(s, url.PathEscape(s))
			segs[i] = Mask
		}
	}
	u.Path, u.RawPath = strings.Join(segs, "/"), ""
	if u.RawQuery != "" {
		u.RawQuery = q.Encode()
	}
	// The mask's brackets would be escaped inside a URL; shown to a person, it reads better bare.
	return strings.ReplaceAll(u.String(), url.QueryEscape(Mask), Mask), values
}

// Error is an error whose text has had its secrets removed, while the cause stays reachable
// with errors.Is and errors.As.
type Error struct {
	Msg   string
	Cause error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Cause }
