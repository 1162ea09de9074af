package episode

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/pipeline"
)

// The cache against controller-runtime's fake client (which lists and
// watches); against a real API server it is exercised by the chaos suite.

const fp = "89a240f103e2151705deb037f2e435389559907b949c7b5844a385d563218e41"

func rr(seq int64, phase v1alpha1.Phase, members ...string) *v1alpha1.RemediationRequest {
	r := &v1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: v1alpha1.EpisodeName(fp, seq),
			Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}},
		Spec: v1alpha1.RemediationRequestSpec{Fingerprint: fp, Episode: seq},
	}
	r.Status.Phase = phase
	for _, m := range members {
		r.Spec.Members = append(r.Spec.Members, v1alpha1.Member{ID: m, FiringSince: metav1.NewMicroTime(time.Unix(100, 0))})
	}
	return r
}

type ended struct {
	mu  sync.Mutex
	got []int64
}

func (e *ended) add(_ string, seq int64) { e.mu.Lock(); e.got = append(e.got, seq); e.mu.Unlock() }
func (e *ended) all() []int64            { e.mu.Lock(); defer e.mu.Unlock(); return slices.Clone(e.got) }

func start(t *testing.T, objs ...client.Object) (*Cache, client.WithWatch, *ended) {
	t.Helper()
	return startWith(t, Options{}, objs...)
}

// startWith starts a cache of namespace ns with opts (OnEnded and Logger
// are set).
func startWith(t *testing.T, opts Options, objs ...client.Object) (*Cache, client.WithWatch, *ended) {
	t.Helper()
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithStatusSubresource(&v1alpha1.RemediationRequest{}).Build()
	e := &ended{}
	opts.Namespace, opts.OnEnded, opts.Logger = "ns", e.add, slog.New(slog.DiscardHandler)
	cache := New(c, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); cache.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, "synced and watching", func() bool { return cache.Synced() && cache.Healthy() })
	return cache, c, e
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within 5 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestViewFollowsTheEpisodes(t *testing.T) {
	cache, c, ended := start(t, rr(1, "Completed"), rr(2, v1alpha1.PhasePending, "0123456789abcdef"))
	if v := cache.View(fp); v.Open != 2 || v.Next != 3 {
		t.Fatalf("view %+v, want episode 2 open, next 3", v)
	}
	// The list reported the episode that had already ended.
	if !slices.Equal(ended.all(), []int64{1}) {
		t.Fatalf("ended %v, want [1]", ended.all())
	}
	if v := cache.View("ff"); v.Open != 0 || v.Next != 1 {
		t.Fatalf("unknown fingerprint: %+v", v)
	}
	// A controller finishes episode 2: no open episode, the next is 3.
	cur := rr(2, "Failed")
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(cur), cur); err != nil {
		t.Fatal(err)
	}
	cur.Status.Phase = "Failed"
	if err := c.Status().Update(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	eventually(t, "episode 2 ended", func() bool { v := cache.View(fp); return v.Open == 0 && v.Next == 3 })
	eventually(t, "episode 2 reported", func() bool { return slices.Equal(ended.all(), []int64{1, 2}) })
	// Deleting every episode frees the numbers: the next is 1 again, as
	// every replica's fresh view agrees.
	for _, seq := range []int64{1, 2} {
		if err := c.Delete(context.Background(), rr(seq, "")); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "numbers freed", func() bool { return cache.View(fp).Next == 1 && cache.Len() == 0 })
}

func TestNeedsMembers(t *testing.T) {
	cache, _, _ := start(t, rr(1, "", "0123456789abcdef"))
	m := pipeline.Member{ID: "0123456789abcdef", FiringSince: time.Unix(100, 0)}
	if cache.NeedsMembers(fp, 1, []pipeline.Member{m}) {
		t.Error("a repeat of the member's firing changes nothing")
	}
	m.FiringSince = time.Unix(200, 0)
	if !cache.NeedsMembers(fp, 1, []pipeline.Member{m}) {
		t.Error("a re-fire with a later startsAt must be written")
	}
	if !cache.NeedsMembers(fp, 1, []pipeline.Member{{ID: "fedcba9876543210", FiringSince: time.Unix(100, 0)}}) {
		t.Error("a new member must be written")
	}
	if cache.NeedsMembers(fp, 1, nil) {
		t.Error("an occurrence without members (an Event) changes nothing")
	}
}

// A copy of an object the gateway wrote, arriving after the watch saw it
// deleted, must not bring it back.
func TestALateWriteThroughDoesNotResurrect(t *testing.T) {
	cache, c, _ := start(t, rr(1, ""))
	old := rr(1, "")
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(old), old); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deleted", func() bool { return cache.View(fp).Open == 0 })
	cache.Observe(old)
	if v := cache.View(fp); v.Open != 0 {
		t.Fatalf("the stale copy was taken for an open episode: %+v", v)
	}
}

// OnVersion hears each newer version the cache takes, from its list and
// its watch, and nothing older: the status projection writes on it.
func TestOnVersionHearsEachNewerVersion(t *testing.T) {
	var mu sync.Mutex
	var rvs []string
	_, c, _ := startWith(t, Options{OnVersion: func(r *v1alpha1.RemediationRequest) {
		mu.Lock()
		rvs = append(rvs, r.Name+"@"+r.ResourceVersion)
		mu.Unlock()
	}}, rr(1, v1alpha1.PhasePending))
	heard := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(rvs) }
	var cur v1alpha1.RemediationRequest
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(rr(1, "")), &cur); err != nil {
		t.Fatal(err)
	}
	listed := cur.Name + "@" + cur.ResourceVersion
	eventually(t, "the listed version heard", func() bool { return slices.Contains(heard(), listed) })
	cur.Status.Phase = "Remediating"
	if err := c.Status().Update(context.Background(), &cur); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the controller's version heard", func() bool { return slices.Contains(heard(), cur.Name+"@"+cur.ResourceVersion) })
	if h := heard(); len(h) != 2 {
		t.Fatalf("heard %v, want the listed version and the controller's, once each", h)
	}
}
