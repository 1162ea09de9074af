package create

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/pipeline"
)

// StatusOptions configure a StatusSyncer.
type StatusOptions struct {
	// Interval between flushes. Default: 1s.
	Interval time.Duration
	// Workers bounds concurrent status updates. Default: 4.
	Workers int
	// MaxPending bounds the resources waiting for an update; beyond it new
	// resources are dropped (their count stays correct in Redis and is
	// projected at their next occurrence). Default: 100000.
	MaxPending int
	// OnError is told about each failed update. Default: none.
	OnError func(key types.NamespacedName, err error)
}

// StatusSyncer projects the deduplication counts that Redis holds onto the
// RemediationRequest status, asynchronously, so that a duplicate costs one
// Redis round trip and no API call. Observations of one resource are
// coalesced; an update only ever raises the count, so replicas that observed
// different counts converge on the highest.
type StatusSyncer struct {
	c    client.Client
	cr   *Creator
	opts StatusOptions

	mu      sync.Mutex
	pending map[types.NamespacedName]pipeline.Observation
	dropped int64
}

var _ pipeline.StatusSink = (*StatusSyncer)(nil)

// NewStatusSyncer returns a syncer writing through the creator's client,
// timeout and breaker.
func NewStatusSyncer(cr *Creator, opts StatusOptions) *StatusSyncer {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 100000
	}
	return &StatusSyncer{c: cr.c, cr: cr, opts: opts, pending: map[types.NamespacedName]pipeline.Observation{}}
}

// Observe implements pipeline.StatusSink.
func (s *StatusSyncer) Observe(o pipeline.Observation) {
	key := types.NamespacedName{Namespace: o.Namespace, Name: o.Name}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.pending[key]
	if !ok {
		if len(s.pending) >= s.opts.MaxPending {
			s.dropped++
			return
		}
		s.pending[key] = o
		return
	}
	s.pending[key] = merge(cur, o)
}

// Pending returns the number of resources waiting for an update.
func (s *StatusSyncer) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
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
	for range min(s.opts.Workers, len(batch)) {
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
		if ctx.Err() != nil || s.cr.opts.Breaker.Open() {
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

// update raises the resource's status to the observation. It reads the
// resource and writes with its resourceVersion, retrying on conflict, so
// that concurrent replicas never lower a count or erase a phase or
// resolution set by someone else.
func (s *StatusSyncer) update(ctx context.Context, o pipeline.Observation) error {
	key := types.NamespacedName{Namespace: o.Namespace, Name: o.Name}
	for attempt := 0; ; attempt++ {
		var rr v1alpha1.RemediationRequest
		err := s.cr.call(ctx, func(ctx context.Context) error { return s.c.Get(ctx, key, &rr) })
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return s.cr.classify("status", err)
		}
		if !apply(&rr.Status, o) {
			return nil
		}
		err = s.cr.call(ctx, func(ctx context.Context) error { return s.c.Status().Update(ctx, &rr) })
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt >= 3 {
			return s.cr.classify("status", err)
		}
	}
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
