package history

import (
	"context"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/testenv/load"
)

// Event types of a ResourceEvent.
const (
	Added    = string(watch.Added)
	Modified = string(watch.Modified)
	Deleted  = string(watch.Deleted)
)

const (
	// Backoff after a failed list or watch, doubling: a returning API
	// server is watched again within about a second.
	minBackoff = 100 * time.Millisecond
	maxBackoff = time.Second
	// A watch is asked to end after 30–60 s and resumed, so that a
	// connection that silently stopped delivering is replaced.
	watchSeconds = 30
	// listTimeout bounds one page of a list.
	listTimeout = 10 * time.Second
	listPage    = 500
)

// Watch is the verifier's own watch of a namespace's RemediationRequests:
// a list, then a watch from the list's resourceVersion, resumed from the
// last resourceVersion after the watch breaks (an API server stopped and
// started again) and, when that version is too old (410 Gone), a relist
// whose difference with what was seen becomes the events it missed.
type Watch struct {
	c  client.WithWatch
	ns string

	events Log[ResourceEvent]
	cancel context.CancelFunc
	done   chan struct{}

	// Owned by the watch's goroutine (and WatchResources before it
	// starts).
	known  map[string]seen
	lastRV string

	reconnects, relists atomic.Int64
	synced              atomic.Bool
}

// seen is the last state of a resource the watch delivered.
type seen struct {
	uid types.UID
	ev  ResourceEvent
}

// WatchResources lists namespace's RemediationRequests (an ADDED event each,
// in resourceVersion order) and watches them until Stop. c must read the
// API server directly and have no request timeout (it would cut the watch):
// testenv.Env.WatchClient. The first list is made before it returns, so
// every change after the call is recorded; when the API server does not
// answer it, the watch keeps trying in the background.
func WatchResources(ctx context.Context, c client.WithWatch, namespace string) *Watch {
	ctx, cancel := context.WithCancel(ctx)
	w := &Watch{c: c, ns: namespace, cancel: cancel, done: make(chan struct{}), known: map[string]seen{}}
	relist := w.list(ctx) != nil
	w.synced.Store(!relist)
	go w.run(ctx, relist)
	return w
}

// Events returns every event recorded so far, in the order delivered.
func (w *Watch) Events() []ResourceEvent { return w.events.All() }

// Stop ends the watch and waits for it.
func (w *Watch) Stop() {
	w.cancel()
	<-w.done
}

// Reconnects counts the watches tried after the first one.
func (w *Watch) Reconnects() int { return int(w.reconnects.Load()) }

// Relists counts the lists tried after the first one (after a 410 Gone,
// or when the first one failed).
func (w *Watch) Relists() int { return int(w.relists.Load()) }

// Synced reports whether a list has succeeded: from then on no change is
// missed.
func (w *Watch) Synced() bool { return w.synced.Load() }

