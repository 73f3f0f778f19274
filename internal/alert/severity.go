package alert

import "strings"

var severityNames = [...]string{
	SeverityNone:          "",
	SeverityInformational: "Informational",
	SeverityLow:           "Low",
	SeverityMedium:        "Medium",
	SeverityHigh:          "High",
}

// String returns Defender's name for s ("High", "Medium", "Low", "Informational"), or "" for
// SeverityNone and out-of-range values.
func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return ""
	}
	return severityNames[s]
}

// ParseSeverity reads Defender's severity names in any letter case and with surrounding
// spaces; "Information" (the Activity Log's spelling) counts as Informational. Anything else
// is SeverityNone.
func ParseSeverity(s string) Severity {
	s = strings.TrimSpace(s)
	switch {
	case strings.EqualFold(s, "High"):
		return SeverityHigh
	case strings.EqualFold(s, "Medium"):
		return SeverityMedium
	case strings.EqualFold(s, "Low"):
		return SeverityLow
	case strings.EqualFold(s, "Informational"), strings.EqualFold(s, "Information"):
		return SeverityInformational
	}
	return SeverityNone
}
