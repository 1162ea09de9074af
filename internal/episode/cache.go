// Package episode is the gateway's view of its RemediationRequests: a cache
// of the episodes of each fingerprint, kept by a list and a watch of the
// gateway's own resources, small enough to hold many (metadata, phase,
// members, count). It answers the questions of the request path without an
// API call: which episode of a fingerprint is open, which number a new one
// takes, and whether an occurrence changes the state of its members. It
// reports each episode it sees end, so that Redis stops naming it.
package episode

import (
	"context"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/pipeline"
)

// Options configure a Cache.
type Options struct {
	// Namespace whose RemediationRequests are watched. Default: "default".
	Namespace string
	// Terminal phases end an episode. Default: v1alpha1.DefaultTerminalPhases.
	Terminal v1alpha1.PhaseSet
	// OnEnded is told of each episode the cache sees end (terminal phase,
	// deletion begun, deleted, or gone at a relist), once. It must not
	// block. Default: none.
	OnEnded func(fingerprint string, seq int64)
	// OnVersion is told of each newer version of a resource the cache
	// takes (from its list, its watch or a write-through), so that the
	// status projection writes on the version a peer or a controller left
	// rather than meet a conflict. It is called with the cache's lock held:
	// it must be quick, must not keep rr and must not call the cache.
	// Default: none.
	OnVersion func(rr *v1alpha1.RemediationRequest)
	// PageSize bounds each page of a list, and so the memory a list of
	// many resources takes at once. Default: 500.
	PageSize int64
	// Timeout bounds each page of a list. Default: 5s.
	Timeout time.Duration
	// Logger. Default: slog.Default().
	Logger *slog.Logger
}

const (
	// Backoff after a failed list or watch, doubling up to maxBackoff: a
	// returning API server is watched again within about a second.
	minBackoff = 100 * time.Millisecond
	maxBackoff = time.Second
	// A watch ends after 30–60 s and is resumed from its resourceVersion,
	// so that a connection that silently stopped delivering is replaced.
	watchSeconds = 30
	// goneFor is how long a deletion is remembered, so that a late
	// write-through of the deleted object is not taken for a new one.
	goneFor = 5 * time.Minute
)

// Cache implements pipeline.Episodes.
type Cache struct {
	c    client.WithWatch
	opts Options

	synced  atomic.Bool
	healthy atomic.Bool
	suspect chan struct{}

	mu      sync.RWMutex
	fps     map[string]*fingerprint
	gone    map[string]gone // by resource name
	size    int
	lastRV  string
	ended   []endedEp // to report after the lock is released
	endedMu sync.Mutex
}

type fingerprint struct {
	// episodes, sorted by seq; usually one.
	episodes []ep
}

type ep struct {
	seq      int64
	rv       uint64
	open     bool
	resolved bool
	count    int64
	members  []member
}

// member is a compact v1alpha1.Member: what change detection needs.
type member struct {
	id     [8]byte
	firing int64 // FiringSince, unix microseconds
}

type gone struct {
	rv uint64
	at time.Time
}

type endedEp struct {
	fp  string
	seq int64
}

var _ pipeline.Episodes = (*Cache)(nil)

// New returns a Cache reading through c, which must not itself be a cached
// client; Run keeps it.
func New(c client.WithWatch, opts Options) *Cache {
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.Terminal == nil {
		opts.Terminal = v1alpha1.NewPhaseSet(nil)
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 500
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Cache{c: c, opts: opts, suspect: make(chan struct{}, 1), fps: map[string]*fingerprint{}, gone: map[string]gone{}}
}

// Synced reports whether the cache has listed the resources at least once.
func (c *Cache) Synced() bool { return c.synced.Load() }

// Healthy reports whether the cache is watching: when it is not, it may
// miss episodes others opened, and the request path asks the API server.
func (c *Cache) Healthy() bool { return c.healthy.Load() }

// Len is the number of resources held.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.size
}

// Suspect tells the cache that an API call failed in transport: its watch
// may have silently stopped delivering, so it is replaced.
func (c *Cache) Suspect() {
	select {
	case c.suspect <- struct{}{}:
	default:
	}
}

// View implements pipeline.Episodes.
func (c *Cache) View(fp string) pipeline.EpisodeView {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v := pipeline.EpisodeView{Next: 1}
	f := c.fps[fp]
	if f == nil {
		return v
	}
	for i := range f.episodes {
		e := &f.episodes[i]
		if e.open {
			// At most one is open; were there two, the newest wins.
			v.Open, v.Count, v.Resolved = e.seq, e.count, e.resolved
		}
	}
	v.Next = f.episodes[len(f.episodes)-1].seq + 1
	return v
}

