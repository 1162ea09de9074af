package check

import (
	"fmt"

	"github.com/alertgate/gateway/testenv/load"
)

// CheckNoPhantom (I5): every resource is for a signal some request
// carried. Only once no request is in flight: a resource may exist before
// its request's answer, and so its record, comes back.
func CheckNoPhantom(s *State, records []load.Record) []Violation {
	sent := map[string]bool{}
	for _, r := range records {
		for _, sig := range r.Signals {
			sent[sig.Key()] = true
		}
	}
	var out []Violation
	for _, r := range s.Resources {
		key := load.SignalOf(&r).Key()
		if !sent[key] {
			out = append(out, Violation{Invariant: NoPhantom, Detail: fmt.Sprintf("resource %s is for %s, which was never sent", r.Name, key),
				Signals: []string{key}})
		}
	}
	return out
}
