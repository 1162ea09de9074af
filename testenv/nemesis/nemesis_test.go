package nemesis_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/app"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/history"
	"github.com/alertgate/gateway/testenv/nemesis"
)

func TestMain(m *testing.M) {
	app.RouteLibraryLogs(slog.New(slog.DiscardHandler))
	code := m.Run()
	testenv.StopShared()
	os.Exit(code)
}

var nsSeq atomic.Int64

// namespace creates a fresh namespace for one test.
func namespace(t *testing.T, e *testenv.Env) string {
	t.Helper()
	ns := fmt.Sprintf("nemesis-%d-%d", time.Now().Unix()%100000, nsSeq.Add(1))
	if err := e.CreateNamespace(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns
}

// episodes creates n open episodes in ns, as the gateway would (a count in
// status), and returns their names, sorted.
func episodes(t *testing.T, c client.Client, ns string, n int) []string {
	t.Helper()
	ctx := context.Background()
	var names []string
	for i := range n {
		// Episode names keep the first 32 hex digits.
		fp := fmt.Sprintf("%08x%056x", i+1, 0)
		now := metav1.Now()
		rr := &v1alpha1.RemediationRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.EpisodeName(fp, 1)},
			Spec: v1alpha1.RemediationRequestSpec{Fingerprint: fp, SignalName: "KubePodCrashLooping", Severity: "critical", Source: "prometheus",
				TargetResource: v1alpha1.TargetResource{Kind: "Pod", Name: fmt.Sprintf("app-%d", i), Namespace: ns},
				FiringTime:     now, ReceivedTime: now, Episode: 1},
		}
		if err := c.Create(ctx, rr); err != nil {
			t.Fatal(err)
		}
		rr.Status = v1alpha1.RemediationRequestStatus{Phase: v1alpha1.PhasePending,
			Deduplication: &v1alpha1.Deduplication{OccurrenceCount: 1, FirstSeen: now, LastSeen: now}}
		if err := c.Status().Update(ctx, rr); err != nil {
			t.Fatal(err)
		}
		names = append(names, rr.Name)
	}
	slices.Sort(names)
	return names
}

func get(t *testing.T, c client.Client, ns, name string) (*v1alpha1.RemediationRequest, bool) {
	t.Helper()
	rr := &v1alpha1.RemediationRequest{}
	err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, rr)
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return rr, true
}

