package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Options configure a Processor.
type Options struct {
	// Window is the dedup window; it also sizes the naming bucket.
	// Default: 5m.
	Window time.Duration
	// CreateConcurrency bounds parallel creates within one batch.
	// Default: 8.
	CreateConcurrency int
	// Hooks are test-only timing hooks. Default: none.
	Hooks Hooks
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.Window <= 0 {
		o.Window = 5 * time.Minute
	}
	if o.CreateConcurrency <= 0 {
		o.CreateConcurrency = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Processor runs a batch through claim → create → settle. A batch is
// all-or-retry: it succeeds only if every signal is stored; what was stored
// before a failure is committed, so the retried batch sees those signals as
// duplicates and creates nothing twice.
type Processor struct {
	opts    Options
	dedup   Deduper
	creator Creator
	status  StatusSink
}

// NewProcessor returns a Processor; status may be nil.
func NewProcessor(d Deduper, c Creator, status StatusSink, opts Options) (*Processor, error) {
	if d == nil || c == nil {
		return nil, errors.New("pipeline: deduper and creator are required")
	}
	opts.setDefaults()
	return &Processor{opts: opts, dedup: d, creator: c, status: status}, nil
}

// group is one distinct fingerprint of the batch.
type group struct {
	sig     *Signal // first signal with this fingerprint
	indexes []int   // positions in the request
	claim   Claim
	res     ClaimResult
	name    string // of the resource, from the claimed bucket
	created bool
	err     error
	// first backs indexes for the usual single occurrence.
	first [1]int
}

// Process handles every signal of req. On error, Result is empty and the
// error is a *DependencyError (503), a *DeadlineError (504) or another error
// (500).
func (p *Processor) Process(ctx context.Context, req *Request) (*Result, error) {
	res := &Result{Outcomes: make([]Outcome, len(req.Signals)), Ignored: req.Ignored}
	firing := make([]int, 0, len(req.Signals))
	var resolved []int
	for i := range req.Signals {
		if req.Signals[i].Resolved {
			resolved = append(resolved, i)
		} else {
			firing = append(firing, i)
		}
	}
	if len(firing) > 0 {
		if err := p.processFiring(ctx, req, firing, res); err != nil {
			return nil, deadlineOr(ctx, err)
		}
	}
	if len(resolved) > 0 {
		if err := p.processResolved(ctx, req, resolved, res); err != nil {
			return nil, deadlineOr(ctx, err)
		}
	}
	return res, nil
}

func (p *Processor) processFiring(ctx context.Context, req *Request, idx []int, res *Result) error {
	now := p.opts.Now()
	groups := p.group(req, idx)
	// The hooks' fingerprints are only made when there are hooks.
	var fps []string
	if p.opts.Hooks != nil {
		fps = make([]string, len(groups))
	}
	claims := make([]Claim, len(groups))
	// Peek while the API is known to be down: duplicates are still counted
	// and acknowledged, but nothing is reserved that could not be created.
	peek := !p.creator.Available()
	for i, g := range groups {
		g.claim.Peek = peek
		claims[i] = g.claim
		if fps != nil {
			fps[i] = g.sig.Fingerprint
		}
	}
	token := newToken()
	results, err := p.dedup.Claim(ctx, token, now, claims)
	if err != nil {
		// Some scripts may have run before the failure; release whatever
		// this request may hold (token-guarded, so no one else's lease).
		p.releaseAll(ctx, token, now, groups)
		return err
	}
	for i, g := range groups {
		g.res = results[i]
		g.name = ResourceName(g.sig.Fingerprint, g.res.Bucket)
	}
	p.opts.Hooks.run(ctx, AfterReserve, fps)

	var toCreate []*group
	absent := false
	for _, g := range groups {
		switch g.res.State {
		case Reserved, InFlight:
			toCreate = append(toCreate, g)
		case Absent:
			absent = true
		}
	}
	if absent {
		// A peek reserves nothing: there is nothing to release.
		return &DependencyError{Dependency: Kubernetes, Op: "create", Kind: KindBreakerOpen, Err: errors.New("circuit breaker open")}
	}

	if len(toCreate) > 0 {
		var renew []string
		for _, g := range toCreate {
			if g.res.State == Reserved {
				renew = append(renew, g.sig.Fingerprint)
			}
		}
		if len(renew) > 0 {
			if err := p.dedup.Renew(ctx, token, renew); err != nil {
				p.releaseAll(ctx, token, now, groups)
				return err
			}
		}
		p.opts.Hooks.run(ctx, BeforeCreate, fps)
		p.createAll(ctx, toCreate)
		p.opts.Hooks.run(ctx, AfterCreate, fps)
		p.opts.Hooks.run(ctx, BeforeCommit, fps)
		var settle []Settlement
		var createErr error
		for _, g := range toCreate {
			if g.err != nil {
				if createErr == nil {
					createErr = g.err
				}
				// An in-flight claim belongs to another request: leave it.
				if g.res.State == Reserved {
					settle = append(settle, Settlement{Fingerprint: g.sig.Fingerprint, Bucket: g.res.Bucket})
				}
				continue
			}
			settle = append(settle, Settlement{Fingerprint: g.sig.Fingerprint, Bucket: g.res.Bucket, Commit: true, Count: g.res.Count})
		}
		sctx, cancel := settleContext(ctx)
		err := p.dedup.Settle(sctx, token, now, settle)
		cancel()
		if err != nil {
			// Uncommitted reservations expire with their lease; resources
			// already created are found again by name on the retry.
			if createErr == nil {
				createErr = err
			}
		}
		if createErr != nil {
			return createErr
		}
	}

	ns := p.creator.Namespace()
	for _, g := range groups {
		status := StatusDuplicate
		if g.created {
			status = StatusCreated
		}
		for k, i := range g.indexes {
			o := Outcome{Fingerprint: g.sig.Fingerprint, Namespace: ns, Name: g.name, Status: status, OccurrenceCount: g.res.Count}
			// Repeats of a fingerprint inside one batch are duplicates of
			// its first occurrence.
			if k > 0 {
				o.Status = StatusDuplicate
			}
			o.Duplicate = o.Status == StatusDuplicate
			res.Outcomes[i] = o
		}
		if p.status != nil {
			first := g.res.FirstSeen
			if first.IsZero() {
				first = now
			}
			p.status.Observe(Observation{Namespace: ns, Name: g.name, Count: g.res.Count, FirstSeen: first, LastSeen: now})
		}
	}
	return nil
}

// smallBatch is the batch size up to which grouping compares fingerprints
// directly instead of building a map.
const smallBatch = 16

// group merges the signals of a batch by fingerprint, keeping request order.
// The groups live in one slice allocated up front (it never grows, so the
// pointers stay valid).
func (p *Processor) group(req *Request, idx []int) []*group {
	store := make([]group, 0, len(idx))
	groups := make([]*group, 0, len(idx))
	var byFP map[string]*group
	if len(idx) > smallBatch {
		byFP = make(map[string]*group, len(idx))
	}
	for _, i := range idx {
		s := &req.Signals[i]
		var g *group
		if byFP != nil {
			g = byFP[s.Fingerprint]
		} else {
			for _, h := range groups {
				if h.sig.Fingerprint == s.Fingerprint {
					g = h
					break
				}
			}
		}
		if g == nil {
			store = append(store, group{sig: s, claim: Claim{Fingerprint: s.Fingerprint, Bucket: Bucket(s, p.opts.Window)}})
			g = &store[len(store)-1]
			g.indexes = g.first[:0]
			if byFP != nil {
				byFP[s.Fingerprint] = g
			}
			groups = append(groups, g)
		}
		g.indexes = append(g.indexes, i)
		g.claim.Increment++
	}
	return groups
}

func (p *Processor) createAll(ctx context.Context, gs []*group) {
	p.parallel(len(gs), func(k int) {
		g := gs[k]
		created, existing, err := p.creator.Create(ctx, g.sig, g.name)
		if err != nil {
			g.err = err
			return
		}
		g.created = created
		if !created && g.res.State == Reserved && existing > 0 {
			// The resource outlived its Redis record (data loss or an
			// expired lease): continue its count rather than restart.
			g.res.Count = existing + g.claim.Increment
		}
	})
}

// parallel runs fn(0..n-1), at most CreateConcurrency at a time: the API
// calls of a batch overlap, within a bound the API server can take.
func (p *Processor) parallel(n int, fn func(k int)) {
	if n == 1 {
		fn(0)
		return
	}
	sem := make(chan struct{}, p.opts.CreateConcurrency)
	var wg sync.WaitGroup
	for k := 0; k < n; k++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(k)
		}()
	}
	wg.Wait()
}

