package pipeline

import (
	"context"
	"time"
)

// EpisodeView is what the gateway knows of a fingerprint's episodes (one
// RemediationRequest each; open while it exists, is not being deleted and
// its phase is not terminal).
type EpisodeView struct {
	// Open is the sequence number of the open episode; 0 when none is
	// known.
	Open int64
	// Next is the number a new episode takes: one above the highest that
	// exists.
	Next int64
	// Count is the open episode's occurrence count as last projected onto
	// it: where an occurrence count continues when Redis lost its record.
	Count int64
	// Resolved: every member of the open episode has resolved.
	Resolved bool
	// Authoritative: read from the API server just now rather than from
	// the watch cache, which may lag.
	Authoritative bool
}

// Episodes is the watch cache of the gateway's resources.
type Episodes interface {
	// View returns what the cache knows of a fingerprint.
	View(fingerprint string) EpisodeView
	// Synced: the cache has listed the resources once; before that it
	// cannot tell an open episode from none.
	Synced() bool
	// Healthy: the cache is watching. When it is not, it may have missed
	// an episode that another replica opened.
	Healthy() bool
	// NeedsMembers reports whether an occurrence with these members
	// changes the state of episode seq: a member new to it, or one firing
	// again with a later startsAt.
	NeedsMembers(fingerprint string, seq int64, members []Member) bool
}

// ClaimState is what the dedup store decided for one fingerprint.
type ClaimState int

const (
	// Attached: the occurrence was counted into the open episode the
	// store names (Seq).
	Attached ClaimState = iota
	// Reserved: there is no open episode; this request holds a lease on
	// opening episode Seq and must settle it.
	Reserved
	// InFlight: another request holds the lease on opening episode Seq,
	// which the view does not know yet. Opening it too is safe (the
	// episode's name arbitrates), so this request does that rather than
	// wait.
	InFlight
	// Verify: the store names an episode the view does not know (it may
	// lag, or the episode ended long ago); nothing was written. The
	// caller reads the fingerprint's episodes from the API and claims
	// again with that authoritative view.
	Verify
	// Absent: the claim was a peek (the Kubernetes API is unavailable) and
	// there is no open episode to attach to: nothing was written.
	Absent
)

func (s ClaimState) String() string {
	switch s {
	case Attached:
		return "attached"
	case Reserved:
		return "reserved"
	case InFlight:
		return "in-flight"
	case Verify:
		return "verify"
	case Absent:
		return "absent"
	}
	return "unknown"
}

// Claim asks the store to count one occurrence of a fingerprint into its
// open episode, or to reserve opening the next one.
type Claim struct {
	Fingerprint string
	// Increment is how many times the fingerprint occurs in the batch.
	Increment int64
	// Peek attaches but never reserves.
	Peek bool
	// View is what the gateway knows of the fingerprint's episodes: the
	// store's record is trusted only where it agrees with it.
	View EpisodeView
}

// ClaimResult is the store's answer for one Claim.
type ClaimResult struct {
	State     ClaimState
	Seq       int64
	Count     int64
	FirstSeen time.Time
}

// Settlement ends a reservation: Commit records that episode Seq is open
// (with Count occurrences); otherwise the reservation is released. Either
// changes only a reservation this request's token holds.
type Settlement struct {
	Fingerprint string
	Seq         int64
	Commit      bool
	Count       int64
}

// RecordState is the state of a fingerprint's record in the store.
type RecordState int

const (
	NoRecord RecordState = iota
	ReservedRecord
	CommittedRecord
)

// Record is a fingerprint's record in the store.
type Record struct {
	State RecordState
	Seq   int64
	Count int64
}

// Deduper is the dedup store: the fast path from a fingerprint to its open
// episode and count. Each method is one round trip for the whole batch;
// token identifies the request's reservations.
type Deduper interface {
	Claim(ctx context.Context, token string, now time.Time, claims []Claim) ([]ClaimResult, error)
	Settle(ctx context.Context, token string, now time.Time, s []Settlement) error
	Lookup(ctx context.Context, fingerprints []string) ([]Record, error)
}

// OpenResult is the episode an occurrence opened or attached to.
type OpenResult struct {
	Seq  int64
	Name string
	// Created: this call created it.
	Created bool
	// Count is the attached episode's projected occurrence count.
	Count int64
	// NeedsMembers: the attached episode lacks a member of the
	// occurrence, or holds an older firing of it.
	NeedsMembers bool
}

// Creator writes RemediationRequests.
type Creator interface {
	// Open creates episode seq of the signal's fingerprint, or attaches to
	// it if it already exists and is open; if it has ended it tries the
	// next numbers, so that a stale view converges.
	Open(ctx context.Context, sig *Signal, members []Member, seq int64) (OpenResult, error)
	// Episodes reads a fingerprint's episodes from the API server.
	Episodes(ctx context.Context, fingerprint string) (EpisodeView, error)
	// UpdateMembers merges members into episode seq's and sets or clears
	// its resolution accordingly; found is false when the episode no
	// longer exists.
	UpdateMembers(ctx context.Context, fingerprint string, seq int64, members []Member, receivedAt time.Time) (found bool, err error)
	// Available is false while the circuit breaker refuses calls, so the
	// processor does not reserve what it cannot create.
	Available() bool
	// Namespace is where resources are created.
	Namespace() string
	// Name is the name of a fingerprint's episode seq.
	Name(fingerprint string, seq int64) string
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
