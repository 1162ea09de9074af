package history_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/app"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/history"
)

func TestMain(m *testing.M) {
	app.RouteLibraryLogs(slog.New(slog.DiscardHandler))
	code := m.Run()
	testenv.StopShared()
	os.Exit(code)
}

var nsSeq atomic.Int64

func namespace(t *testing.T, e *testenv.Env) string {
	t.Helper()
	ns := fmt.Sprintf("watch-%d-%d", time.Now().Unix()%100000, nsSeq.Add(1))
	if err := e.CreateNamespace(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns
}

// rr is episode 1 of a fingerprint made from i, for signal "Sig<i>" on pod
// "pod-<i>" of namespace target.
func rr(ns, target string, i int) *v1alpha1.RemediationRequest {
	fp := fmt.Sprintf("%08x%056x", i, 0)
	now := metav1.Now()
	return &v1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.EpisodeName(fp, 1)},
		Spec: v1alpha1.RemediationRequestSpec{Fingerprint: fp, SignalName: fmt.Sprintf("Sig%d", i), Severity: "critical", Source: "prometheus",
			TargetResource: v1alpha1.TargetResource{Kind: "Pod", Name: fmt.Sprintf("pod-%d", i), Namespace: target},
			FiringTime:     now, ReceivedTime: now, Episode: 1},
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor waits (at most 20 s) until the watch has delivered an event
// matching ok, and returns it.
func waitFor(t *testing.T, w *history.Watch, what string, ok func(history.ResourceEvent) bool) history.ResourceEvent {
	t.Helper()
	var found history.ResourceEvent
	err := testenv.Wait(context.Background(), 20*time.Second, 20*time.Millisecond, what, func() (bool, error) {
		for _, ev := range w.Events() {
			if ok(ev) {
				found = ev
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("%v; events:\n%s", err, dump(w.Events()))
	}
	return found
}

func dump(evs []history.ResourceEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "  %s %s rv=%s phase=%q deleting=%t resolved=%t count=%d key=%s\n", ev.Type, ev.Name, ev.ResourceVersion, ev.Phase, ev.Deleting, ev.Resolved, ev.Count, ev.Key)
	}
	return b.String()
}

// inOrder fails unless the events' resourceVersions never decrease and no
// event of a resource repeats one before it.
func inOrder(t *testing.T, evs []history.ResourceEvent) {
	t.Helper()
	var last uint64
	seen := map[string]bool{}
	for _, ev := range evs {
		rv, err := strconv.ParseUint(ev.ResourceVersion, 10, 64)
		if err != nil || rv < last {
			t.Fatalf("event %s %s rv %s out of resourceVersion order:\n%s", ev.Type, ev.Name, ev.ResourceVersion, dump(evs))
		}
		last = rv
		k := ev.Type + " " + ev.Name + " " + ev.ResourceVersion
		if seen[k] {
			t.Fatalf("event %s delivered twice:\n%s", k, dump(evs))
		}
		seen[k] = true
	}
}

// Every change of the namespace's resources is recorded with the fields
// the model needs, in resourceVersion order; another namespace's are not.
func TestWatchRecordsChanges(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	ns, other := namespace(t, e), namespace(t, e)
	before := rr(ns, "apps", 1)
	must(t, e.Kube.Create(ctx, before))
	wc, err := e.WatchClient()
	must(t, err)
	w := history.WatchResources(ctx, wc, ns)
	defer w.Stop()
	if !w.Synced() {
		t.Fatal("not synced after WatchResources")
	}
	if evs := w.Events(); len(evs) != 1 || evs[0].Type != history.Added || evs[0].Name != before.Name {
		t.Fatalf("initial list: want one ADDED:\n%s", dump(evs))
	}

	a := rr(ns, "apps", 2)
	must(t, e.Kube.Create(ctx, a))
	must(t, e.Kube.Create(ctx, rr(other, "apps", 3)))
	now := metav1.Now()
	a.Status = v1alpha1.RemediationRequestStatus{Phase: "Completed",
		Deduplication: &v1alpha1.Deduplication{OccurrenceCount: 4, FirstSeen: now, LastSeen: now},
		Resolution:    &v1alpha1.Resolution{ResolvedAt: now, ReceivedAt: now}}
	must(t, e.Kube.Status().Update(ctx, a))
	controllerutil.AddFinalizer(a, "chaos.alertgate.io/test")
	must(t, e.Kube.Update(ctx, a))
	must(t, e.Kube.Delete(ctx, a))
	must(t, e.Kube.Get(ctx, client.ObjectKeyFromObject(a), a))
	controllerutil.RemoveFinalizer(a, "chaos.alertgate.io/test")
	must(t, e.Kube.Update(ctx, a))
	must(t, e.Kube.Delete(ctx, before))

	waitFor(t, w, "DELETED of the first", func(ev history.ResourceEvent) bool { return ev.Type == history.Deleted && ev.Name == before.Name })
	evs := w.Events()
	inOrder(t, evs)
	var types []string
	for _, ev := range evs {
		if ev.Name == a.Name {
			types = append(types, ev.Type)
		}
		if strings.Contains(ev.Key, "pod-3") {
			t.Fatalf("another namespace's resource was recorded:\n%s", dump(evs))
		}
	}
	// Created, status, finalizer, deletion begun, finalizer removed (the
	// API server deletes it in that same write: one DELETED).
	if got, want := strings.Join(types, ","), "ADDED,MODIFIED,MODIFIED,MODIFIED,DELETED"; got != want {
		t.Fatalf("events of %s: %s, want %s:\n%s", a.Name, got, want, dump(evs))
	}
	status := waitFor(t, w, "the status", func(ev history.ResourceEvent) bool { return ev.Name == a.Name && ev.Count == 4 })
	if status.Key != "apps/pod-2/Sig2" || status.Fingerprint != a.Spec.Fingerprint || status.Episode != 1 || status.Phase != "Completed" || !status.Resolved || status.Deleting {
		t.Fatalf("status event %+v", status)
	}
	terminating := waitFor(t, w, "deletion begun", func(ev history.ResourceEvent) bool { return ev.Name == a.Name && ev.Deleting })
	if terminating.Type != history.Modified {
		t.Fatalf("deletion begun: %+v, want MODIFIED", terminating)
	}
	for _, ev := range evs {
		if ev.At.IsZero() || ev.ResourceVersion == "" {
			t.Fatalf("event without time or version: %+v", ev)
		}
	}
}

// The watch survives the API server stopped and started again: what
// changed after the restart is recorded once, in order.
func TestWatchSurvivesAPIServerRestart(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	ns := namespace(t, e)
	keep, change, del := rr(ns, "apps", 1), rr(ns, "apps", 2), rr(ns, "apps", 3)
	for _, x := range []*v1alpha1.RemediationRequest{keep, change, del} {
		must(t, e.Kube.Create(ctx, x))
	}
	wc, err := e.WatchClient()
	must(t, err)
	w := history.WatchResources(ctx, wc, ns)
	defer w.Stop()
	if n := len(w.Events()); n != 3 {
		t.Fatalf("initial list: %d events, want 3", n)
	}
	must(t, e.ControlPlane.StopAPIServer())
	time.Sleep(1500 * time.Millisecond)
	must(t, e.ControlPlane.StartAPIServer())
	// Change at once, while the watch may still be waiting to reconnect.
	added := rr(ns, "apps", 4)
	must(t, e.Kube.Create(ctx, added))
	must(t, e.Kube.Get(ctx, client.ObjectKeyFromObject(change), change))
	change.Status.Phase = "Failed"
	must(t, e.Kube.Status().Update(ctx, change))
	must(t, e.Kube.Delete(ctx, del))

	waitFor(t, w, "ADDED after restart", func(ev history.ResourceEvent) bool { return ev.Type == history.Added && ev.Name == added.Name })
	waitFor(t, w, "MODIFIED after restart", func(ev history.ResourceEvent) bool { return ev.Name == change.Name && ev.Phase == "Failed" })
	waitFor(t, w, "DELETED after restart", func(ev history.ResourceEvent) bool { return ev.Type == history.Deleted && ev.Name == del.Name })
	evs := w.Events()
	inOrder(t, evs)
	for _, ev := range evs {
		if ev.Name == keep.Name && ev.Type != history.Added {
			t.Fatalf("an unchanged resource got an event %s:\n%s", ev.Type, dump(evs))
		}
	}
	if len(evs) != 6 {
		t.Fatalf("%d events, want 3 listed and 3 after the restart:\n%s", len(evs), dump(evs))
	}
	t.Logf("after the restart: %d reconnects, %d relists", w.Reconnects(), w.Relists())
	if w.Reconnects() == 0 {
		t.Fatal("the watch never reconnected")
	}
}

// cutWatch wraps a client so that a test can end the current watch and
// make the next ones fail, then answer 410 Gone once, as an API server
// whose watch window moved past the last resourceVersion does.
type cutWatch struct {
	mu      sync.Mutex
	current watch.Interface
	blocked bool
	gone    bool
}

func (c *cutWatch) client(base client.WithWatch) client.WithWatch {
	return interceptor.NewClient(base, interceptor.Funcs{
		Watch: func(ctx context.Context, cl client.WithWatch, list client.ObjectList, opts ...client.ListOption) (watch.Interface, error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			switch {
			case c.blocked:
				return nil, errors.New("connect: connection refused")
			case c.gone:
				c.gone = false
				return nil, apierrors.NewResourceExpired("too old resource version")
			}
			wi, err := cl.Watch(ctx, list, opts...)
			c.current = wi
			return wi, err
		},
	})
}

func (c *cutWatch) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.blocked, c.gone = true, true
	if c.current != nil {
		c.current.Stop()
	}
}

func (c *cutWatch) restore() {
	c.mu.Lock()
	c.blocked = false
	c.mu.Unlock()
}

// On 410 Gone the watch relists and records what it missed by the
// difference: DELETED for what vanished, ADDED for what is new, MODIFIED
// for what changed, nothing for what did not; then it follows again.
func TestWatchRelistsOnGone(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	ns := namespace(t, e)
	keep, change, del, recreate := rr(ns, "apps", 1), rr(ns, "apps", 2), rr(ns, "apps", 3), rr(ns, "apps", 5)
	for _, x := range []*v1alpha1.RemediationRequest{keep, change, del, recreate} {
		must(t, e.Kube.Create(ctx, x))
	}
	base, err := e.WatchClient()
	must(t, err)
	cw := &cutWatch{}
	w := history.WatchResources(ctx, cw.client(base), ns)
	defer w.Stop()
	waitFor(t, w, "4 listed", func(history.ResourceEvent) bool { return len(w.Events()) == 4 })

	cw.cut()
	added := rr(ns, "apps", 4)
	must(t, e.Kube.Create(ctx, added))
	change.Status.Phase = "Skipped"
	must(t, e.Kube.Status().Update(ctx, change))
	must(t, e.Kube.Delete(ctx, del))
	must(t, e.Kube.Delete(ctx, recreate))
	recreated := rr(ns, "apps", 5)
	must(t, e.Kube.Create(ctx, recreated))
	cw.restore()

	// What vanished comes last.
	waitFor(t, w, "the relist", func(ev history.ResourceEvent) bool { return ev.Type == history.Deleted && ev.Name == del.Name })
	evs := w.Events()
	inOrder(t, evs)
	var got []string
	for _, ev := range evs[4:] {
		got = append(got, ev.Type+" "+ev.Name)
	}
	// The listed in their resourceVersion order (the one deleted and
	// created again: both at its new version), then what vanished.
	want := []string{
		"ADDED " + added.Name, "MODIFIED " + change.Name, "DELETED " + recreate.Name, "ADDED " + recreate.Name,
		"DELETED " + del.Name,
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after the relist:\n%s\nwant %v", dump(evs), want)
	}
	if w.Relists() != 1 {
		t.Fatalf("%d relists, want 1", w.Relists())
	}
	if ev := evs[5]; ev.Phase != "Skipped" {
		t.Fatalf("MODIFIED %+v: want the new phase", ev)
	}
	// And it follows again from the list.
	must(t, e.Kube.Delete(ctx, keep))
	waitFor(t, w, "DELETED after the relist", func(ev history.ResourceEvent) bool { return ev.Type == history.Deleted && ev.Name == keep.Name })
	inOrder(t, w.Events())
}
