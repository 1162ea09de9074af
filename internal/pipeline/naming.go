package pipeline

import (
	"strconv"
	"time"
)

// ResourceName is the deterministic name of the RemediationRequest for a
// fingerprint in a naming bucket: "rr-" + the first 32 hex digits of the
// fingerprint + "-" + the bucket in base 36. Every replica, every retry, and
// a gateway whose Redis lost its data all compute the same name, so the API
// server's AlreadyExists is the last line against duplicates. DNS-1123 valid
// and at most 63 characters.
func ResourceName(fingerprint string, bucket int64) string {
	fp := fingerprint
	if len(fp) > 32 {
		fp = fp[:32]
	}
	// Built in a stack buffer: the returned string is the only allocation.
	var buf [64]byte
	b := append(buf[:0], "rr-"...)
	b = append(b, fp...)
	b = append(b, '-')
	b = strconv.AppendInt(b, bucket, 36)
	return string(b)
}

// Bucket is the naming window a signal's occurrence falls in: its firing
// time (stable across re-deliveries of the same alert or event) divided by
// the dedup window.
func Bucket(s *Signal, window time.Duration) int64 {
	w := int64(window / time.Second)
	if w <= 0 {
		w = 1
	}
	t := s.Since().Unix()
	if t < 0 {
		t = 0
	}
	return t / w
}
