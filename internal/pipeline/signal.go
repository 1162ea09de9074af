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
	// FiringTime is when the condition began according to the sender;
	// zero when the sender gave none (ReceivedTime is used instead).
	FiringTime   time.Time
	ReceivedTime time.Time
	// Resolved signals never create a resource; ResolvedAt is the sender's
	// end time.
	Resolved   bool
	ResolvedAt time.Time
	// Payload is the signal as received, bounded by the ingest limits.
	Payload          []byte
	PayloadTruncated bool
}

// Since returns the time the signal's occurrence began: the firing time, or
// the received time when the sender gave none.
func (s *Signal) Since() time.Time {
	if s.FiringTime.IsZero() {
		return s.ReceivedTime
	}
	return s.FiringTime
}

// Request is one HTTP delivery: a batch of signals from one sender.
type Request struct {
	ID      string
	Source  Source
	Signals []Signal
	// Ignored counts items that were valid but not actionable (Normal
	// events); they are acknowledged and never reach the processor.
	Ignored int
}

// Status says what happened to one signal.
type Status string

const (
	StatusCreated   Status = "created"
	StatusDuplicate Status = "duplicate"
	StatusResolved  Status = "resolved"
)

// Outcome is the answer for one signal.
type Outcome struct {
	Fingerprint     string `json:"fingerprint"`
	Namespace       string `json:"namespace,omitempty"`
	Name            string `json:"name,omitempty"`
	Status          Status `json:"status"`
	Duplicate       bool   `json:"duplicate"`
	OccurrenceCount int64  `json:"occurrenceCount,omitempty"`
}

// Result is the answer for a whole request: one outcome per signal, in the
// order of the request.
type Result struct {
	Outcomes []Outcome
	Ignored  int
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
