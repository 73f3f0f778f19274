package httppost

import (
	"net/url"
	"slices"
	"strings"
)

const redacted = "REDACTED"

// redactor removes a destination's secrets from text meant for logs and errors: header
// values, URL query values, the URL's password and long path segments (a Sumo Logic HTTP
// source carries its collector code in the path).
type redactor struct {
	secrets []string
	url     string // the URL with its secrets replaced
}

func newRedactor(rawURL string, headers map[string]string) *redactor {
	r := &redactor{}
	add := func(s string) {
		s = strings.TrimSpace(s)
		if len(s) >= 4 && !slices.Contains(r.secrets, s) {
			r.secrets = append(r.secrets, s)
		}
	}
	for _, v := range headers {
		add(v)
		// "Bearer xyz", "Splunk xyz": the credential alone may be echoed back.
		if _, cred, ok := strings.Cut(strings.TrimSpace(v), " "); ok {
			add(cred)
		}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		add(rawURL)
		r.url = redacted
	} else {
		if p, ok := u.User.Password(); ok {
			add(p)
			add(url.QueryEscape(p))
			u.User = url.UserPassword(u.User.Username(), redacted)
		}
		q := u.Query()
		for k, vs := range q {
			for i, v := range vs {
				add(v)
				add(url.QueryEscape(v))
				vs[i] = redacted
			}
			q[k] = vs
		}
		segs := strings.Split(u.Path, "/")
		for i, s := range segs {
			if len(s) >= 16 {
				add(s)
				add(url.PathEscape(s))
				segs[i] = redacted
			}
		}
		u.Path, u.RawPath = strings.Join(segs, "/"), ""
		if u.RawQuery != "" {
			u.RawQuery = q.Encode()
		}
		r.url = u.String()
	}
	// Longest first, so a secret that contains another is removed whole.
	slices.SortFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
	return r
}

// String scrubs s.
func (r *redactor) String(s string) string {
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, redacted)
	}
	return s
}
