package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Options configure a Processor.
type Options struct {
	// Lease is the dedup store's reservation lease. A request that has held
	// its reservations longer than the lease (a paused process) does not
	// create: another request may have opened the episode since. Default:
	// 20s.
	Lease time.Duration
	// Hooks are test-only timing hooks. Default: none.
	Hooks Hooks
	// Now reads the clock for the times the gateway records (first and last
	// seen); a test seam for replicas whose clocks differ. Timeouts always
	// use the real clock. Default: time.Now.
	Now func() time.Time
	// Logger receives one line per settlement that failed after the
	// answer. Default: slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Lease <= 0 {
		o.Lease = 20 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

const (
	// createConcurrency bounds the parallel API calls of one batch: they
	// overlap within a bound the API server can take.
	createConcurrency = 8
	// fenceMargin is how much of the lease must be left for a create to
	// start.
	fenceMargin = time.Second
	// settleGrace bounds a commit or a release, which run after the answer
	// (the API server holds the truth; the commit only keeps the fast path
	// current).
	settleGrace = time.Second
)

// Processor runs a batch through view → claim → open or attach → answer,
// then settles the reservations in the background. A batch is
// all-or-retry: it succeeds only if every valid signal is stored; what was
// stored before a failure is in the API server, so the retried batch
// attaches to those episodes and opens nothing twice.
type Processor struct {
	opts     Options
	dedup    Deduper
	creator  Creator
	episodes Episodes
	status   StatusSink

	settling sync.WaitGroup
}

// NewProcessor returns a Processor; status may be nil.
func NewProcessor(d Deduper, c Creator, e Episodes, status StatusSink, opts Options) (*Processor, error) {
	if d == nil || c == nil || e == nil {
		return nil, errors.New("pipeline: deduper, creator and episodes are required")
	}
	opts.setDefaults()
	return &Processor{opts: opts, dedup: d, creator: c, episodes: e, status: status}, nil
}

// Wait waits for the settlements still running (at shutdown).
func (p *Processor) Wait() { p.settling.Wait() }

// group is one distinct fingerprint of the batch.
type group struct {
	sig     *Signal // first signal with this fingerprint
	indexes []int   // positions in the request
	members []Member
	claim   Claim
	res     ClaimResult
	seq     int64
	count   int64
	created bool
	// updateMembers: the occurrence changes its episode's members.
	updateMembers bool
	err           error
	// first backs indexes for the usual single occurrence.
	first [1]int
}

func (g *group) fp() string { return g.sig.Fingerprint }

// Process handles every signal of req. On error, Result is empty and the
// error is a *DependencyError (503), a *DeadlineError (504) or another error
// (500).
func (p *Processor) Process(ctx context.Context, req *Request) (*Result, error) {
	res := &Result{Outcomes: make([]Outcome, len(req.Signals)), Ignored: req.Ignored, Rejected: req.Rejected}
	if len(req.Signals) == 0 {
		return res, nil
	}
	if !p.episodes.Synced() {
		return nil, &DependencyError{Dependency: Kubernetes, Op: "episodes", Kind: KindNotSynced,
			Err: errors.New("the gateway has not yet read its episodes from the API server")}
	}
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
	var fps []string
	if p.opts.Hooks != nil {
		fps = make([]string, len(groups))
		for i, g := range groups {
			fps[i] = g.fp()
		}
	}
	// While the API is known to be down, occurrences still attach to the
	// episodes the cache knows are open, but nothing is reserved that could
	// not be opened.
	peek := !p.creator.Available()
	for _, g := range groups {
		g.claim.View = p.episodes.View(g.fp())
		g.claim.Peek = peek
	}
	if !p.episodes.Healthy() && !peek {
		// The cache is not watching and may lag: ask the API server. A
		// fingerprint it cannot read only attaches.
		p.parallel(len(groups), func(k int) {
			g := groups[k]
			if v, err := p.creator.Episodes(ctx, g.fp()); err == nil {
				g.claim.View = v
			} else {
				g.claim.Peek = true
			}
		})
	}
	token := newToken()
	claimedAt := time.Now()
	if err := p.claim(ctx, token, now, groups); err != nil {
		// Some scripts may have run before the failure: release whatever
		// this request may hold. Best effort, and the failure already has
		// its log line.
		p.settle("", token, now, releases(groups))
		return err
	}
	p.opts.Hooks.run(ctx, AfterReserve, fps)
	if err := p.verify(ctx, token, now, groups); err != nil {
		p.settle("", token, now, releases(groups))
		return err
	}

	var toOpen []*group
	for _, g := range groups {
		switch g.res.State {
		case Attached:
			g.seq, g.count = g.res.Seq, g.res.Count
			g.updateMembers = p.episodes.NeedsMembers(g.fp(), g.seq, g.members)
		case Reserved, InFlight:
			toOpen = append(toOpen, g)
		case Absent:
			// A peek reserves nothing: there is nothing to release.
			return &DependencyError{Dependency: Kubernetes, Op: "create", Kind: KindBreakerOpen, Err: errors.New("circuit breaker open")}
		default:
			return fmt.Errorf("pipeline: unexpected claim state %s for %s", g.res.State, g.fp())
		}
	}
	if len(toOpen) > 0 {
		if time.Since(claimedAt) > p.opts.Lease-fenceMargin {
			p.settle(req.ID, token, now, releases(groups))
			return &DependencyError{Dependency: Redis, Op: "claim", Kind: KindTimeout,
				Err: errors.New("the reservation lease ran out before the create (was the process paused?)")}
		}
		p.opts.Hooks.run(ctx, BeforeCreate, fps)
		p.parallel(len(toOpen), func(k int) {
			g := toOpen[k]
			r, err := p.creator.Open(ctx, g.sig, g.members, g.res.Seq)
			if err != nil {
				g.err = err
				return
			}
			g.seq, g.created, g.updateMembers = r.Seq, r.Created, r.NeedsMembers
			g.count = g.res.Count
			if !r.Created {
				// Attached to an episode another request opened: continue
				// its count.
				g.count = max(g.res.Count, r.Count+g.claim.Increment)
			}
		})
		p.opts.Hooks.run(ctx, AfterCreate, fps)
	}
	p.parallel(len(groups), func(k int) {
		g := groups[k]
		if !g.updateMembers || g.err != nil {
			return
		}
		found, err := p.creator.UpdateMembers(ctx, g.fp(), g.seq, g.members, now)
		switch {
		case err != nil:
			g.err = err
		case !found:
			g.err = &DependencyError{Dependency: Kubernetes, Op: "members", Kind: KindConflict,
				Err: fmt.Errorf("episode %d ended while the occurrence attached to it", g.seq)}
		}
	})

	// The API server holds what was stored; the commits keep the fast
	// path current and need not delay the answer.
	var settle []Settlement
	var failed error
	for _, g := range groups {
		if g.err != nil && !rejected(g.err) && failed == nil {
			failed = g.err
		}
		if g.res.State != Reserved {
			continue // an in-flight claim belongs to another request
		}
		s := Settlement{Fingerprint: g.fp(), Seq: g.seq}
		if g.err == nil && g.seq > 0 {
			s.Commit, s.Count = true, g.count
		}
		settle = append(settle, s)
	}
	p.settle(req.ID, token, now, settle)
	if failed != nil {
		return failed
	}

	ns := p.creator.Namespace()
	for _, g := range groups {
		if g.err != nil {
			for _, i := range g.indexes {
				res.reject(req, i, g.err)
			}
			continue
		}
		name := p.creator.Name(g.fp(), g.seq)
		for k, i := range g.indexes {
			o := Outcome{Index: req.Signals[i].Index, Fingerprint: g.fp(), Namespace: ns, Name: name, Status: StatusDuplicate,
				OccurrenceCount: g.count, Warnings: req.Signals[i].Warnings}
			// Repeats of a fingerprint inside one batch are duplicates of
			// its first occurrence.
			if g.created && k == 0 {
				o.Status = StatusCreated
			}
			o.Duplicate = o.Status == StatusDuplicate
			res.Outcomes[i] = o
		}
		if p.status != nil {
			first := g.res.FirstSeen
			if first.IsZero() || g.created {
				first = now
			}
			p.status.Observe(Observation{Namespace: ns, Name: name, Count: g.count, FirstSeen: first, LastSeen: now})
		}
	}
	return nil
}

// claim runs one round trip for the groups' claims.
func (p *Processor) claim(ctx context.Context, token string, now time.Time, groups []*group) error {
	claims := make([]Claim, len(groups))
	for i, g := range groups {
		claims[i] = g.claim
	}
	results, err := p.dedup.Claim(ctx, token, now, claims)
	if err != nil {
		return err
	}
	for i, g := range groups {
		g.res = results[i]
	}
	return nil
}

// verify settles the claims whose record names an episode the cache does
// not know: it reads those fingerprints from the API server and claims
// them again with that authoritative view.
func (p *Processor) verify(ctx context.Context, token string, now time.Time, groups []*group) error {
	var again []*group
	for _, g := range groups {
		if g.res.State == Verify {
			again = append(again, g)
		}
	}
	if len(again) == 0 {
		return nil
	}
	errs := make([]error, len(again))
	p.parallel(len(again), func(k int) {
		g := again[k]
		v, err := p.creator.Episodes(ctx, g.fp())
		if err != nil {
			errs[k] = err
			return
		}
		g.claim.View = v
	})
	if err := errors.Join(errs...); err != nil {
		if de, ok := AsDependencyError(errs[0]); ok {
			return de
		}
		return err
	}
	return p.claim(ctx, token, now, again)
}

// rejected reports whether err refuses one signal for good (the API server
// found it invalid): the others of the batch are stored all the same.
func rejected(err error) bool {
	de, ok := AsDependencyError(err)
	return ok && de.Kind == KindRejected
}

// reject records that signal i of req could not be stored.
func (r *Result) reject(req *Request, i int, err error) {
	s := &req.Signals[i]
	r.Outcomes[i] = Outcome{Index: s.Index, Fingerprint: s.Fingerprint, Status: StatusRejected, Warnings: s.Warnings}
	field := ""
	if req.Source == SourcePrometheus {
		field = fmt.Sprintf("alerts[%d]", s.Index)
	}
	r.Rejected = append(r.Rejected, Rejection{Index: s.Index, Field: field, Reason: err.Error()})
}

// releases are the settlements that release every reservation of groups.
func releases(groups []*group) []Settlement {
	out := make([]Settlement, 0, len(groups))
	for _, g := range groups {
		out = append(out, Settlement{Fingerprint: g.fp()})
	}
	return out
}

// settle commits and releases in the background, bounded by settleGrace;
// if Redis cannot be reached the reservations expire with their lease, and
// the episodes are found again from the API server (a failure is logged
// with requestID; "" for a best-effort release, which logs nothing). A commit of an episode
// the cache no longer knows as open (a controller ended it meanwhile) is a
// release instead: Redis must not name an ended episode.
func (p *Processor) settle(requestID, token string, now time.Time, s []Settlement) {
	if len(s) == 0 {
		return
	}
	p.settling.Add(1)
	go func() {
		defer p.settling.Done()
		fps := make([]string, len(s))
		for i := range s {
			fps[i] = s[i].Fingerprint
		}
		p.opts.Hooks.run(context.Background(), BeforeCommit, fps)
		for i := range s {
			if s[i].Commit && p.episodes.View(s[i].Fingerprint).Open != s[i].Seq {
				s[i] = Settlement{Fingerprint: s[i].Fingerprint}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), settleGrace)
		defer cancel()
		if err := p.dedup.Settle(ctx, token, now, s); err != nil && requestID != "" {
			attrs := []slog.Attr{slog.String("request_id", requestID), slog.Any("fingerprints", fps)}
			if d, ok := AsDependencyError(err); ok {
				attrs = append(attrs, slog.String("dependency", string(d.Dependency)), slog.String("operation", d.Op), slog.String("kind", string(d.Kind)))
			}
			p.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "reservations not settled; they expire with their lease", append(attrs, slog.String("error", err.Error()))...)
		}
	}()
}

