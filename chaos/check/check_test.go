package check

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/pipeline"
	"github.com/alertgate/gateway/testenv/load"
)

// The checks are pure functions of a State: each is shown to hold on a
// consistent state and to report the one thing broken in a damaged copy.

const fpA, fpB = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

func resource(fp string, seq int64, pod string) v1alpha1.RemediationRequest {
	var r v1alpha1.RemediationRequest
	r.ObjectMeta = metav1.ObjectMeta{Name: v1alpha1.EpisodeName(fp, seq), Namespace: "ns"}
	r.Spec.Episode = seq
	r.Spec.Fingerprint = fp
	r.Spec.Source = "prometheus"
	r.Spec.SignalName = "KubePodCrashLooping"
	r.Spec.TargetResource = v1alpha1.TargetResource{Kind: "Pod", Namespace: "ns", Name: pod}
	return r
}

func consistent() *State {
	return &State{
		Keys: []Key{
			{Fingerprint: fpA, State: "c", Seq: 7, Count: 1, TTL: time.Minute},
			{Fingerprint: fpB, State: "c", Seq: 7, Count: 3, TTL: time.Minute},
		},
		Resources: []v1alpha1.RemediationRequest{resource(fpA, 7, "a"), resource(fpB, 7, "b")},
	}
}

func acked(pod string) load.Record {
	return load.Record{Status: 201, Signals: []load.Signal{{Name: "KubePodCrashLooping", Namespace: "ns", Pod: pod}}}
}

func only(t *testing.T, vs []Violation, invariant, detail string) {
	t.Helper()
	if len(vs) != 1 || vs[0].Invariant != invariant || !strings.Contains(vs[0].Detail, detail) {
		t.Fatalf("want one %s violation mentioning %q, got %v", invariant, detail, vs)
	}
}

func TestChecksHoldOnAConsistentState(t *testing.T) {
	s := consistent()
	records := []load.Record{acked("a"), acked("b"), {Status: 503, Signals: []load.Signal{{Name: "KubePodCrashLooping", Namespace: "ns", Pod: "never"}}}}
	for name, vs := range map[string][]Violation{
		NoOrphan: CheckNoOrphan(s, 3*time.Second), NoLoss: CheckNoLoss(s, records, nil),
		NoDuplicate: CheckNoDuplicate(s), Consistent: CheckConsistent(s), "no reservation": CheckNoReservation(s),
	} {
		if len(vs) != 0 {
			t.Errorf("%s: %v", name, vs)
		}
	}
}

func TestNoOrphanCatchesAFingerprintWithoutResource(t *testing.T) {
	s := consistent()
	s.Resources = s.Resources[:1]
	only(t, CheckNoOrphan(s, 3*time.Second), NoOrphan, "does not exist")
}

func TestNoOrphanCatchesAReservationBeyondItsLease(t *testing.T) {
	s := consistent()
	s.Keys = append(s.Keys, Key{Fingerprint: "cccc", State: "r", TTL: 10 * time.Second})
	only(t, CheckNoOrphan(s, 3*time.Second), NoOrphan, "beyond the 3s lease")
	s.Keys[2].TTL = 2 * time.Second
	if vs := CheckNoOrphan(s, 3*time.Second); len(vs) != 0 {
		t.Fatalf("a reservation within its lease: %v", vs)
	}
	only(t, CheckNoReservation(s), NoOrphan, "outlived its lease")
}

func TestNoLossCatchesAnAcknowledgedSignalWithoutResource(t *testing.T) {
	only(t, CheckNoLoss(consistent(), []load.Record{acked("a"), acked("lost")}, nil), NoLoss, "ns/lost/KubePodCrashLooping")
}

func TestNoDuplicateCatchesTwoOpenEpisodesForOneSignal(t *testing.T) {
	s := consistent()
	// The fingerprint's next episode while the first is open: one
	// violation per fingerprint and one per signal identity.
	s.Resources = append(s.Resources, resource(fpA, 8, "a"))
	vs := CheckNoDuplicate(s)
	if len(vs) != 2 || !strings.Contains(vs[0].Detail, "fingerprint aaaaaaaaaaaa has 2 open episodes") || !strings.Contains(vs[1].Detail, "signal ns/a/KubePodCrashLooping (prometheus, Pod) has 2") {
		t.Fatalf("want the fingerprint and the signal named, got %v", vs)
	}
	// Once a controller ended the first, the second is its successor.
	for _, phase := range []v1alpha1.Phase{"Completed", "Failed", "TimedOut", "Skipped", "Cancelled"} {
		s.Resources[0].Status.Phase = phase
		if vs := CheckNoDuplicate(s); len(vs) != 0 {
			t.Fatalf("an episode %s and its successor: %v", phase, vs)
		}
	}
	s.Resources[0].Status.Phase = "Remediating"
	s.Resources[0].DeletionTimestamp = &metav1.Time{Time: time.Now()}
	if vs := CheckNoDuplicate(s); len(vs) != 0 {
		t.Fatalf("an episode being deleted and its successor: %v", vs)
	}
}