func newNemesis(t *testing.T, c client.Client, ns string) *nemesis.Nemesis {
	t.Helper()
	n, err := nemesis.New(nemesis.Config{Client: c, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// okAt fails unless a succeeded, for name, and was stamped within the call.
func okAt(t *testing.T, a history.Action, kind, name string, before time.Time) {
	t.Helper()
	if a.Err != "" || a.Kind != kind || a.Resource != name || a.Fingerprint == "" || a.Episode != 1 {
		t.Fatalf("action %+v: want a successful %s of %s with its fingerprint and episode", a, kind, name)
	}
	if a.At.Before(before) || a.At.After(time.Now()) {
		t.Fatalf("action %+v: At %s is not within the call (started %s)", a, a.At, before)
	}
}

// Each directed act does what it says to the real API server, leaves the
// gateway's own status fields alone, and is recorded with the time it
// returned; an act on a resource not in a state a controller acts on is
// recorded refused, and changes nothing.
func TestDirectedActs(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	ns := namespace(t, e)
	names := episodes(t, e.Kube, ns, 4)
	n := newNemesis(t, e.Kube, ns)

	start := time.Now()
	a := n.Finish(ctx, names[0], "Completed")
	okAt(t, a, history.ActPhase, names[0], start)
	if rr, _ := get(t, e.Kube, ns, names[0]); rr.Status.Phase != "Completed" || rr.Status.Deduplication == nil || rr.Status.Deduplication.OccurrenceCount != 1 {
		t.Fatalf("after Finish: status %+v", rr.Status)
	}
	rv := func(name string) string { rr, _ := get(t, e.Kube, ns, name); return rr.ResourceVersion }
	before := rv(names[0])
	if a := n.Finish(ctx, names[0], nemesis.PhaseRemediating); a.Err == "" || rv(names[0]) != before {
		t.Fatalf("Finish of an ended episode: %+v, resourceVersion %s → %s; want refused and unchanged", a, before, rv(names[0]))
	}

	start = time.Now()
	a = n.WriteStatus(ctx, names[1])
	okAt(t, a, history.ActStatus, names[1], start)
	rr, _ := get(t, e.Kube, ns, names[1])
	c := meta.FindStatusCondition(rr.Status.Conditions, nemesis.ConditionRemediating)
	if c == nil || c.Status != metav1.ConditionTrue || rr.Status.Phase != v1alpha1.PhasePending || rr.Status.Deduplication.OccurrenceCount != 1 {
		t.Fatalf("after WriteStatus: status %+v", rr.Status)
	}
	before = rr.ResourceVersion
	n.WriteStatus(ctx, names[1])
	if rv(names[1]) == before {
		t.Fatal("a second WriteStatus did not change the resource")
	}

	start = time.Now()
	hold, del := n.HoldAndDelete(ctx, names[2])
	okAt(t, hold, history.ActHold, names[2], start)
	okAt(t, del, history.ActDelete, names[2], start)
	if rr, ok := get(t, e.Kube, ns, names[2]); !ok || rr.DeletionTimestamp == nil {
		t.Fatalf("held and deleted: %v exists %t; want it terminating", rr, ok)
	}
	if got := n.Held(); !slices.Equal(got, names[2:3]) {
		t.Fatalf("Held() = %v", got)
	}
	if a := n.Finish(ctx, names[2], "Failed"); a.Err == "" {
		t.Fatalf("Finish of a terminating episode: %+v; want refused", a)
	}
	start = time.Now()
	okAt(t, n.Release(ctx, names[2]), history.ActRelease, names[2], start)
	if _, ok := get(t, e.Kube, ns, names[2]); ok {
		t.Fatal("released: the resource still exists")
	}
	if len(n.Held()) != 0 {
		t.Fatalf("Held() = %v after Release", n.Held())
	}

	start = time.Now()
	okAt(t, n.Delete(ctx, names[3]), history.ActDelete, names[3], start)
	if _, ok := get(t, e.Kube, ns, names[3]); ok {
		t.Fatal("deleted: the resource still exists")
	}
	if a := n.Delete(ctx, names[3]); a.Err == "" {
		t.Fatalf("Delete of a gone resource: %+v; want an error", a)
	}
	if a := n.Release(ctx, names[1]); a.Err == "" {
		t.Fatalf("Release of a resource not held: %+v; want refused", a)
	}

	acts := n.Actions()
	for i, a := range acts {
		if a.Seq != i+1 {
			t.Fatalf("action %d has Seq %d", i, a.Seq)
		}
		if i > 0 && a.At.Before(acts[i-1].At) {
			t.Fatalf("action %d recorded before action %d", i, i-1)
		}
	}
	if len(acts) != 11 {
		t.Fatalf("%d actions recorded, want 11: %+v", len(acts), acts)
	}
}

// A status write that loses a race with another writer (the gateway's
// status syncer) reads again and retries: both writes survive.
func TestStatusWriteRetriesOnConflict(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	ns := namespace(t, e)
	name := episodes(t, e.Kube, ns, 1)[0]
	base, err := e.WatchClient()
	if err != nil {
		t.Fatal(err)
	}
	var raced, updates atomic.Int64
	c := interceptor.NewClient(base, interceptor.Funcs{
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			updates.Add(1)
			if raced.Add(1) <= 2 {
				// The gateway counts an occurrence between the nemesis'
				// read and its write.
				var cur v1alpha1.RemediationRequest
				if err := c.Get(ctx, client.ObjectKeyFromObject(obj), &cur); err != nil {
					return err
				}
				cur.Status.Deduplication.OccurrenceCount++
				if err := c.Status().Update(ctx, &cur); err != nil {
					return err
				}
			}
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
	})
	n := newNemesis(t, c, ns)
	a := n.WriteStatus(ctx, name)
	if a.Err != "" {
		t.Fatalf("WriteStatus: %+v", a)
	}
	if updates.Load() != 3 {
		t.Fatalf("%d status writes, want 3 (two conflicts, then success)", updates.Load())
	}
	rr, _ := get(t, e.Kube, ns, name)
	if rr.Status.Deduplication.OccurrenceCount != 3 || meta.FindStatusCondition(rr.Status.Conditions, nemesis.ConditionRemediating) == nil {
		t.Fatalf("status %+v: want the gateway's two counts and the nemesis' condition", rr.Status)
	}

	// Conflicts without end: bounded, recorded refused.
	raced.Store(-100)
	updates.Store(0)
	if a = n.Finish(ctx, name, "Failed"); a.Err == "" || updates.Load() != 5 {
		t.Fatalf("Finish under endless conflicts: %+v after %d writes; want an error after 5", a, updates.Load())
	}
	if rr, _ := get(t, e.Kube, ns, name); rr.Status.Phase == "Failed" {
		t.Fatal("a refused Finish changed the phase")
	}
}

// A write whose answer is lost in transport is resolved by reading back:
// recorded done when it took effect, refused when it did not.
func TestLostAnswerIsResolved(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	ns := namespace(t, e)
	names := episodes(t, e.Kube, ns, 2)
	base, err := e.WatchClient()
	if err != nil {
		t.Fatal(err)
	}
	lost := errors.New("http2: client connection lost")
	c := interceptor.NewClient(base, interceptor.Funcs{
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			if obj.GetName() == names[0] {
				// Done, but the answer never arrives.
				if err := c.SubResource(sub).Update(ctx, obj, opts...); err != nil {
					return err
				}
			}
			return lost
		},
	})
	n := newNemesis(t, c, ns)
	if a := n.Finish(ctx, names[0], "TimedOut"); a.Err != "" {
		t.Fatalf("Finish that happened, answer lost: %+v; want recorded done", a)
	}
	if a := n.Finish(ctx, names[1], "TimedOut"); a.Err == "" {
		t.Fatalf("Finish that did not happen, answer lost: %+v; want recorded with its error", a)
	}
	if rr, _ := get(t, e.Kube, ns, names[1]); rr.Status.Phase == "TimedOut" {
		t.Fatal("the second Finish took effect")
	}
}

// The random loop is replayed by its seed: two namespaces with the same
// episodes get the same acts. It acts on its namespace only, uses every
// phase, holds and releases, and leaves no finalizer behind.
func TestRunIsSeeded(t *testing.T) {
	e := testenv.Shared(t)
	const acts = 36
	o := nemesis.Options{Seed: 7, Every: 25 * time.Millisecond, Jitter: 10 * time.Millisecond, HoldFor: 150 * time.Millisecond, MaxActs: acts}
	other := namespace(t, e)
	bystander := episodes(t, e.Kube, other, 1)[0]
	run := func(o nemesis.Options) (*nemesis.Nemesis, string) {
		ns := namespace(t, e)
		episodes(t, e.Kube, ns, acts)
		n := newNemesis(t, e.Kube, ns)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.Run(ctx, o); err != nil {
			t.Fatal(err)
		}
		return n, ns
	}
	a, nsA := run(o)
	b, _ := run(o)
	o.Seed = 8
	c, _ := run(o)

	// Releases come when their time is up, not by the draw.
	drawn := func(n *nemesis.Nemesis) []string {
		var out []string
		for _, x := range n.Actions() {
			if x.Kind != history.ActRelease {
				out = append(out, fmt.Sprintf("%s %s %s err=%t", x.Kind, x.Phase, x.Resource, x.Err != ""))
			}
		}
		return out
	}
	da, db, dc := drawn(a), drawn(b), drawn(c)
	if !slices.Equal(da, db) {
		t.Fatalf("the same seed gave two runs:\n%v\n%v", da, db)
	}
	if slices.Equal(da, dc) {
		t.Fatalf("seeds 7 and 8 gave the same run: %v", da)
	}
	kinds, phases := map[string]int{}, map[string]bool{}
	for _, x := range a.Actions() {
		kinds[x.Kind]++
		if x.Kind == history.ActPhase {
			phases[x.Phase] = true
		}
		if x.Err != "" {
			t.Errorf("act %+v failed", x)
		}
	}
	t.Logf("seed 7: %d acts: %v", len(a.Actions()), kinds)
	for _, p := range append(slices.Clone(v1alpha1.DefaultTerminalPhases), nemesis.PhaseRemediating) {
		if !phases[string(p)] {
			t.Errorf("phase %s never set", p)
		}
	}
	if kinds[history.ActHold] == 0 || kinds[history.ActHold] != kinds[history.ActRelease] || kinds[history.ActDelete] <= kinds[history.ActHold] {
		t.Errorf("acts %v: want holds, each released, and plain deletes", kinds)
	}
	var l v1alpha1.RemediationRequestList
	if err := e.Kube.List(context.Background(), &l, client.InNamespace(nsA)); err != nil {
		t.Fatal(err)
	}
	for _, rr := range l.Items {
		if len(rr.Finalizers) > 0 || rr.DeletionTimestamp != nil {
			t.Errorf("%s left with finalizers %v, deleting %t", rr.Name, rr.Finalizers, rr.DeletionTimestamp != nil)
		}
	}
	if rr, ok := get(t, e.Kube, other, bystander); !ok || rr.Status.Phase != v1alpha1.PhasePending || len(rr.Status.Conditions) > 0 {
		t.Errorf("the other namespace's episode was touched: %+v", rr)
	}
}

// Releasing at the end waits out an API server that is stopped: nothing is
// left terminating.
func TestReleaseAllWaitsForTheAPIServer(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	ns := namespace(t, e)
	name := episodes(t, e.Kube, ns, 1)[0]
	n := newNemesis(t, e.Kube, ns)
	if h, d := n.HoldAndDelete(ctx, name); h.Err != "" || d.Err != "" {
		t.Fatalf("hold %+v delete %+v", h, d)
	}
	if err := e.ControlPlane.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.ReleaseAll(ctx) }()
	time.Sleep(time.Second)
	if err := e.ControlPlane.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("ReleaseAll did not return")
	}
	if _, ok := get(t, e.Kube, ns, name); ok {
		t.Fatal("the held resource still exists")
	}
	acts := n.Actions()
	if last := acts[len(acts)-1]; last.Kind != history.ActRelease || last.Err != "" {
		t.Fatalf("last act %+v: want the release, done", last)
	}
}