func (p *Processor) releaseAll(ctx context.Context, token string, now time.Time, gs []*group) {
	rel := make([]Settlement, len(gs))
	for i, g := range gs {
		rel[i] = Settlement{Fingerprint: g.sig.Fingerprint}
	}
	// Best effort: if Redis cannot be reached the lease expires by itself.
	sctx, cancel := settleContext(ctx)
	defer cancel()
	_ = p.dedup.Settle(sctx, token, now, rel)
}

func (p *Processor) processResolved(ctx context.Context, req *Request, idx []int, res *Result) error {
	fps := make([]string, len(idx))
	for k, i := range idx {
		fps[k] = req.Signals[i].Fingerprint
	}
	found, err := p.dedup.Lookup(ctx, fps)
	if err != nil {
		return err
	}
	ns := p.creator.Namespace()
	errs := make([]error, len(idx))
	p.parallel(len(idx), func(k int) {
		i := idx[k]
		s := &req.Signals[i]
		bucket := Bucket(s, p.opts.Window)
		if found[k].Found {
			bucket = found[k].Bucket
		}
		name := ResourceName(s.Fingerprint, bucket)
		ok, err := p.creator.Resolve(ctx, s, name)
		if err != nil {
			errs[k] = err
			return
		}
		o := Outcome{Fingerprint: s.Fingerprint, Status: StatusResolved, OccurrenceCount: found[k].Count}
		if ok {
			o.Namespace, o.Name = ns, name
		}
		res.Outcomes[i] = o
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// settleGrace is how long a commit or release may run past the request's
// deadline: long enough for a healthy Redis (well under a millisecond),
// short enough to keep the answer punctual when Redis is the slow part.
const settleGrace = 250 * time.Millisecond

// settleContext keeps the request's deadline, but leaves at least
// settleGrace to commit what was created or release what was reserved: a
// request that ran out of time must still clean up after itself.
func settleContext(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(settleGrace)
	if d, ok := ctx.Deadline(); ok && d.After(deadline) {
		deadline = d
	}
	return context.WithDeadline(context.WithoutCancel(ctx), deadline)
}

func newToken() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}
