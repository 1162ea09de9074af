package check

import (
	"fmt"
	"sort"

	"github.com/alertgate/gateway/testenv/load"
)

// CheckNoDuplicate (I3): at most one open episode per fingerprint, and at
// most one per signal identity (so that a fingerprint that wrongly differs
// for the same signal is caught too). An episode a controller ended may
// have a successor.
func CheckNoDuplicate(s *State) []Violation {
	type identity struct{ key, source, kind string }
	byFP := map[string][]int{}
	byID := map[identity][]int{}
	for i, r := range s.Resources {
		if !Open(&s.Resources[i]) {
			continue
		}
		byFP[r.Spec.Fingerprint] = append(byFP[r.Spec.Fingerprint], i)
		id := identity{load.SignalOf(&r).Key(), r.Spec.Source, r.Spec.TargetResource.Kind}
		byID[id] = append(byID[id], i)
	}
	// names and keys of the resources at idx.
	of := func(idx []int) (names, keys []string) {
		for _, i := range idx {
			names = append(names, s.Resources[i].Name)
			keys = append(keys, load.SignalOf(&s.Resources[i]).Key())
		}
		sort.Strings(names)
		return names, distinct(keys)
	}
	var out []Violation
	for fp, idx := range byFP {
		if len(idx) > 1 {
			names, keys := of(idx)
			out = append(out, Violation{Invariant: NoDuplicate, Detail: fmt.Sprintf("fingerprint %s has %d open episodes: %v", short(fp), len(idx), names), Signals: keys})
		}
	}
	for id, idx := range byID {
		if len(idx) > 1 {
			names, keys := of(idx)
			out = append(out, Violation{Invariant: NoDuplicate, Detail: fmt.Sprintf("signal %s (%s, %s) has %d open episodes: %v", id.key, id.source, id.kind, len(idx), names), Signals: keys})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Detail < out[j].Detail })
	return out
}
