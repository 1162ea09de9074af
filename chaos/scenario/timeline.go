package scenario

import (
	"fmt"
	"sync"
	"time"

	"github.com/alertgate/gateway/chaos/check"
)

// Event is a point on a scenario's timeline.
type Event struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"` // phase, inject, heal, recovered, note
	Detail string    `json:"detail"`
}

// Recovery is the time from a heal to the first 201 after it.
type Recovery struct {
	Fault    string        `json:"fault"`
	HealedAt time.Time     `json:"healedAt"`
	After    time.Duration `json:"after"`
	OK       bool          `json:"ok"`
}

// Timeline records what happened in a run: its phases, faults and notes
// as events, the violations, the recoveries, and which invariants were
// checked, so that a report tells "held" from "never checked".
type Timeline struct {
	logf    func(format string, args ...any)
	onEvent func(Event)

	mu         sync.Mutex
	events     []Event
	phase      string
	violations []check.Violation
	reported   map[string]bool
	recoveries []Recovery
	checked    map[string]bool
}

// failNow aborts a scenario's Run; T.Run recovers it.
type failNow struct{}

// Logf prints progress.
func (l *Timeline) Logf(format string, args ...any) { l.logf(format, args...) }

// Phase starts a named phase of the timeline.
func (l *Timeline) Phase(name string) {
	l.mu.Lock()
	l.phase = name
	l.mu.Unlock()
	l.event("phase", name)
	l.logf("phase: %s", name)
}

// Note adds a free-form event (a measured figure, say).
func (l *Timeline) Note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.event("note", msg)
	l.logf("%s", msg)
}

func (l *Timeline) event(kind, detail string) Event {
	ev := Event{At: time.Now(), Kind: kind, Detail: detail}
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
	if l.onEvent != nil {
		l.onEvent(ev)
	}
	return ev
}

// Expect records a violation of an expectation unless ok.
func (l *Timeline) Expect(ok bool, format string, args ...any) bool {
	if !ok {
		l.Violate(check.Violation{Invariant: check.Expectations, Detail: fmt.Sprintf(format, args...)})
	}
	return ok
}

// Fatalf records a violation of an expectation and stops the scenario.
func (l *Timeline) Fatalf(format string, args ...any) {
	l.Violate(check.Violation{Invariant: check.Expectations, Detail: fmt.Sprintf(format, args...)})
	panic(failNow{})
}

// Violate records v once, its detail prefixed with the phase: the
// runner's final check sees again what a scenario's last check saw, and a
// lasting fault is counted once.
func (l *Timeline) Violate(v check.Violation) {
	key := v.String()
	l.mu.Lock()
	if l.reported[key] {
		l.mu.Unlock()
		return
	}
	if l.reported == nil {
		l.reported = map[string]bool{}
	}
	l.reported[key] = true
	if l.phase != "" {
		v.Detail = "[" + l.phase + "] " + v.Detail
	}
	l.violations = append(l.violations, v)
	l.mu.Unlock()
	l.logf("VIOLATION %s", v)
}

// MarkChecked records that the named invariants were checked.
func (l *Timeline) MarkChecked(names ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.checked == nil {
		l.checked = map[string]bool{}
	}
	for _, n := range names {
		l.checked[n] = true
	}
}

// Checked reports whether the named invariant was checked.
func (l *Timeline) Checked(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checked[name]
}

// recovered records a measured recovery.
func (l *Timeline) recovered(r Recovery) {
	l.mu.Lock()
	l.recoveries = append(l.recoveries, r)
	l.mu.Unlock()
}

// Violations returns what went wrong so far.
func (l *Timeline) Violations() []check.Violation {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]check.Violation(nil), l.violations...)
}

// Events returns the timeline so far.
func (l *Timeline) Events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// Recoveries returns the measured recoveries.
func (l *Timeline) Recoveries() []Recovery {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Recovery(nil), l.recoveries...)
}
