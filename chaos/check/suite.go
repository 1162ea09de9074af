package check

import (
	"slices"
	"time"

	"github.com/alertgate/gateway/testenv/load"
)

// Invariant names.
const (
	NoOrphan    = "I1 no orphan"
	NoLoss      = "I2 no loss"
	NoDuplicate = "I3 no duplicate"
	Consistent  = "I4 redis names open episodes"
	// NoPhantom: no resource exists for a signal that was never sent.
	NoPhantom = "I5 no phantom"
	// AllGiven: every alert given to a real Alertmanager is stored as
	// given (one episode, a member, resolved when resolved) in time.
	AllGiven     = "A1 every alert given is stored"
	NoLeak       = "no leak"
	Expectations = "expectation"
)

// Violation is a broken invariant, with what it concerns, so that a
// history can be searched for it without reading its text.
type Violation struct {
	Invariant string `json:"invariant"`
	Detail    string `json:"detail"`
	// Signals are the keys (load.Signal.Key) of the signals concerned.
	Signals []string `json:"signals,omitempty"`
	// Requests are the sequence numbers (load.Record.Seq) of the requests
	// concerned.
	Requests []int `json:"requests,omitempty"`
}

func (v Violation) String() string { return v.Invariant + ": " + v.Detail }

// Suite is the one set of invariant checks, used by the scenarios on their
// way, by the runner's final word and by random mode's history check
// alike. Its fields say what the moment of the check allows to be checked;
// I1–I3 are always checked.
type Suite struct {
	// Lease is the gateways' reservation lease: I1 allows no reservation
	// to live longer. Required.
	Lease time.Duration
	// Settled says the timeline let the state settle, so that I4 is
	// checked. Default: false.
	Settled bool
	// LeaseOver says a lease has passed since the last request, so that
	// no reservation may remain at all (I1). Default: false.
	LeaseOver bool
	// Answered says no request is in flight, every one recorded with its
	// answer, so that a resource for a signal never sent is caught (I5).
	// Default: false.
	Answered bool
	// Deleted are the resources a remediation controller deleted: an
	// acknowledged signal whose episode it deleted is not lost (I2).
	// Default: none.
	Deleted map[string]bool
}

// Invariants lists what Check checks, in report order, so that a report
// tells "held" from "never checked".
func (s Suite) Invariants() []string {
	out := []string{NoOrphan, NoLoss, NoDuplicate}
	if s.Settled {
		out = append(out, Consistent)
	}
	if s.Answered {
		out = append(out, NoPhantom)
	}
	return out
}

// Check holds a state and the history of requests that led to it against
// the suite.
func (s Suite) Check(st *State, history []load.Record) []Violation {
	vs := committedHaveResources(st)
	if s.LeaseOver {
		vs = append(vs, CheckNoReservation(st)...)
	} else {
		vs = append(vs, reservationsWithin(st, s.Lease)...)
	}
	vs = append(vs, CheckNoLoss(st, history, s.Deleted)...)
	vs = append(vs, CheckNoDuplicate(st)...)
	if s.Settled {
		vs = append(vs, CheckConsistent(st)...)
	}
	if s.Answered {
		vs = append(vs, CheckNoPhantom(st, history)...)
	}
	return vs
}

// Names is every invariant a run reports, in report order.
var Names = []string{NoOrphan, NoLoss, NoDuplicate, Consistent, NoPhantom, AllGiven, NoLeak, Expectations}

// distinct returns keys sorted, each once.
func distinct(keys []string) []string {
	out := slices.Clone(keys)
	slices.Sort(out)
	return slices.Compact(out)
}