func (w *Watch) run(ctx context.Context, relist bool) {
	defer close(w.done)
	backoff := minBackoff
	wait := func() {
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
	first := true
	for ctx.Err() == nil {
		if relist {
			w.relists.Add(1)
			if err := w.list(ctx); err != nil {
				wait()
				continue
			}
			w.synced.Store(true)
			relist = false
		}
		if !first {
			w.reconnects.Add(1)
		}
		first = false
		var err error
		relist, err = w.watch(ctx, &backoff)
		if err != nil && ctx.Err() == nil {
			wait()
		}
	}
}

// list reads every page and records, in resourceVersion order, what
// changed since the last event of each resource: ADDED for a new one,
// MODIFIED for a changed one, DELETED for one the list no longer has (or
// has as another object of the same name). A DELETED it synthesizes
// carries the list's resourceVersion (when it happened is not known, only
// that it was before).
func (w *Watch) list(ctx context.Context) error {
	var items []v1alpha1.RemediationRequest
	var rv, cont string
	for {
		var l v1alpha1.RemediationRequestList
		lctx, cancel := context.WithTimeout(ctx, listTimeout)
		err := w.c.List(lctx, &l, client.InNamespace(w.ns), client.Limit(listPage), client.Continue(cont))
		cancel()
		if err != nil {
			return err
		}
		items = append(items, l.Items...)
		if cont = l.Continue; cont == "" {
			rv = l.ResourceVersion
			break
		}
	}
	now := time.Now()
	var out []ResourceEvent
	listed := make(map[string]bool, len(items))
	for i := range items {
		rr := &items[i]
		listed[rr.Name] = true
		prev, ok := w.known[rr.Name]
		switch {
		case !ok:
			out = append(out, eventOf(Added, rr, now))
		case prev.uid != rr.UID:
			// Deleted and created again while not watched.
			gone := prev.ev
			gone.Type, gone.At, gone.ResourceVersion = Deleted, now, rr.ResourceVersion
			out = append(out, gone, eventOf(Added, rr, now))
		case prev.ev.ResourceVersion != rr.ResourceVersion:
			out = append(out, eventOf(Modified, rr, now))
		}
		if !ok || prev.uid != rr.UID || prev.ev.ResourceVersion != rr.ResourceVersion {
			w.known[rr.Name] = seen{uid: rr.UID, ev: eventOf(Modified, rr, now)}
		}
	}
	var vanished []ResourceEvent
	for name, s := range w.known {
		if !listed[name] {
			ev := s.ev
			ev.Type, ev.At, ev.ResourceVersion = Deleted, now, rv
			vanished = append(vanished, ev)
			delete(w.known, name)
		}
	}
	// The list's items in their resourceVersion order; what vanished
	// after them, by name.
	sort.SliceStable(out, func(i, j int) bool { return rvLess(out[i].ResourceVersion, out[j].ResourceVersion) })
	sort.Slice(vanished, func(i, j int) bool { return vanished[i].Name < vanished[j].Name })
	for _, ev := range append(out, vanished...) {
		w.events.Add(ev)
	}
	w.lastRV = rv
	return nil
}

// watch follows changes from the last resourceVersion until the watch
// ends or ctx is done. relist is true when that version is too old to
// resume from.
func (w *Watch) watch(ctx context.Context, backoff *time.Duration) (relist bool, err error) {
	timeout := int64(watchSeconds + rand.IntN(watchSeconds))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wi, err := w.c.Watch(wctx, &v1alpha1.RemediationRequestList{}, client.InNamespace(w.ns),
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: w.lastRV, AllowWatchBookmarks: true, TimeoutSeconds: &timeout}})
	if err != nil {
		return gone(err), err
	}
	defer wi.Stop()
	*backoff = minBackoff
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case ev, ok := <-wi.ResultChan():
			if !ok {
				// The server ended the watch (its timeout, or its
				// shutdown): resume.
				return false, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified, watch.Deleted:
				rr, ok := ev.Object.(*v1alpha1.RemediationRequest)
				if !ok {
					continue
				}
				e := eventOf(string(ev.Type), rr, time.Now())
				w.events.Add(e)
				if ev.Type == watch.Deleted {
					delete(w.known, rr.Name)
				} else {
					w.known[rr.Name] = seen{uid: rr.UID, ev: e}
				}
				w.lastRV = rr.ResourceVersion
			case watch.Bookmark:
				if o, ok := ev.Object.(client.Object); ok {
					w.lastRV = o.GetResourceVersion()
				}
			case watch.Error:
				err := apierrors.FromObject(ev.Object)
				return gone(err), err
			}
		}
	}
}

func gone(err error) bool { return apierrors.IsResourceExpired(err) || apierrors.IsGone(err) }

// eventOf is the event of rr as delivered at.
func eventOf(typ string, rr *v1alpha1.RemediationRequest, at time.Time) ResourceEvent {
	e := ResourceEvent{
		At: at, Type: typ, Name: rr.Name, UID: string(rr.UID), ResourceVersion: rr.ResourceVersion, Created: rr.CreationTimestamp.Time,
		Fingerprint: rr.Spec.Fingerprint, Episode: rr.Spec.Episode,
		Key:   load.SignalOf(rr).Key(),
		Phase: string(rr.Status.Phase), Deleting: rr.DeletionTimestamp != nil, Resolved: rr.Status.Resolution != nil,
	}
	if d := rr.Status.Deduplication; d != nil {
		e.Count = d.OccurrenceCount
	}
	return e
}

// rvLess orders resourceVersions as numbers (etcd revisions), as the
// harness's one API server gives them.
func rvLess(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA != nil || errB != nil {
		return a < b
	}
	return x < y
}
