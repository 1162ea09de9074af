package check

import (
	"fmt"

	"github.com/alertgate/gateway/testenv/load"
)

// CheckNoLoss (I2): every signal of a request answered 2xx has its
// resource, found by the signal's identity.
func CheckNoLoss(s *State, records []load.Record) []Violation {
	var out []Violation
	seen := map[string]bool{}
	for _, r := range records {
		if !r.Acknowledged() {
			continue
		}
		for _, sig := range r.Signals {
			key := sig.Key()
			if seen[key] {
				continue
			}
			seen[key] = true
			if len(s.ResourcesFor(sig)) == 0 {
				out = append(out, Violation{Invariant: NoLoss, Detail: fmt.Sprintf("signal %s acknowledged %d (request %d at %s) has no resource",
					key, r.Status, r.Seq, r.Start.Format("15:04:05.000")), Signals: []string{key}, Requests: []int{r.Seq}})
			}
		}
	}
	return out
}
