package normalize

import "strings"

// Severity maps the sender's severity to critical, warning or info when it
// is a known synonym, keeps any other value (lower-cased, bounded), and
// says "unknown" when there is none.
func Severity(v string) string {
	s := strings.ToLower(strings.TrimSpace(v))
	switch s {
	case "":
		return "unknown"
	case "critical", "crit", "page", "p1", "emergency", "alert", "fatal", "error", "high", "major":
		return "critical"
	case "warning", "warn", "p2", "p3", "medium", "minor":
		return "warning"
	case "info", "informational", "information", "notice", "low", "p4", "p5", "none":
		return "info"
	}
	return truncate(s, 63)
}