// smallBatch is the batch size up to which grouping compares fingerprints
// directly instead of building a map.
const smallBatch = 16

// group merges the signals of a batch by fingerprint, keeping request
// order, and each group's members by ID. The groups live in one slice
// allocated up front (it never grows, so the pointers stay valid).
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
			store = append(store, group{sig: s, claim: Claim{Fingerprint: s.Fingerprint}})
			g = &store[len(store)-1]
			g.indexes = g.first[:0]
			if byFP != nil {
				byFP[s.Fingerprint] = g
			}
			groups = append(groups, g)
		}
		g.indexes = append(g.indexes, i)
		g.claim.Increment++
		if m, ok := MemberOf(s); ok {
			g.members = addMember(g.members, m)
		}
	}
	return groups
}

// addMember merges m into ms by ID, keeping the latest firing and the
// resolution of the latest firing.
func addMember(ms []Member, m Member) []Member {
	for i := range ms {
		if ms[i].ID != m.ID {
			continue
		}
		if m.FiringSince.After(ms[i].FiringSince) {
			ms[i].FiringSince = m.FiringSince
		}
		if m.ResolvedSince.After(ms[i].ResolvedSince) || (m.ResolvedSince.Equal(ms[i].ResolvedSince) && m.ResolvedAt.After(ms[i].ResolvedAt)) {
			ms[i].ResolvedSince, ms[i].ResolvedAt = m.ResolvedSince, m.ResolvedAt
		}
		return ms
	}
	return append(ms, m)
}

