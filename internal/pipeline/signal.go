// Package pipeline holds the gateway's request path: the normalized Signal,
// the per-signal Outcome, the dependency error kinds, and the Processor that
// runs claim → create → commit for a batch. It knows its dependencies only
// through the small interfaces in this package.
package pipeline

import "time"

// Source says where a signal came from.
type Source string

const (
	SourcePrometheus      Source = "prometheus"
	SourceKubernetesEvent Source = "kubernetes-event"
)

// Target is the Kubernetes object a signal is about.
type Target struct {
	Kind      string
	Name      string
	Namespace string
}

// Signal is one alert or event after normalization.
type Signal struct {
	// Fingerprint is the SHA-256 hex digest of the canonical tuple
	// (see normalize.Fingerprint).
	Fingerprint string
	Name        string
	Severity    string
	Source      Source
	Namespace   string
	Target      Target
	Labels      map[string]string
	Annotations map[string]string
	// FiringTime is when the condition began according to the sender,
	// clamped to ReceivedTime when it lies beyond the allowed clock skew;
	// zero when the sender gave none (ReceivedTime is used instead).
	FiringTime   time.Time
	ReceivedTime time.Time
	// Member identifies the alert within its fingerprint (its label set,
	// see normalize.MemberID); empty for Kubernetes Events, which have no
	// members and never resolve.
	Member string
	// StartsAt is the sender's own start of this firing, unclamped: it
	// orders the member's firings and resolutions, which come from the
	// same clock.
	StartsAt time.Time
	// Resolved signals never create a resource; ResolvedAt is the sender's
	// end time.
	Resolved   bool
	ResolvedAt time.Time
	// Payload is the signal as received, bounded by the ingest limits.
	Payload          []byte
	PayloadTruncated bool
	// Index is the signal's position in its payload.
	Index int
	// Warnings say what was changed to store the signal (a timestamp
	// clamped, a name shortened).
	Warnings []string
}

// Since returns the time the signal's occurrence began: the firing time, or
// the received time when the sender gave none.
func (s *Signal) Since() time.Time {
	if s.FiringTime.IsZero() {
		return s.ReceivedTime
	}
	return s.FiringTime
}

// Member is one alert of an episode and the latest of its notifications
// (see v1alpha1.Member).
type Member struct {
	ID string
	// FiringSince is the startsAt of its latest firing.
	FiringSince time.Time
	// ResolvedSince and ResolvedAt: the startsAt and endsAt of the firing
	// its latest resolution ended; zero when it has not resolved.
	ResolvedSince time.Time
	ResolvedAt    time.Time
}

// MemberOf is the member a signal notifies, or false when it has none.
func MemberOf(s *Signal) (Member, bool) {
	if s.Member == "" {
		return Member{}, false
	}
	m := Member{ID: s.Member, FiringSince: s.StartsAt}
	if s.Resolved {
		m.ResolvedSince = s.StartsAt
		m.ResolvedAt = s.ResolvedAt
		if m.ResolvedAt.IsZero() {
			m.ResolvedAt = s.ReceivedTime
		}
	}
	return m, true
}

// Rejection is one item of a request that could not be stored, with the
// reason; the others are stored all the same.
type Rejection struct {
	// Index is the item's position in the payload (alerts[i]).
	Index int `json:"index"`
	// Field is the JSON path of the offending field, e.g.
	// "alerts[2].labels".
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// Request is one HTTP delivery: a batch of signals from one sender.
type Request struct {
	ID      string
	Source  Source
	Signals []Signal
	// Ignored counts items that were valid but not actionable (Normal
	// events); they are acknowledged and never reach the processor.
	Ignored int
	// Rejected are the items that were invalid; the valid ones are in
	// Signals.
	Rejected []Rejection
}

// Status says what happened to one signal.
type Status string

const (
	StatusCreated   Status = "created"
	StatusDuplicate Status = "duplicate"
	StatusResolved  Status = "resolved"
	// StatusRejected: the signal could not be stored (see Result.Rejected).
	StatusRejected Status = "rejected"
)

// Outcome is the answer for one signal.
type Outcome struct {
	// Index is the signal's position in its payload (alerts[i]).
	Index           int    `json:"index"`
	Fingerprint     string `json:"fingerprint"`
	Namespace       string `json:"namespace,omitempty"`
	Name            string `json:"name,omitempty"`
	Status          Status `json:"status"`
	Duplicate       bool   `json:"duplicate"`
	OccurrenceCount int64  `json:"occurrenceCount,omitempty"`
	// Warnings say what was changed to store the signal.
	Warnings []string `json:"warnings,omitempty"`
}

// Result is the answer for a whole request: one outcome per stored signal,
// in the order of the request, and the items that were rejected.
type Result struct {
	Outcomes []Outcome
	Ignored  int
	Rejected []Rejection
}

// Created reports whether at least one resource was created.
func (r *Result) Created() bool {
	for _, o := range r.Outcomes {
		if o.Status == StatusCreated {
			return true
		}
	}
	return false
}

// Stored reports whether anything of the request was handled: a signal
// stored or resolved, or an item ignored as not actionable.
func (r *Result) Stored() bool {
	if r.Ignored > 0 {
		return true
	}
	for _, o := range r.Outcomes {
		if o.Status != StatusRejected {
			return true
		}
	}
	return false
}

// Duplicates reports whether every active signal was a duplicate.
func (r *Result) Duplicates() bool {
	n := 0
	for _, o := range r.Outcomes {
		switch o.Status {
		case StatusCreated:
			return false
		case StatusDuplicate:
			n++
		}
	}
	return n > 0
}
