package check

import (
	"fmt"

	"github.com/alertgate/gateway/testenv/load"
)

// CheckNoLoss (I2): every signal of a request answered 2xx has its
// resource, found by the signal's identity — unless a remediation
// controller deleted the episode the answers named (deleted: resource
// names).
func CheckNoLoss(s *State, records []load.Record, deleted map[string]bool) []Violation {
	var out []Violation
	seen := map[string]bool{}
	// Episodes the answers named, by signal.
	named := map[string][]string{}
	for _, r := range records {
		for _, o := range r.Outcomes {
			if o.Index >= 0 && o.Index < len(r.Signals) && o.Name != "" {
				k := r.Signals[o.Index].Key()
				named[k] = append(named[k], o.Name)
			}
		}
	}
	excused := func(key string) bool {
		for _, n := range named[key] {
			if deleted[n] {
				return true
			}
		}
		return false
	}
	for _, r := range records {
		if !r.Acknowledged() {
			continue
		}
		for _, sig := range r.Signals {
			key := sig.Key()
			if seen[key] || sig.Resolved {
				continue // a resolution opens nothing
			}
			seen[key] = true
			if len(s.ResourcesFor(sig)) == 0 && !excused(key) {
				out = append(out, Violation{Invariant: NoLoss, Detail: fmt.Sprintf("signal %s acknowledged %d (request %d at %s) has no resource",
					key, r.Status, r.Seq, r.Start.Format("15:04:05.000")), Signals: []string{key}, Requests: []int{r.Seq}})
			}
		}
	}
	return out
}