// parallel runs fn(0..n-1), at most createConcurrency at a time.
func (p *Processor) parallel(n int, fn func(k int)) {
	if n == 1 {
		fn(0)
		return
	}
	sem := make(chan struct{}, createConcurrency)
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

// processResolved records each resolution on the open episode of its
// fingerprint. A resolution whose firing occurrence is still being stored
// is answered 503, so that the sender retries it once the episode exists.
func (p *Processor) processResolved(ctx context.Context, req *Request, idx []int, res *Result) error {
	now := p.opts.Now()
	groups := p.group(req, idx)
	var lookup []string
	var lookupOf []*group
	for _, g := range groups {
		g.claim.View = p.episodes.View(g.fp())
		if g.claim.View.Open == 0 || !p.episodes.Healthy() {
			lookup = append(lookup, g.fp())
			lookupOf = append(lookupOf, g)
		}
	}
	if len(lookup) > 0 {
		recs, err := p.dedup.Lookup(ctx, lookup)
		if err != nil {
			return err
		}
		for k, g := range lookupOf {
			rec := recs[k]
			switch {
			case rec.State == ReservedRecord:
				return &DependencyError{Dependency: Kubernetes, Op: "resolve", Kind: KindInFlight,
					Err: errors.New("the firing occurrence of a resolved alert is still being stored")}
			case !p.episodes.Healthy() || (rec.State == CommittedRecord && rec.Seq != g.claim.View.Open):
				// The cache may lag what the record names: ask the API.
				v, err := p.creator.Episodes(ctx, g.fp())
				if err != nil {
					return err
				}
				g.claim.View = v
			}
		}
	}
	errs := make([]error, len(groups))
	p.parallel(len(groups), func(k int) {
		g := groups[k]
		if g.claim.View.Open == 0 || len(g.members) == 0 {
			return // nothing open to resolve
		}
		found, err := p.creator.UpdateMembers(ctx, g.fp(), g.claim.View.Open, g.members, now)
		if err != nil {
			errs[k] = err
			return
		}
		if found {
			g.seq = g.claim.View.Open
		}
	})
	for k, err := range errs {
		if err != nil && !rejected(err) {
			return err
		}
		if err != nil {
			for _, i := range groups[k].indexes {
				res.reject(req, i, err)
			}
			groups[k].err = err
		}
	}
	ns := p.creator.Namespace()
	for _, g := range groups {
		if g.err != nil {
			continue
		}
		for _, i := range g.indexes {
			o := Outcome{Index: req.Signals[i].Index, Fingerprint: g.fp(), Status: StatusResolved, Warnings: req.Signals[i].Warnings}
			if g.seq > 0 {
				o.Namespace, o.Name = ns, p.creator.Name(g.fp(), g.seq)
			}
			res.Outcomes[i] = o
		}
	}
	return nil
}

func newToken() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}
