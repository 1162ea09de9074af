package check

import (
	"fmt"
	"sort"
)

// CheckNoDuplicate (I3): at most one open episode per fingerprint, and at
// most one per signal identity (so that a fingerprint that wrongly differs
// for the same signal is caught too).
func CheckNoDuplicate(s *State) []Violation {
	byFP := map[string][]string{}
	byID := map[string][]string{}
	for _, r := range s.OpenResources() {
		byFP[r.Spec.Fingerprint] = append(byFP[r.Spec.Fingerprint], r.Name)
		// Named as load.Signal.Key names it, so that the random checker
		// finds the requests that carried it.
		t := r.Spec.TargetResource
		id := fmt.Sprintf("%s/%s/%s (%s, %s)", t.Namespace, t.Name, r.Spec.SignalName, r.Spec.Source, t.Kind)
		byID[id] = append(byID[id], r.Name)
	}
	var out []Violation
	for fp, names := range byFP {
		if len(names) > 1 {
			sort.Strings(names)
			out = append(out, Violation{NoDuplicate, fmt.Sprintf("fingerprint %s has %d open episodes: %v", short(fp), len(names), names)})
		}
	}
	for id, names := range byID {
		if len(names) > 1 {
			sort.Strings(names)
			out = append(out, Violation{NoDuplicate, fmt.Sprintf("signal %s has %d open episodes: %v", id, len(names), names)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Detail < out[j].Detail })
	return out
}
