package create

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/pipeline"
)

// DefaultStatusInterval is the default of StatusOptions.Interval. Each hot
// resource costs one status write per interval, so it is API server (and
// etcd) load for a count Redis already holds exactly: at 10 s, 1000 hot
// episodes took 0.1–0.6 of a core of kube-apiserver (docs/benchmarks.md).
// Alertmanager re-sends a firing group every group_interval (5 min by
// default), so a real count rarely moves faster than this.
const DefaultStatusInterval = 30 * time.Second

// StatusOptions configure a StatusSyncer.
type StatusOptions struct {
	// Interval between flushes. Default: DefaultStatusInterval.
	Interval time.Duration
	// OnError is told about each failed update. Default: none.
	OnError func(key types.NamespacedName, err error)
	// OnCall is told about each API call the syncer makes: call is one of
	// StatusCalls, result one of CallResults. Default: none. The steady
	// state is one patch per hot resource and flush; gets and conflicts
	// are what replicas or controllers writing the same resources add.
	OnCall func(call, result string)
}

// The calls and results OnCall reports (the labels of
// alertgate_status_calls_total).
var (
	StatusCalls = []string{CallGet, CallPatch}
	CallResults = []string{CallOK, CallConflict, CallNotFound, CallError}
)

// Calls, and results of a call.
const (
	CallGet   = "get"
	CallPatch = "patch"

	CallOK       = "ok"
	CallConflict = "conflict"
	CallNotFound = "not_found"
	CallError    = "error"
)

// callResult names the result of an API call for OnCall.
func callResult(err error) string {
	switch {
	case err == nil:
		return CallOK
	case apierrors.IsConflict(err):
		return CallConflict
	case apierrors.IsNotFound(err):
		return CallNotFound
	}
	return CallError
}

func (s *StatusSyncer) called(call string, err error) {
	if s.opts.OnCall != nil {
		s.opts.OnCall(call, callResult(err))
	}
}

const (
	// statusWorkers bounds concurrent status updates.
	statusWorkers = 4
	// maxPending bounds the resources waiting for an update, and the
	// resourceVersions remembered; beyond it new resources are dropped
	// (their count stays exact in Redis and is projected at their next
	// occurrence).
	maxPending = 100000
	// forgetAfter drops the remembered resourceVersion of a resource not
	// written for this long, when the memory bound is reached.
	forgetAfter = 10 * time.Minute
)

// StatusSyncer projects the deduplication counts that Redis holds onto the
// RemediationRequest status, asynchronously, so that a duplicate costs one
// Redis round trip and no API call. Observations of one resource are
// coalesced over an interval, so a hot resource costs at most one patch per
// interval; an update only ever raises the count, so replicas that observed
// different counts converge on the highest.
type StatusSyncer struct {
	c    client.Client
	cr   *Creator
	opts StatusOptions

	mu      sync.Mutex
	pending map[types.NamespacedName]pipeline.Observation
	written map[types.NamespacedName]written
}

var _ pipeline.StatusSink = (*StatusSyncer)(nil)

// NewStatusSyncer returns a syncer writing through the creator's client,
// timeout and breaker, and learning of the resources it creates; call it
// before the creator is used.
func NewStatusSyncer(cr *Creator, opts StatusOptions) *StatusSyncer {
	if opts.Interval <= 0 {
		opts.Interval = DefaultStatusInterval
	}
	s := &StatusSyncer{c: cr.c, cr: cr, opts: opts, pending: map[types.NamespacedName]pipeline.Observation{},
		written: map[types.NamespacedName]written{}}
	cr.created = s.created
	return s
}

// created takes the version of a resource the creator just created, whose
// status is about to be projected: its first write is then one patch, not
// a read and a patch.
func (s *StatusSyncer) created(rr *v1alpha1.RemediationRequest) {
	s.remember(types.NamespacedName{Namespace: rr.Namespace, Name: rr.Name},
		written{rv: rr.ResourceVersion, status: *rr.Status.DeepCopy()})
}

// Observe implements pipeline.StatusSink.
func (s *StatusSyncer) Observe(o pipeline.Observation) {
	key := types.NamespacedName{Namespace: o.Namespace, Name: o.Name}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.pending[key]
	if !ok {
		if len(s.pending) >= maxPending {
			// Bounded memory: the count stays exact in Redis, and the
			// resource's next observation brings its status up to date.
			return
		}
		s.pending[key] = o
		return
	}
	s.pending[key] = merge(cur, o)
}

func merge(a, b pipeline.Observation) pipeline.Observation {
	if b.Count > a.Count {
		a.Count = b.Count
	}
	if !b.FirstSeen.IsZero() && (a.FirstSeen.IsZero() || b.FirstSeen.Before(a.FirstSeen)) {
		a.FirstSeen = b.FirstSeen
	}
	if b.LastSeen.After(a.LastSeen) {
		a.LastSeen = b.LastSeen
	}
	return a
}

// Run flushes every Interval until ctx is done, then makes one last flush
// bounded by flushTimeout.
func (s *StatusSyncer) Run(ctx context.Context, flushTimeout time.Duration) {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
			s.Flush(fctx)
			cancel()
			return
		case <-t.C:
			s.Flush(ctx)
		}
	}
}

// Flush writes every pending observation; failed ones stay pending.
func (s *StatusSyncer) Flush(ctx context.Context) {
	s.mu.Lock()
	batch := s.pending
	s.pending = make(map[types.NamespacedName]pipeline.Observation, len(batch))
	s.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	work := make(chan pipeline.Observation)
	var wg sync.WaitGroup
	for range min(statusWorkers, len(batch)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				if err := s.update(ctx, o); err != nil {
					if s.opts.OnError != nil {
						s.opts.OnError(types.NamespacedName{Namespace: o.Namespace, Name: o.Name}, err)
					}
					s.Observe(o)
				}
			}
		}()
	}
	for _, o := range batch {
		if ctx.Err() != nil || !s.cr.Available() {
			// Keep the rest for the next flush rather than spend calls on
			// an API that is known to be down.
			s.Observe(o)
			continue
		}
		work <- o
	}
	close(work)
	wg.Wait()
}

