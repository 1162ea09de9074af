// Package normalize turns Alertmanager alerts and Kubernetes Events into
// pipeline.Signals and computes their fingerprint. It does no I/O.
package normalize

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/alertgate/gateway/internal/pipeline"
)

// fingerprintVersion starts the canonical tuple so that a future change of
// the tuple can never collide with today's fingerprints.
const fingerprintVersion = "alertgate.fingerprint/v1"

// Fingerprint is the SHA-256 hex digest of the canonical tuple
//
//	(version, source, signal name, namespace, target kind, target name, extra)
//
// where each element is written as its length in decimal bytes, ':', the
// bytes, ',' (a netstring), so no value can be confused with a separator.
// extra is empty unless the signal names no target at all (no namespace and
// no resource label); it is then the signal's labels, sorted by name, each
// written as two netstrings, so that distinct cluster-wide alerts stay
// distinct. Severity, annotations and times are not part of it: a change of
// severity or message is the same problem, seen again.
func Fingerprint(s *pipeline.Signal) string {
	// The tuple is built in a buffer on the stack (it is under 256 bytes
	// unless the names are long), and the digest hex-encoded in another:
	// the returned string is the only allocation.
	var buf [256]byte
	b := buf[:0]
	b = netstring(b, fingerprintVersion)
	b = netstring(b, string(s.Source))
	b = netstring(b, s.Name)
	b = netstring(b, s.Namespace)
	b = netstring(b, s.Target.Kind)
	b = netstring(b, s.Target.Name)
	if s.Target.Kind == "" && s.Target.Name == "" {
		keys := make([]string, 0, len(s.Labels))
		for k := range s.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		extra := make([]byte, 0, 64)
		for _, k := range keys {
			extra = netstring(extra, k)
			extra = netstring(extra, s.Labels[k])
		}
		b = netstring(b, string(extra))
	} else {
		b = netstring(b, "")
	}
	sum := sha256.Sum256(b)
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

func netstring(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	b = append(b, s...)
	return append(b, ',')
}

// MemberID identifies an alert within its fingerprint: the first 16 hex
// digits of the SHA-256 of its labels (sorted by name, as netstrings), so
// that two alerts sharing a fingerprint (one per container of a pod, a
// warning and a critical) are told apart and resolve separately.
func MemberID(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf [512]byte
	b := buf[:0]
	for _, k := range keys {
		b = netstring(b, k)
		b = netstring(b, labels[k])
	}
	sum := sha256.Sum256(b)
	var out [16]byte
	hex.Encode(out[:], sum[:8])
	return string(out[:])
}

// maxSignalName is the longest signal name the CRD holds (characters).
const maxSignalName = 253

// shortName returns name when the API can hold it, else a deterministic
// shortening: its first characters, "-" and 8 hex digits of its SHA-256,
// 253 characters in all. The fingerprint keeps the full name.
func shortName(name string) (string, bool) {
	if utf8.RuneCountInString(name) <= maxSignalName {
		return name, false
	}
	sum := sha256.Sum256([]byte(name))
	keep := maxSignalName - 9
	cut := 0
	for i := range name {
		if keep == 0 {
			cut = i
			break
		}
		keep--
	}
	return name[:cut] + "-" + hex.EncodeToString(sum[:4]), true
}
