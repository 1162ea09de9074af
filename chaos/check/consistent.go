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
	kube := map[string]bool{}
	for _, r := range s.Resources {
		kube[r.Spec.Fingerprint] = true
	}
	var out []Violation
	for fp := range kube {
		if !redis[fp] {
			out = append(out, Violation{Consistent, fmt.Sprintf("resource for %s has no committed fingerprint in Redis", short(fp))})
		}
	}
	for fp := range redis {
		if !kube[fp] {
			out = append(out, Violation{Consistent, fmt.Sprintf("committed fingerprint %s has no resource", short(fp))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Detail < out[j].Detail })
	return out
}