// Seen takes a version of a resource read elsewhere (the episode cache's
// watch) for one the syncer has written or read: after a peer's or a
// controller's write, the next update then patches that version at once,
// where it would meet a conflict and read the resource again (three calls
// instead of one: replicas that flush the same hot resources would pay
// it at every flush). Resources the syncer does not hold are ignored, so
// this adds no memory. It must not keep rr.
func (s *StatusSyncer) Seen(rr *v1alpha1.RemediationRequest) {
	key := types.NamespacedName{Namespace: rr.Namespace, Name: rr.Name}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.written[key]
	if !ok || !newer(rr.ResourceVersion, w.rv) {
		return
	}
	s.written[key] = written{rv: rr.ResourceVersion, status: *rr.Status.DeepCopy(), at: w.at}
}

// newer reports whether resourceVersion a is later than b. They are etcd
// revisions; ones that do not parse are taken when they differ (at worst
// the patch meets a conflict and reads the resource again).
func newer(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA != nil || errB != nil {
		return a != b
	}
	return x > y
}

// update raises the resource's status to the observation with one merge
// patch that carries the resourceVersion last seen: the API server rejects
// it with 409 if anyone wrote since (another replica, a controller), and
// the resource is read again. So the steady state costs one small call per
// resource and flush, and a count is never lowered.
func (s *StatusSyncer) update(ctx context.Context, o pipeline.Observation) error {
	key := types.NamespacedName{Namespace: o.Namespace, Name: o.Name}
	for attempt := 0; ; attempt++ {
		s.mu.Lock()
		last, known := s.written[key]
		s.mu.Unlock()
		if !known {
			var rr v1alpha1.RemediationRequest
			err := s.cr.call(ctx, func(ctx context.Context) error { return s.c.Get(ctx, key, &rr) })
			s.called(CallGet, err)
			if err == nil {
				s.cr.observe(&rr)
			}
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return s.cr.classify("status", err)
			}
			last = written{rv: rr.ResourceVersion, status: rr.Status}
		}
		st := *last.status.DeepCopy()
		if !apply(&st, o) {
			s.remember(key, last)
			return nil
		}
		status := map[string]any{"deduplication": st.Deduplication}
		if last.status.Phase == "" {
			// Pending until a controller takes it; never over a
			// controller's phase (the resourceVersion guards the race).
			status["phase"] = st.Phase
		}
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": last.rv},
			"status":   status,
		})
		if err != nil {
			return err
		}
		obj := &v1alpha1.RemediationRequest{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		err = s.cr.call(ctx, func(ctx context.Context) error {
			return s.c.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch))
		})
		s.called(CallPatch, err)
		switch {
		case err == nil:
			s.cr.observe(obj)
			s.remember(key, written{rv: obj.ResourceVersion, status: obj.Status})
			return nil
		case apierrors.IsNotFound(err):
			s.forget(key)
			return nil
		case apierrors.IsConflict(err) && attempt < 3:
			s.forget(key)
			continue
		}
		s.forget(key)
		return s.cr.classify("status", err)
	}
}

// written is what the syncer last wrote to, or read from, a resource.
type written struct {
	rv     string
	status v1alpha1.RemediationRequestStatus
	at     time.Time
}

func (s *StatusSyncer) remember(key types.NamespacedName, w written) {
	w.at = time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.written[key]; !ok && len(s.written) >= maxPending {
		// Forget what has not been written for longest: a miss costs one
		// read, never correctness.
		for k, v := range s.written {
			if time.Since(v.at) > forgetAfter {
				delete(s.written, k)
			}
		}
		if len(s.written) >= maxPending {
			return
		}
	}
	s.written[key] = w
}

// Ended drops what the syncer holds of an episode's version: the episode
// cache calls it for an episode that ended (a terminal phase, a deletion),
// whose count no longer moves, so that the versions held stay bounded by the
// open episodes rather than by every resource written since the start (a
// later write, if any, reads the resource first).
func (s *StatusSyncer) Ended(fingerprint string, seq int64) {
	s.forget(types.NamespacedName{Namespace: s.cr.Namespace(), Name: s.cr.Name(fingerprint, seq)})
}

func (s *StatusSyncer) forget(key types.NamespacedName) {
	s.mu.Lock()
	delete(s.written, key)
	s.mu.Unlock()
}

// apply raises st to o and reports whether anything changed.
func apply(st *v1alpha1.RemediationRequestStatus, o pipeline.Observation) bool {
	changed := false
	if st.Phase == "" {
		st.Phase = v1alpha1.PhasePending
		changed = true
	}
	d := st.Deduplication
	if d == nil {
		d = &v1alpha1.Deduplication{FirstSeen: metav1.NewTime(o.FirstSeen)}
		st.Deduplication = d
		changed = true
	}
	if o.Count > d.OccurrenceCount {
		d.OccurrenceCount = o.Count
		changed = true
	}
	if !o.FirstSeen.IsZero() && o.FirstSeen.Before(d.FirstSeen.Time) {
		d.FirstSeen = metav1.NewTime(o.FirstSeen)
		changed = true
	}
	if o.LastSeen.Truncate(time.Second).After(d.LastSeen.Time) {
		d.LastSeen = metav1.NewTime(o.LastSeen)
		changed = true
	}
	return changed
}
