package check

import (
	"fmt"
	"time"

	"github.com/alertgate/gateway/api/v1alpha1"

	"github.com/alertgate/gateway/testenv/load"
)

// CheckNoOrphan (I1): every committed record names an existing resource
// that carries its fingerprint, and no reservation lives longer than the
// lease.
func CheckNoOrphan(s *State, lease time.Duration) []Violation {
	return append(committedHaveResources(s), reservationsWithin(s, lease)...)
}

// CheckNoReservation (I1, once a lease has passed since the last request):
// no reservation may remain.
func CheckNoReservation(s *State) []Violation {
	var out []Violation
	for _, k := range s.Reserved() {
		out = append(out, Violation{Invariant: NoOrphan, Detail: fmt.Sprintf("reservation of %s outlived its lease (TTL left %s)", short(k.Fingerprint), k.TTL)})
	}
	return out
}

func committedHaveResources(s *State) []Violation {
	byName := map[string]int{}
	for i, r := range s.Resources {
		byName[r.Name] = i
	}
	var out []Violation
	for _, k := range s.Committed() {
		name := v1alpha1.EpisodeName(k.Fingerprint, k.Seq)
		i, ok := byName[name]
		switch {
		case !ok:
			out = append(out, Violation{Invariant: NoOrphan, Detail: fmt.Sprintf("fingerprint %s committed in Redis but its episode %s does not exist", short(k.Fingerprint), name)})
		case s.Resources[i].Spec.Fingerprint != k.Fingerprint:
			r := s.Resources[i]
			out = append(out, Violation{Invariant: NoOrphan, Detail: fmt.Sprintf("resource %s carries fingerprint %s, Redis says %s", name, short(r.Spec.Fingerprint), short(k.Fingerprint)),
				Signals: []string{load.SignalOf(&r).Key()}})
		}
	}
	return out
}

func reservationsWithin(s *State, lease time.Duration) []Violation {
	var out []Violation
	for _, k := range s.Reserved() {
		if k.TTL < 0 || k.TTL > lease {
			out = append(out, Violation{Invariant: NoOrphan, Detail: fmt.Sprintf("reservation of %s has TTL %s, beyond the %s lease", short(k.Fingerprint), k.TTL, lease)})
		}
	}
	return out
}

func short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}
