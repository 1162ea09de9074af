package check

import (
	"fmt"
	"sort"
)

// CheckConsistent (I4): the committed fingerprints in Redis are exactly the
// fingerprints of the resources (for the scenario's namespace and prefix).
func CheckConsistent(s *State) []Violation {
	redis := map[string]bool{}
	for _, k := range s.Committed() {
		redis[k.Fingerprint] = true
	}
	kube := map[string][]string{}
	for _, r := range s.Resources {
		kube[r.Spec.Fingerprint] = append(kube[r.Spec.Fingerprint], SignalOf(r).Key())
	}
	var out []Violation
	for fp, keys := range kube {
		if !redis[fp] {
			out = append(out, Violation{Invariant: Consistent, Detail: fmt.Sprintf("resource for %s has no committed fingerprint in Redis", short(fp)), Signals: distinct(keys)})
		}
	}
	for fp := range redis {
		if _, ok := kube[fp]; !ok {
			out = append(out, Violation{Invariant: Consistent, Detail: fmt.Sprintf("committed fingerprint %s has no resource", short(fp))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Detail < out[j].Detail })
	return out
}
