package destination

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/defender-siem/forwarder/internal/config"
)

// reader reads one destination's settings and collects every problem, each naming its full
// setting, so that start-up reports them all at once.
type reader struct {
	d    config.Destination
	errs []error
	used map[string]bool
}

func newReader(d config.Destination) *reader {
	return &reader{d: d, used: map[string]bool{}}
}

func (r *reader) name(key string) string {
	return "Destinations__" + r.d.Name + "__" + key
}

func (r *reader) fail(key, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s: %s", r.name(key), fmt.Sprintf(format, args...)))
}

func (r *reader) raw(key string) (string, bool) {
	r.used[strings.ToLower(key)] = true
	v, ok := r.d.Get(key)
	if !ok {
		return "", false
	}
	v = strings.TrimSpace(v)
	return v, v != ""
}

func (r *reader) str(key, def string) string {
	if v, ok := r.raw(key); ok {
		return v
	}
	return def
}

// secret reads a setting whose value must never be echoed.
func (r *reader) secret(key string) string {
	v, _ := r.raw(key)
	return v
}

func (r *reader) required(key, what string) string {
	v, ok := r.raw(key)
	if !ok {
		r.fail(key, "missing: %s", what)
	}
	return v
}

func (r *reader) boolean(key string, def bool) bool {
	v, ok := r.raw(key)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(key, "%q is not true or false", v)
		return def
	}
	return b
}

func (r *reader) integer(key string, def, lo, hi int) int {
	v, ok := r.raw(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.fail(key, "%q: want a whole number from %d to %d", v, lo, hi)
		return def
	}
	return n
}

func (r *reader) duration(key string, def time.Duration) time.Duration {
	v, ok := r.raw(key)
	if !ok {
		return def
	}
	d, err := config.ParseDuration(v)
	if err != nil || d <= 0 {
		r.fail(key, "%q: want a positive duration such as 00:00:30 or 30s", v)
		return def
	}
	return d
}

func (r *reader) oneOf(key, def string, allowed ...string) string {
	v, ok := r.raw(key)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	r.fail(key, "%q: want one of %s", v, strings.Join(allowed, ", "))
	return def
}

func (r *reader) list(key string) []string {
	v, ok := r.raw(key)
	if !ok {
		return nil
	}
	var out []string
	for _, f := range strings.FieldsFunc(v, func(c rune) bool { return c == ',' || c == ';' || c == ' ' }) {
		out = append(out, f)
	}
	return out
}

// prefixed returns the settings under key__ (Headers__X-Api-Key …) with their names as written
// after the prefix, lower-cased.
func (r *reader) prefixed(key string) map[string]string {
	p := strings.ToLower(key) + "__"
	out := map[string]string{}
	for k, v := range r.d.Settings {
		if rest, ok := strings.CutPrefix(k, p); ok && rest != "" {
			r.used[k] = true
			out[rest] = v
		}
	}
	return out
}

// check wraps a package's Validate error so it names the destination.
func (r *reader) check(err error) {
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("Destinations__%s: %w", r.d.Name, err))
	}
}

// unknown reports settings nobody read: a typo must not be silently ignored.
func (r *reader) unknown() {
	for k := range r.d.Settings {
		if !r.used[k] {
			r.errs = append(r.errs, fmt.Errorf("%s: unknown setting for a %s destination", r.name(k), r.d.Type))
		}
	}
}

func (r *reader) err() error { return errors.Join(r.errs...) }
