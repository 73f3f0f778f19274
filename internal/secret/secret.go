// Package secret keeps credentials out of text: the handler knows every secret setting value at
// start, and everything it logs, answers or stores as an error passes through a Scrubber first.
package secret

import (
	"log/slog"
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
