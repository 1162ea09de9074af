package v1alpha1

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func micro(s int) metav1.MicroTime {
	return metav1.NewMicroTime(time.Date(2026, 12, 1, 12, 0, s, 0, time.UTC))
}

func firing(id string, since int) Member { return Member{ID: id, FiringSince: micro(since)} }

func resolved(id string, since, at int) Member {
	rs, ra := micro(since), micro(at)
	return Member{ID: id, FiringSince: micro(since), ResolvedSince: &rs, ResolvedAt: &ra}
}

func TestEpisodeNameIsDNS1123AndDeterministic(t *testing.T) {
	fp := "89a240f103e2151705deb037f2e435389559907b949c7b5844a385d563218e41"
	for _, seq := range []int64{1, 9, 1 << 40} {
		n := EpisodeName(fp, seq)
		if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
			t.Errorf("%s: %v", n, errs)
		}
		if n != EpisodeName(fp, seq) {
			t.Errorf("%s is not deterministic", n)
		}
	}
	if got := EpisodeName(fp, 1); got != "rr-89a240f103e2151705deb037f2e43538-1" {
		t.Errorf("EpisodeName = %s", got)
	}
}

// Notifications of the members, applied in any order, give one state: the
// gateway's replicas and retries may apply them in any order.
func TestMergeMembersIsOrderFree(t *testing.T) {
	notes := []Member{firing("a", 1), resolved("a", 1, 5), firing("a", 9), firing("b", 3), resolved("b", 3, 4), firing("a", 1), resolved("b", 3, 6)}
	want := MergeMembers(nil, notes)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		shuffled := append([]Member(nil), notes...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		var got []Member
		for _, m := range shuffled {
			got = MergeMembers(got, []Member{m})
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("order %v gave %v, want %v", shuffled, got, want)
		}
	}
	// a re-fired at 9 after resolving its firing of 1: firing; b resolved.
	if want[0].Resolved() || !want[1].Resolved() {
		t.Errorf("merged %+v", want)
	}
}

func TestAllResolvedNeedsEveryMember(t *testing.T) {
	if _, ok := AllResolved(nil); ok {
		t.Error("an episode without members is resolved")
	}
	ms := MergeMembers(nil, []Member{firing("a", 1), firing("b", 2), resolved("a", 1, 5)})
	if _, ok := AllResolved(ms); ok {
		t.Error("resolved while b fires")
	}
	ms = MergeMembers(ms, []Member{resolved("b", 2, 7)})
	at, ok := AllResolved(ms)
	if !ok || !at.Equal(&metav1.MicroTime{Time: micro(7).Time}) {
		t.Errorf("resolved %v at %v, want the latest end", ok, at)
	}
	// A late repeat of an old firing does not reopen a resolved member.
	if ms := MergeMembers(ms, []Member{firing("a", 1)}); !ms[0].Resolved() {
		t.Error("a stale repeat cleared the resolution")
	}
}

func TestOpenEpisodes(t *testing.T) {
	terminal := NewPhaseSet(nil)
	rr := &RemediationRequest{}
	for _, p := range []Phase{"", PhasePending, "Remediating"} {
		rr.Status.Phase = p
		if !terminal.Open(rr) {
			t.Errorf("phase %q is not open", p)
		}
	}
	for _, p := range DefaultTerminalPhases {
		rr.Status.Phase = p
		if terminal.Open(rr) {
			t.Errorf("phase %q is open", p)
		}
	}
	rr.Status.Phase = "Remediating"
	rr.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	if terminal.Open(rr) {
		t.Error("an episode being deleted is open")
	}
}
