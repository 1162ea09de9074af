package pipeline

import (
	"context"
	"time"
)

// ClaimState is what the dedup store decided for one fingerprint.
type ClaimState int

const (
	// Reserved: the fingerprint was new; this request holds a lease on it
	// and must create the resource, then commit or release.
	Reserved ClaimState = iota
	// Duplicate: a resource was committed for the fingerprint in the
	// window; the occurrence was counted.
	Duplicate
	// InFlight: another request holds the lease. Creating the resource by
	// its deterministic name is safe (the API server arbitrates), so this
	// request does that rather than wait for the other one.
	InFlight
	// Absent: the claim was a peek (the Kubernetes API is known to be
	// unavailable) and the fingerprint was not committed: nothing was
	// written.
	Absent
)

func (s ClaimState) String() string {
	switch s {
	case Reserved:
		return "reserved"
	case Duplicate:
		return "duplicate"
	case InFlight:
		return "in-flight"
	case Absent:
		return "absent"
	}
	return "unknown"
}

// Claim asks the store to count one occurrence of a fingerprint or to
// reserve it for creation.
type Claim struct {
	Fingerprint string
	// Bucket is the naming window of the signal (see ResourceName); it is
	// stored with a reservation so every later claim names the same
	// resource.
	Bucket int64
	// Increment is how many times the fingerprint occurs in the batch.
	Increment int64
	// Peek counts a duplicate but never reserves.
	Peek bool
}

// ClaimResult is the store's answer for one Claim.
type ClaimResult struct {
	State     ClaimState
	Count     int64
	Bucket    int64
	FirstSeen time.Time
}

// Settlement ends a claim: Commit marks the fingerprint as having its
// resource for the dedup window; otherwise the reservation is released.
type Settlement struct {
	Fingerprint string
	Bucket      int64
	Commit      bool
	// Count is the occurrence count to store if the reservation has
	// vanished (lease expired, Redis restarted) by the time of the commit.
	Count int64
}

// Deduper is the dedup store. Each method is one round trip for the whole
// batch; token identifies the request's reservations so that a release
// never removes another request's lease.
type Deduper interface {
	Claim(ctx context.Context, token string, now time.Time, claims []Claim) ([]ClaimResult, error)
	Settle(ctx context.Context, token string, now time.Time, s []Settlement) error
	// Renew extends this token's reservations of fingerprints by a full
	// lease, right before the creates: the lease then covers them, and a
	// Redis that vanished after the claim stops the request before it
	// creates a resource whose dedup record could not be written.
	Renew(ctx context.Context, token string, fingerprints []string) error
	// Lookup returns the stored bucket of committed fingerprints (ok=false
	// when the fingerprint is not committed).
	Lookup(ctx context.Context, fingerprints []string) ([]LookupResult, error)
}

// LookupResult is the committed state of one fingerprint.
type LookupResult struct {
	Found  bool
	Bucket int64
	Count  int64
}

// Creator writes RemediationRequests.
type Creator interface {
	// Create creates the resource for sig. created is false, with a nil
	// error, when a resource of that name already exists; existingCount is
	// then its recorded occurrence count (0 if unknown).
	Create(ctx context.Context, sig *Signal, name string) (created bool, existingCount int64, err error)
	// Resolve records the resolution of sig on the named resource; a
	// missing resource is not an error.
	Resolve(ctx context.Context, sig *Signal, name string) (found bool, err error)
	// Available is false while the circuit breaker refuses calls, so the
	// processor does not reserve fingerprints it cannot create.
	Available() bool
	// Namespace is where resources are created.
	Namespace() string
}

// Observation is what the processor learned about one resource's
// deduplication status; a StatusSink projects it onto the resource.
type Observation struct {
	Namespace string
	Name      string
	Count     int64
	FirstSeen time.Time
	LastSeen  time.Time
}

// StatusSink receives observations; it must not block.
type StatusSink interface {
	Observe(Observation)
}
