package check

import (
	"fmt"
	"sort"

	"github.com/alertgate/gateway/api/v1alpha1"

	"github.com/alertgate/gateway/testenv/load"
)

// CheckConsistent (I4): every committed record in Redis names the open
// episode of its fingerprint (for the scenario's namespace and prefix),
// checked where the scenario's timeline says the state has settled. The
// converse is not an invariant: Redis is the fast path, and an open episode
// whose record was lost is found again from the API server.
func CheckConsistent(s *State) []Violation {
	byName := map[string]*v1alpha1.RemediationRequest{}
	for i := range s.Resources {
		byName[s.Resources[i].Name] = &s.Resources[i]
	}
	var out []Violation
	for _, k := range s.Committed() {
		name := v1alpha1.EpisodeName(k.Fingerprint, k.Seq)
		switch r := byName[name]; {
		case r == nil:
			out = append(out, Violation{Invariant: Consistent, Detail: fmt.Sprintf("record of %s names episode %s, which does not exist", short(k.Fingerprint), name)})
		case !Open(r):
			out = append(out, Violation{Invariant: Consistent, Detail: fmt.Sprintf("record of %s names episode %s, which has ended (phase %q, deleting %v)",
				short(k.Fingerprint), name, r.Status.Phase, r.DeletionTimestamp != nil), Signals: []string{load.SignalOf(r).Key()}})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Detail < out[j].Detail })
	return out
}
