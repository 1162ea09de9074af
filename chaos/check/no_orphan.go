package check

import (
	"fmt"
	"time"

	"github.com/alertgate/gateway/api/v1alpha1"
)

// CheckNoOrphan (I1): every committed record names an existing resource
// that carries its fingerprint, and no reservation lives longer than the
// lease.
func CheckNoOrphan(s *State, lease time.Duration) []Violation {
	byName := map[string]string{}
	for _, r := range s.Resources {
		byName[r.Name] = r.Spec.Fingerprint
	}
	var out []Violation
	for _, k := range s.Committed() {
		name := v1alpha1.EpisodeName(k.Fingerprint, k.Seq)
		fp, ok := byName[name]
		switch {
		case !ok:
			out = append(out, Violation{NoOrphan, fmt.Sprintf("fingerprint %s committed in Redis but resource %s does not exist", short(k.Fingerprint), name)})
		case fp != k.Fingerprint:
			out = append(out, Violation{NoOrphan, fmt.Sprintf("resource %s carries fingerprint %s, Redis says %s", name, short(fp), short(k.Fingerprint))})
		}
	}
	for _, k := range s.Reserved() {
		if k.TTL < 0 || k.TTL > lease {
			out = append(out, Violation{NoOrphan, fmt.Sprintf("reservation of %s has TTL %s, beyond the %s lease", short(k.Fingerprint), k.TTL, lease)})
		}
	}
	return out
}

// CheckNoReservation: after the lease has passed since the last request,
// no reservation may remain.
func CheckNoReservation(s *State) []Violation {
	var out []Violation
	for _, k := range s.Reserved() {
		out = append(out, Violation{NoOrphan, fmt.Sprintf("reservation of %s outlived its lease (TTL left %s)", short(k.Fingerprint), k.TTL)})
	}
	return out
}

func short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}
