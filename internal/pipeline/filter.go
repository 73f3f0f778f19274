package pipeline

import (
	"slices"
	"strings"

	"github.com/defender-siem/forwarder/internal/alert"
)

// Filter decides which records a destination takes.
type Filter struct {
	// Kinds lists the kinds the destination takes; empty means every kind.
	Kinds []alert.Kind
	// MinSeverity drops records below it. Records without a severity (scores, unknown
	// records) pass only when MinSeverity is SeverityNone.
	MinSeverity alert.Severity
	// Subscriptions, when not empty, is the only subscriptions taken (lower-case ids).
	Subscriptions []string
	// ExcludeSubscriptions are never taken (lower-case ids).
	ExcludeSubscriptions []string
}

// Accepts reports whether rec passes the filter.
func (f *Filter) Accepts(rec *alert.Record) bool {
	if len(f.Kinds) > 0 && !slices.Contains(f.Kinds, rec.Kind) {
		return false
	}
	if f.MinSeverity > alert.SeverityNone && rec.Severity < f.MinSeverity {
		return false
	}
	if len(f.Subscriptions) > 0 || len(f.ExcludeSubscriptions) > 0 {
		sub := strings.ToLower(rec.SubscriptionID)
		if len(f.Subscriptions) > 0 && !slices.Contains(f.Subscriptions, sub) {
			return false
		}
		if slices.Contains(f.ExcludeSubscriptions, sub) {
			return false
		}
	}
	return true
}