func TestConsistentCatchesARecordOfAnEndedEpisode(t *testing.T) {
	s := consistent()
	s.Resources[1].Status.Phase = "Failed"
	only(t, CheckConsistent(s), Consistent, "names episode rr-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-7, which has ended")
	s.Resources = s.Resources[:1]
	only(t, CheckConsistent(s), Consistent, "which does not exist")
}

func TestNoPhantomCatchesAResourceForASignalNeverSent(t *testing.T) {
	s := consistent()
	vs := CheckNoPhantom(s, []load.Record{acked("a")})
	only(t, vs, NoPhantom, "is for ns/b/KubePodCrashLooping, which was never sent")
	if !slices.Equal(vs[0].Signals, []string{"ns/b/KubePodCrashLooping"}) {
		t.Fatalf("the violation names signals %v", vs[0].Signals)
	}
	// Sent counts, answered or not.
	if vs := CheckNoPhantom(s, []load.Record{acked("a"), {Status: 0, Signals: acked("b").Signals}}); len(vs) != 0 {
		t.Fatalf("a sent signal: %v", vs)
	}
}

// Violations name the signals and requests they concern, so that a
// history is searched by them and not by their text.
func TestViolationsNameSignalsAndRequests(t *testing.T) {
	lost := acked("lost")
	lost.Seq = 42
	vs := CheckNoLoss(consistent(), []load.Record{acked("a"), lost}, nil)
	if len(vs) != 1 || !slices.Equal(vs[0].Signals, []string{"ns/lost/KubePodCrashLooping"}) || !slices.Equal(vs[0].Requests, []int{42}) {
		t.Fatalf("I2 violation %+v", vs)
	}
	s := consistent()
	s.Resources = append(s.Resources, resource(fpA, 8, "a"))
	for _, v := range CheckNoDuplicate(s) {
		if !slices.Equal(v.Signals, []string{"ns/a/KubePodCrashLooping"}) {
			t.Errorf("I3 violation %q names signals %v", v.Detail, v.Signals)
		}
	}
	s = consistent()
	s.Resources[1].Status.Phase = "Completed"
	if vs := CheckConsistent(s); len(vs) != 1 || !slices.Equal(vs[0].Signals, []string{"ns/b/KubePodCrashLooping"}) {
		t.Fatalf("I4 violation %+v", vs)
	}
}

// The suite checks what its fields allow and says what it checked.
func TestSuite(t *testing.T) {
	s := consistent()
	s.Keys = append(s.Keys, Key{Fingerprint: "cccc", State: "r", TTL: 2 * time.Second})
	s.Resources = append(s.Resources, resource(fpA, 8, "a"))
	s.Resources[1].Status.Phase = "Completed" // fpB's record names an ended episode
	history := []load.Record{acked("a")}
	count := func(vs []Violation) map[string]int {
		m := map[string]int{}
		for _, v := range vs {
			m[v.Invariant]++
		}
		return m
	}
	for _, c := range []struct {
		suite   Suite
		want    map[string]int
		checked []string
	}{
		// Within the lease the reservation is fine; two resources for a: I3 twice.
		{Suite{Lease: 3 * time.Second}, map[string]int{NoDuplicate: 2}, []string{NoOrphan, NoLoss, NoDuplicate}},
		{Suite{Lease: 3 * time.Second, LeaseOver: true}, map[string]int{NoOrphan: 1, NoDuplicate: 2}, []string{NoOrphan, NoLoss, NoDuplicate}},
		{Suite{Lease: 3 * time.Second, Settled: true}, map[string]int{NoDuplicate: 2, Consistent: 1}, []string{NoOrphan, NoLoss, NoDuplicate, Consistent}},
		{Suite{Lease: 3 * time.Second, Answered: true}, map[string]int{NoDuplicate: 2, NoPhantom: 1}, []string{NoOrphan, NoLoss, NoDuplicate, NoPhantom}},
	} {
		if got := count(c.suite.Check(s, history)); !maps.Equal(got, c.want) {
			t.Errorf("%+v: violations %v, want %v", c.suite, got, c.want)
		}
		if got := c.suite.Invariants(); !slices.Equal(got, c.checked) {
			t.Errorf("%+v: checks %v, want %v", c.suite, got, c.checked)
		}
	}
}

// An acknowledged signal whose episode a remediation controller deleted is
// not lost.
func TestNoLossExcusesADeletionByTheController(t *testing.T) {
	gone := acked("gone")
	gone.Outcomes = []pipeline.Outcome{{Index: 0, Name: "rr-gone-1", Status: pipeline.StatusCreated}}
	only(t, CheckNoLoss(consistent(), []load.Record{gone}, nil), NoLoss, "ns/gone/KubePodCrashLooping")
	if vs := CheckNoLoss(consistent(), []load.Record{gone}, map[string]bool{"rr-gone-1": true}); len(vs) != 0 {
		t.Fatalf("deleted by the controller: %v", vs)
	}
}