// NeedsMembers implements pipeline.Episodes: an occurrence changes the
// state of episode seq when one of its members is new to it or fires again
// with a later startsAt (a re-fire, which clears a resolution).
func (c *Cache) NeedsMembers(fp string, seq int64, ms []pipeline.Member) bool {
	if len(ms) == 0 {
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	f := c.fps[fp]
	if f == nil {
		return true
	}
	e := f.find(seq)
	if e == nil {
		return true
	}
	for _, m := range ms {
		id, ok := parseID(m.ID)
		if !ok {
			continue
		}
		found := false
		for _, x := range e.members {
			if x.id == id {
				found = true
				if m.FiringSince.UnixMicro() > x.firing {
					return true
				}
			}
		}
		if !found {
			return true
		}
	}
	return false
}

func (f *fingerprint) find(seq int64) *ep {
	for i := range f.episodes {
		if f.episodes[i].seq == seq {
			return &f.episodes[i]
		}
	}
	return nil
}

// Observe records a resource the gateway just wrote or read, so that its
// next request need not wait for the watch to deliver it.
func (c *Cache) Observe(rr *v1alpha1.RemediationRequest) {
	c.mu.Lock()
	c.apply(rr, false)
	c.mu.Unlock()
	c.reportEnded()
}

// apply stores rr, or removes it when deleted; c.mu is held.
func (c *Cache) apply(rr *v1alpha1.RemediationRequest, deleted bool) {
	fp, seq := rr.Spec.Fingerprint, rr.Spec.Episode
	if fp == "" || seq <= 0 {
		return
	}
	rv, _ := strconv.ParseUint(rr.ResourceVersion, 10, 64)
	name := rr.Name
	if g, ok := c.gone[name]; ok {
		if rv <= g.rv {
			return // a late copy of a deleted object
		}
		delete(c.gone, name)
	}
	f := c.fps[fp]
	if deleted {
		c.gone[name] = gone{rv: rv, at: time.Now()}
		if f == nil {
			return
		}
		if e := f.find(seq); e != nil {
			c.remove(fp, f, e)
		}
		return
	}
	if f == nil {
		f = &fingerprint{}
		c.fps[fp] = f
	}
	e := f.find(seq)
	if e != nil && rv != 0 && e.rv >= rv {
		return // older than what is held
	}
	if e == nil {
		i := 0
		for i < len(f.episodes) && f.episodes[i].seq < seq {
			i++
		}
		f.episodes = append(f.episodes, ep{})
		copy(f.episodes[i+1:], f.episodes[i:])
		f.episodes[i] = ep{seq: seq, open: true}
		e = &f.episodes[i]
		c.size++
	}
	wasOpen := e.open
	e.rv = rv
	e.open = c.opts.Terminal.Open(rr)
	e.resolved = rr.Status.Resolution != nil
	if d := rr.Status.Deduplication; d != nil {
		e.count = d.OccurrenceCount
	}
	e.members = e.members[:0]
	for _, m := range rr.Members() {
		if id, ok := parseID(m.ID); ok {
			e.members = append(e.members, member{id: id, firing: m.FiringSince.UnixMicro()})
		}
	}
	if wasOpen && !e.open {
		c.ended = append(c.ended, endedEp{fp, seq})
	}
	if c.opts.OnVersion != nil {
		c.opts.OnVersion(rr)
	}
}

// remove drops e from f; c.mu is held.
func (c *Cache) remove(fp string, f *fingerprint, e *ep) {
	if e.open {
		c.ended = append(c.ended, endedEp{fp, e.seq})
	}
	i := 0
	for f.episodes[i].seq != e.seq {
		i++
	}
	f.episodes = append(f.episodes[:i], f.episodes[i+1:]...)
	c.size--
	if len(f.episodes) == 0 {
		delete(c.fps, fp)
	}
}

func (c *Cache) reportEnded() {
	c.mu.Lock()
	ended := c.ended
	c.ended = nil
	c.mu.Unlock()
	if c.opts.OnEnded == nil {
		return
	}
	// One reporter at a time keeps the reports in order.
	c.endedMu.Lock()
	defer c.endedMu.Unlock()
	for _, x := range ended {
		c.opts.OnEnded(x.fp, x.seq)
	}
}

func parseID(s string) ([8]byte, bool) {
	var id [8]byte
	if len(s) != 16 {
		return id, false
	}
	_, err := hex.Decode(id[:], []byte(s))
	return id, err == nil
}

// Run lists and watches until ctx is done.
func (c *Cache) Run(ctx context.Context) {
	backoff := minBackoff
	relist := true
	wait := func() {
		c.healthy.Store(false)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
	for ctx.Err() == nil {
		if relist {
			if err := c.list(ctx); err != nil {
				if ctx.Err() == nil {
					c.opts.Logger.Debug("episode cache: list failed", "error", err.Error())
				}
				wait()
				continue
			}
			relist = false
			c.synced.Store(true)
		}
		var err error
		relist, err = c.watch(ctx, &backoff)
		if err != nil && ctx.Err() == nil {
			c.opts.Logger.Debug("episode cache: watch ended", "error", err.Error())
			wait()
		}
	}
	c.healthy.Store(false)
}

// list replaces the cache with a full, paged list.
func (c *Cache) list(ctx context.Context) error {
	seen := map[string]bool{}
	var rv, cont string
	for {
		var l v1alpha1.RemediationRequestList
		lctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
		err := c.c.List(lctx, &l, client.InNamespace(c.opts.Namespace), c.selector(), client.Limit(c.opts.PageSize), client.Continue(cont))
		cancel()
		if err != nil {
			return err
		}
		c.mu.Lock()
		for i := range l.Items {
			seen[l.Items[i].Name] = true
			c.apply(&l.Items[i], false)
		}
		c.mu.Unlock()
		if cont = l.Continue; cont == "" {
			rv = l.ResourceVersion
			break
		}
	}
	listRV, _ := strconv.ParseUint(rv, 10, 64)
	c.mu.Lock()
	// What the list did not return is gone (deleted while not watched).
	for fp, f := range c.fps {
		for i := len(f.episodes) - 1; i >= 0; i-- {
			e := &f.episodes[i]
			name := v1alpha1.EpisodeName(fp, e.seq)
			if !seen[name] && e.rv <= listRV {
				c.gone[name] = gone{rv: listRV, at: time.Now()}
				c.remove(fp, f, e)
			}
		}
	}
	for name, g := range c.gone {
		if time.Since(g.at) > goneFor {
			delete(c.gone, name)
		}
	}
	c.lastRV = rv
	c.mu.Unlock()
	c.reportEnded()
	return nil
}

func (c *Cache) selector() client.MatchingLabels {
	return client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}
}

// watch follows changes from the last resourceVersion until the watch ends,
// is suspected, or ctx is done. relist is true when the resourceVersion is
// too old to resume from.
func (c *Cache) watch(ctx context.Context, backoff *time.Duration) (relist bool, err error) {
	c.mu.RLock()
	rv := c.lastRV
	c.mu.RUnlock()
	timeout := int64(watchSeconds + rand.IntN(watchSeconds))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := c.c.Watch(wctx, &v1alpha1.RemediationRequestList{}, client.InNamespace(c.opts.Namespace), c.selector(),
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true, TimeoutSeconds: &timeout}})
	if err != nil {
		return apierrors.IsResourceExpired(err) || apierrors.IsGone(err), err
	}
	defer w.Stop()
	// Drop a suspicion raised before this watch began.
	select {
	case <-c.suspect:
	default:
	}
	c.healthy.Store(true)
	*backoff = minBackoff
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case <-c.suspect:
			c.healthy.Store(false)
			return false, errSuspected
		case ev, ok := <-w.ResultChan():
			if !ok {
				// The server ended the watch (its timeout): resume.
				return false, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified, watch.Deleted:
				rr, ok := ev.Object.(*v1alpha1.RemediationRequest)
				if !ok {
					continue
				}
				c.mu.Lock()
				c.apply(rr, ev.Type == watch.Deleted)
				c.lastRV = rr.ResourceVersion
				c.mu.Unlock()
				c.reportEnded()
			case watch.Bookmark:
				if o, ok := ev.Object.(client.Object); ok {
					c.mu.Lock()
					c.lastRV = o.GetResourceVersion()
					c.mu.Unlock()
				}
			case watch.Error:
				err := apierrors.FromObject(ev.Object)
				c.healthy.Store(false)
				return apierrors.IsResourceExpired(err) || apierrors.IsGone(err), err
			}
		}
	}
}

var errSuspected = &suspectedError{}

type suspectedError struct{}

func (*suspectedError) Error() string { return "an API call failed in transport; watching again" }
