package normalize

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Limits bound what a signal may carry into Redis and into the resource,
// which must stay well under the API server's object size limit.
type Limits struct {
	// MaxValue bounds each label and annotation value, in bytes; longer
	// values are cut on a rune boundary and end with TruncatedMarker.
	// Default: 2048.
	MaxValue int
	// MaxPayload bounds the original payload kept in the resource, in
	// bytes. Default: 16384.
	MaxPayload int
	// MaxClockSkew is how far in the future a timestamp may lie; beyond
	// it, the timestamp is clamped to the receive time and the signal
	// says so. Default: 10m.
	MaxClockSkew time.Duration
}

// DefaultMaxClockSkew is the default of Limits.MaxClockSkew.
const DefaultMaxClockSkew = 10 * time.Minute

// maxKey bounds label and annotation names, in bytes.
const maxKey = 317

// TruncatedMarker ends every value the gateway shortened.
const TruncatedMarker = "…[truncated]"

func (l Limits) withDefaults() Limits {
	if l.MaxValue <= 0 {
		l.MaxValue = 2048
	}
	if l.MaxPayload <= 0 {
		l.MaxPayload = 16384
	}
	if l.MaxClockSkew <= 0 {
		l.MaxClockSkew = DefaultMaxClockSkew
	}
	return l
}

// clamp returns t, or now when t lies beyond the clock skew, with a
// warning naming field.
func (l Limits) clamp(t, now time.Time, field string, warnings []string) (time.Time, []string) {
	if !t.After(now.Add(l.MaxClockSkew)) {
		return t, warnings
	}
	return now, append(warnings, fmt.Sprintf("%s %s is more than %s in the future (sender clock skew?); stored as the receive time",
		field, t.UTC().Format(time.RFC3339), l.MaxClockSkew))
}

// truncate cuts s to at most max bytes (marker included) on a rune
// boundary.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max - len(TruncatedMarker)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + TruncatedMarker
}

// boundMap returns m with its keys bounded to 317 bytes and its values to
// max. When nothing needs shortening, which is nearly always, it returns m
// itself rather than a copy: the maps come from a freshly decoded payload
// and nothing modifies them afterwards.
func boundMap(m map[string]string, max int) map[string]string {
	if len(m) == 0 {
		return nil
	}
	within := true
	for k, v := range m {
		if len(k) > maxKey || len(v) > max {
			within = false
			break
		}
	}
	if within {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[truncate(k, maxKey)] = truncate(v, max)
	}
	return out
}

func boundPayload(p []byte, max int) ([]byte, bool) {
	if len(p) <= max {
		return p, false
	}
	return []byte(truncate(string(p), max)), true
}
