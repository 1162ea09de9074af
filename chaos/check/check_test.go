package check

import (
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

func resource(fp string, bucket int64, pod string) v1alpha1.RemediationRequest {
	var r v1alpha1.RemediationRequest
	r.ObjectMeta = metav1.ObjectMeta{Name: pipeline.ResourceName(fp, bucket), Namespace: "ns"}
	r.Spec.Fingerprint = fp
	r.Spec.Source = "prometheus"
	r.Spec.SignalName = "KubePodCrashLooping"
	r.Spec.TargetResource = v1alpha1.TargetResource{Kind: "Pod", Namespace: "ns", Name: pod}
	return r
}

func consistent() *State {
	return &State{
		Keys: []Key{
			{Fingerprint: fpA, State: "c", Bucket: 7, Count: 1, TTL: time.Minute},
			{Fingerprint: fpB, State: "c", Bucket: 7, Count: 3, TTL: time.Minute},
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
		NoOrphan: CheckNoOrphan(s, 3*time.Second), NoLoss: CheckNoLoss(s, records),
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
	only(t, CheckNoLoss(consistent(), []load.Record{acked("a"), acked("lost")}), NoLoss, "ns/lost/KubePodCrashLooping")
}

func TestNoDuplicateCatchesTwoResourcesForOneSignal(t *testing.T) {
	s := consistent()
	// Same fingerprint in another bucket: one violation per fingerprint
	// and one per signal identity.
	s.Resources = append(s.Resources, resource(fpA, 8, "a"))
	vs := CheckNoDuplicate(s)
	if len(vs) != 2 || !strings.Contains(vs[0].Detail, "fingerprint aaaaaaaaaaaa has 2") || !strings.Contains(vs[1].Detail, "signal ns/a/KubePodCrashLooping (prometheus, Pod) has 2") {
		t.Fatalf("want the fingerprint and the signal named, got %v", vs)
	}
}

func TestConsistentCatchesAResourceWithoutFingerprint(t *testing.T) {
	s := consistent()
	s.Keys = s.Keys[:1]
	only(t, CheckConsistent(s), Consistent, "resource for bbbbbbbbbbbb has no committed fingerprint")
}
