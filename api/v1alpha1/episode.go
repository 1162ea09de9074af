package v1alpha1

import (
	"slices"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// An episode of a fingerprint is one RemediationRequest. It is open while
// the resource exists, has no deletionTimestamp and its phase is not
// terminal; remediation controllers own the phase, so they end episodes.
// Every occurrence of the fingerprint attaches to its open episode, or opens
// exactly one new one when there is none.

// EpisodeName is the name of a fingerprint's episode seq: "rr-", the first
// 32 hex digits of the fingerprint, "-", seq in decimal. It depends on
// nothing else (no clock, no configuration), so every replica racing to
// open an episode computes the same name and the API server's
// AlreadyExists arbitrates. DNS-1123 valid and at most 63 characters.
func EpisodeName(fingerprint string, seq int64) string {
	var buf [64]byte
	b := append(buf[:0], "rr-"...)
	b = append(b, FingerprintLabel(fingerprint)...)
	b = append(b, '-')
	b = strconv.AppendInt(b, seq, 10)
	return string(b)
}

// FingerprintLabel is the value of LabelFingerprint for a fingerprint: its
// first 32 hex digits (a label value is at most 63 characters).
func FingerprintLabel(fingerprint string) string {
	if len(fingerprint) > 32 {
		return fingerprint[:32]
	}
	return fingerprint
}

// PhaseSet is a set of terminal phases.
type PhaseSet map[Phase]bool

// NewPhaseSet returns the set of phases (DefaultTerminalPhases when empty).
func NewPhaseSet(phases []Phase) PhaseSet {
	if len(phases) == 0 {
		phases = DefaultTerminalPhases
	}
	s := make(PhaseSet, len(phases))
	for _, p := range phases {
		s[p] = true
	}
	return s
}

// Open reports whether rr is an open episode.
func (s PhaseSet) Open(rr *RemediationRequest) bool {
	return rr.DeletionTimestamp == nil && !s[rr.Status.Phase]
}

// Resolved reports whether the member's latest resolution resolves its
// latest firing.
func (m *Member) Resolved() bool {
	return m.ResolvedSince != nil && !m.ResolvedSince.Before(&m.FiringSince)
}

// MergeMember merges b into a: the later firing, and the resolution of the
// later firing (then the later end). Merging is commutative and
// idempotent, so notifications applied in any order, by any replica, give
// the same state.
func MergeMember(a, b Member) Member {
	if b.FiringSince.After(a.FiringSince.Time) {
		a.FiringSince = b.FiringSince
	}
	switch {
	case b.ResolvedSince == nil:
	case a.ResolvedSince == nil, b.ResolvedSince.After(a.ResolvedSince.Time),
		b.ResolvedSince.Equal(a.ResolvedSince) && a.ResolvedAt != nil && b.ResolvedAt != nil && b.ResolvedAt.After(a.ResolvedAt.Time):
		a.ResolvedSince, a.ResolvedAt = b.ResolvedSince, b.ResolvedAt
	}
	return a
}

// Members returns the episode's members: the ones that opened it (spec)
// merged with the ones the gateway recorded since (status), sorted by ID.
func (rr *RemediationRequest) Members() []Member {
	out := MergeMembers(nil, rr.Spec.Members)
	return MergeMembers(out, rr.Status.Members)
}

// MergeMembers merges each of add into ms (by ID) and returns the result
// sorted by ID; ms is modified.
func MergeMembers(ms []Member, add []Member) []Member {
	for _, m := range add {
		i, found := slices.BinarySearchFunc(ms, m.ID, func(x Member, id string) int {
			switch {
			case x.ID < id:
				return -1
			case x.ID > id:
				return 1
			}
			return 0
		})
		if found {
			ms[i] = MergeMember(ms[i], m)
		} else {
			ms = slices.Insert(ms, i, m)
		}
	}
	return ms
}

// AllResolved reports whether there is at least one member and every
// member is resolved; at is then the latest resolution's end.
func AllResolved(ms []Member) (at *metav1.MicroTime, ok bool) {
	if len(ms) == 0 {
		return nil, false
	}
	var latest *metav1.MicroTime
	for i := range ms {
		if !ms[i].Resolved() {
			return nil, false
		}
		if r := ms[i].ResolvedAt; r != nil && (latest == nil || r.After(latest.Time)) {
			latest = r
		}
	}
	return latest, true
}
