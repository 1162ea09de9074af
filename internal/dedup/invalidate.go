package dedup

import (
	"context"
	"sync"
	"time"
)

// Invalidator deletes, in the background, the records that name episodes
// the gateway saw end, so that Redis never points at an ended episode for
// longer than it takes to notice. It retries while Redis is unavailable,
// and runs each invalidation once more a second later: a commit that was
// in flight when the episode ended may have rewritten the record.
type Invalidator struct {
	store *Store
	// OnDeleted, when set, is told how many records each round deleted.
	OnDeleted func(n int)

	mu      sync.Mutex
	pending map[Ended]*pendingEnd
	wake    chan struct{}
}

type pendingEnd struct {
	due    time.Time
	second bool // the first pass succeeded; this is the late re-check
}

const (
	// maxPending bounds the invalidations waiting for Redis; beyond it the
	// oldest are forgotten (a claim never trusts such a record anyway: it
	// names an episode the gateway knows has ended).
	maxPending    = 100000
	invalidateMax = 1000 // per round trip
	retryAfter    = 500 * time.Millisecond
	recheckAfter  = time.Second
)

// NewInvalidator returns an Invalidator for the store's records.
func (s *Store) NewInvalidator() *Invalidator {
	return &Invalidator{store: s, pending: map[Ended]*pendingEnd{}, wake: make(chan struct{}, 1)}
}

// Enqueue asks for the record of fingerprint to be deleted if it names
// episode seq. It never blocks.
func (v *Invalidator) Enqueue(fingerprint string, seq int64) {
	v.mu.Lock()
	if len(v.pending) >= maxPending {
		v.dropOldest()
	}
	v.pending[Ended{Fingerprint: fingerprint, Seq: seq}] = &pendingEnd{due: time.Now()}
	v.mu.Unlock()
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

func (v *Invalidator) dropOldest() {
	var oldest Ended
	var at time.Time
	for k, p := range v.pending {
		if at.IsZero() || p.due.Before(at) {
			oldest, at = k, p.due
		}
	}
	delete(v.pending, oldest)
}

// Pending is the number of invalidations not yet done.
func (v *Invalidator) Pending() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.pending)
}

// Run invalidates until ctx is done.
func (v *Invalidator) Run(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-v.wake:
		case <-t.C:
		}
		v.round(ctx)
	}
}

func (v *Invalidator) round(ctx context.Context) {
	now := time.Now()
	v.mu.Lock()
	var due []Ended
	for k, p := range v.pending {
		if !p.due.After(now) {
			due = append(due, k)
			if len(due) == invalidateMax {
				break
			}
		}
	}
	v.mu.Unlock()
	if len(due) == 0 {
		return
	}
	n, err := v.store.Invalidate(ctx, due)
	v.mu.Lock()
	for _, k := range due {
		p := v.pending[k]
		switch {
		case p == nil:
		case err != nil:
			p.due = now.Add(retryAfter)
		case p.second:
			delete(v.pending, k)
		default:
			p.second, p.due = true, now.Add(recheckAfter)
		}
	}
	v.mu.Unlock()
	if err == nil && n > 0 && v.OnDeleted != nil {
		v.OnDeleted(n)
	}
}
