package scenario

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alertgate/gateway/chaos/check"
	"github.com/alertgate/gateway/internal/pipeline"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/fault"
	"github.com/alertgate/gateway/testenv/load"
)

// Event is a point on a scenario's timeline.
type Event struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"` // phase, inject, heal, recovered, note
	Detail string    `json:"detail"`
}

// Recovery is the time from a heal to the first 201 after it.
type Recovery struct {
	Fault    string        `json:"fault"`
	HealedAt time.Time     `json:"healedAt"`
	After    time.Duration `json:"after"`
	OK       bool          `json:"ok"`
}

// T is what a scenario's Run sees: the environment, its gateways and load
// client, and the ways to inject faults, expect outcomes and check
// invariants. Its methods are safe for concurrent use; run goroutines that
// may call Fatalf with Go.
type T struct {
	Ctx       context.Context
	Env       *testenv.Env
	Gateways  []*testenv.Gateway
	Client    *load.Client
	Namespace string
	KeyPrefix string
	// Lease is the gateways' reservation lease.
	Lease time.Duration
	// Stores are what the checks read: the Env's Redis and API server,
	// unless the scenario's Setup brought its own Redis.
	Stores check.Stores
	// Extra is what a scenario's Setup leaves for its Run.
	Extra any
	// Logf prints progress.
	Logf func(format string, args ...any)
	// OnEvent, when set, sees every timeline event (progress display).
	OnEvent func(Event)

	hooks atomic.Pointer[pipeline.Hooks]

	mu         sync.Mutex
	violations []check.Violation
	timeline   []Event
	recoveries []Recovery
	phase      string
	seq        int
	active     map[string]fault.Undo
	deferred   []func()
	checked    map[string]bool
	reported   map[check.Violation]bool
}

// failNow aborts a scenario's Run; the runner recovers it.
type failNow struct{}

// NewT is called by the runner.
func NewT(ctx context.Context, e *testenv.Env, ns, prefix string, lease time.Duration, c *load.Client) *T {
	t := &T{Ctx: ctx, Env: e, Namespace: ns, KeyPrefix: prefix, Lease: lease, Client: c, active: map[string]fault.Undo{},
		Logf: func(string, ...any) {}, Stores: check.EnvStores(e)}
	t.hooks.Store(&pipeline.Hooks{})
	return t
}

// HookDispatch is the pipeline.Hooks a runner gives its gateways: each
// point calls what the scenario set with SetHook at that moment.
func (t *T) HookDispatch() pipeline.Hooks {
	h := pipeline.Hooks{}
	for _, p := range pipeline.HookPoints {
		h[p] = func(ctx context.Context, p pipeline.HookPoint, fps []string) {
			if f := (*t.hooks.Load())[p]; f != nil {
				f(ctx, p, fps)
			}
		}
	}
	return h
}

// SetHook makes point run f in every gateway until ClearHooks.
func (t *T) SetHook(point pipeline.HookPoint, f pipeline.Hook) {
	cur := *t.hooks.Load()
	next := pipeline.Hooks{}
	for k, v := range cur {
		next[k] = v
	}
	next[point] = f
	t.hooks.Store(&next)
}

// ClearHooks removes every hook.
func (t *T) ClearHooks() { t.hooks.Store(&pipeline.Hooks{}) }

// Phase starts a named phase of the timeline.
func (t *T) Phase(name string) {
	t.mu.Lock()
	t.phase = name
	t.mu.Unlock()
	t.event("phase", name)
	t.Logf("phase: %s", name)
}

func (t *T) event(kind, detail string) Event {
	ev := Event{At: time.Now(), Kind: kind, Detail: detail}
	t.mu.Lock()
	t.timeline = append(t.timeline, ev)
	t.mu.Unlock()
	if t.OnEvent != nil {
		t.OnEvent(ev)
	}
	return ev
}

// Note adds a free-form event (a measured figure, say).
func (t *T) Note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	t.event("note", msg)
	t.Logf("%s", msg)
}

// Inject applies f; the fault stays until Heal or the end of the scenario.
func (t *T) Inject(f fault.Fault) {
	undo, err := f.Inject(t.Ctx, t.Env)
	if err != nil {
		t.Fatalf("inject %s: %v", f, err)
	}
	t.mu.Lock()
	t.active[f.String()] = undo
	t.mu.Unlock()
	t.event("inject", f.String())
}

// Heal removes an injected fault and returns the time it was removed.
func (t *T) Heal(f fault.Fault) time.Time {
	t.mu.Lock()
	undo := t.active[f.String()]
	delete(t.active, f.String())
	t.mu.Unlock()
	if undo == nil {
		t.Fatalf("heal %s: not injected", f)
	}
	if err := undo(t.Ctx); err != nil {
		t.Fatalf("heal %s: %v", f, err)
	}
	return t.event("heal", f.String()).At
}

// HealAll removes every fault still injected; the runner calls it.
func (t *T) HealAll(ctx context.Context) error {
	t.mu.Lock()
	active := t.active
	t.active = map[string]fault.Undo{}
	t.mu.Unlock()
	names := make([]string, 0, len(active))
	for n := range active {
		names = append(names, n)
	}
	sort.Strings(names)
	var first error
	for _, n := range names {
		if err := active[n](ctx); err != nil && first == nil {
			first = err
		}
		t.event("heal", n)
	}
	return first
}

// Expect records a violation unless ok.
func (t *T) Expect(ok bool, format string, args ...any) bool {
	if !ok {
		t.violate(check.Violation{Invariant: check.Expectations, Detail: fmt.Sprintf(format, args...)})
	}
	return ok
}

// ExpectOneResourceEach expects exactly one resource for each signal in st.
func (t *T) ExpectOneResourceEach(st *check.State, sigs []load.Signal, when string) {
	for _, s := range sigs {
		n := len(st.ResourcesFor(s))
		t.Expect(n == 1, "%s: signal %s has %d resources, want exactly 1", when, s.Key(), n)
	}
}

// Fatalf records a violation and stops the scenario.
func (t *T) Fatalf(format string, args ...any) {
	t.violate(check.Violation{Invariant: check.Expectations, Detail: fmt.Sprintf(format, args...)})
	panic(failNow{})
}

// Violate records a broken invariant.
func (t *T) Violate(v check.Violation) { t.violate(v) }

// violate records v once: the runner's final check sees again what a
// scenario's last check saw, and a lasting fault is counted once.
func (t *T) violate(v check.Violation) {
	t.mu.Lock()
	if t.reported[v] {
		t.mu.Unlock()
		return
	}
	if t.reported == nil {
		t.reported = map[check.Violation]bool{}
	}
	t.reported[v] = true
	if t.phase != "" {
		v.Detail = "[" + t.phase + "] " + v.Detail
	}
	t.violations = append(t.violations, v)
	t.mu.Unlock()
	t.Logf("VIOLATION %s", v)
}

// MarkChecked records that the named invariants were checked, so that a
// report tells "held" from "never checked".
func (t *T) MarkChecked(names ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.checked == nil {
		t.checked = map[string]bool{}
	}
	for _, n := range names {
		t.checked[n] = true
	}
}

// Checked reports whether the named invariant was checked.
func (t *T) Checked(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.checked[name]
}

// Violations returns what went wrong so far.
func (t *T) Violations() []check.Violation {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]check.Violation(nil), t.violations...)
}

// Timeline returns the events so far.
func (t *T) Timeline() []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Event(nil), t.timeline...)
}

// Recoveries returns the measured recoveries.
func (t *T) Recoveries() []Recovery {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Recovery(nil), t.recoveries...)
}

// Defer registers fn to run when the scenario ends (after the final
// checks), last registered first.
func (t *T) Defer(fn func()) {
	t.mu.Lock()
	t.deferred = append(t.deferred, fn)
	t.mu.Unlock()
}

// RunDeferred runs what Defer registered; the runner calls it.
func (t *T) RunDeferred() {
	t.mu.Lock()
	fns := t.deferred
	t.deferred = nil
	t.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// Run runs fn, turning a Fatalf into a return.
func (t *T) Run(fn func(*T)) {
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(failNow); !ok {
				panic(v)
			}
		}
	}()
	fn(t)
}

// Go runs fn in a goroutine counted by wg. A Fatalf there ends that
// goroutine only, its violation recorded: unrecovered off the scenario's
// goroutine, it would end the whole process.
func (t *T) Go(wg *sync.WaitGroup, fn func()) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		t.Run(func(*T) { fn() })
	}()
}

// Signals makes n new signals unique to this scenario and call.
func (t *T) Signals(name string, n int) []load.Signal {
	t.mu.Lock()
	t.seq++
	prefix := fmt.Sprintf("pod-%d", t.seq)
	t.mu.Unlock()
	return load.Pods(name, t.Namespace, prefix, n, time.Now().Truncate(time.Second))
}

// Send sends signals as one webhook to gateway i.
func (t *T) Send(i int, sigs []load.Signal) load.Record {
	return t.Client.Send(t.Ctx, t.Gateways[i%len(t.Gateways)].URL, sigs)
}

// SendEach sends each signal as its own webhook to gateway i, one after
// the other.
func (t *T) SendEach(i int, sigs []load.Signal) []load.Record {
	out := make([]load.Record, len(sigs))
	for k, s := range sigs {
		out[k] = t.Send(i, []load.Signal{s})
	}
	return out
}

// SendSpaced sends each signal as its own webhook, gap apart.
func (t *T) SendSpaced(i int, sigs []load.Signal, gap time.Duration) []load.Record {
	out := make([]load.Record, len(sigs))
	for k, s := range sigs {
		if k > 0 {
			time.Sleep(gap)
		}
		out[k] = t.Send(i, []load.Signal{s})
	}
	return out
}

// RetryBackoff sends sigs as Alertmanager does: after a 5xx or no answer it
// tries the next gateway after a backoff doubling from 100 ms to 2 s, until
// a 2xx or 4xx, until attempts are spent, or until the next try would start
// after until (zero: no limit) or ctx ends. It returns the last answer; ctx
// ends the waiting, never a request under way.
func (t *T) RetryBackoff(ctx context.Context, i int, sigs []load.Signal, attempts int, until time.Time) load.Record {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		r := t.Client.SendAttempt(context.WithoutCancel(ctx), t.Gateways[(i+attempt)%len(t.Gateways)].URL, sigs, attempt)
		next := time.Now().Add(backoff)
		if r.Acknowledged() || (r.Status >= 400 && r.Status < 500) || attempt >= attempts || (!until.IsZero() && next.After(until)) {
			return r
		}
		select {
		case <-ctx.Done():
			return r
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// Retry sends signals until stored, as Alertmanager would, bounded.
func (t *T) Retry(i int, sigs []load.Signal) load.Record {
	rs := t.Client.SendUntilStored(t.Ctx, t.Gateways[i%len(t.Gateways)].URL, sigs, 60, 250*time.Millisecond)
	return rs[len(rs)-1]
}

// Check reads both stores and checks I1–I4 (I4 only if consistent).
func (t *T) Check(consistent bool) *check.State {
	st, err := check.Read(t.Ctx, t.Stores, t.Namespace, t.KeyPrefix)
	if err != nil {
		t.Fatalf("read state: %v", err)
	}
	vs := check.CheckNoOrphan(st, t.Lease)
	vs = append(vs, check.CheckNoLoss(st, t.Client.Records())...)
	vs = append(vs, check.CheckNoDuplicate(st)...)
	t.MarkChecked(check.NoOrphan, check.NoLoss, check.NoDuplicate)
	if consistent {
		vs = append(vs, check.CheckConsistent(st)...)
		t.MarkChecked(check.Consistent)
	}
	for _, v := range vs {
		t.violate(v)
	}
	return st
}

// WaitLease waits out the reservation lease, then checks that no
// reservation is left.
func (t *T) WaitLease() {
	t.Note("waiting out the %s lease", t.Lease)
	select {
	case <-time.After(t.Lease + 200*time.Millisecond):
	case <-t.Ctx.Done():
		t.Fatalf("cancelled")
	}
	st, err := check.Read(t.Ctx, t.Stores, t.Namespace, t.KeyPrefix)
	if err != nil {
		t.Fatalf("read state: %v", err)
	}
	for _, v := range check.CheckNoReservation(st) {
		t.violate(v)
	}
}

// MeasureRecovery sends a new signal every 100 ms from healedAt until one
// is answered 201 (at most 30 s) and records the time to it.
func (t *T) MeasureRecovery(faultName string, healedAt time.Time) time.Duration {
	deadline := healedAt.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r := t.Send(0, t.Signals("RecoveryProbe", 1))
		if r.Status == 201 {
			after := r.Start.Add(r.Duration).Sub(healedAt)
			t.mu.Lock()
			t.recoveries = append(t.recoveries, Recovery{Fault: faultName, HealedAt: healedAt, After: after, OK: true})
			t.mu.Unlock()
			t.event("recovered", fmt.Sprintf("%s: first 201 after %s", faultName, after.Round(time.Millisecond)))
			return after
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-t.Ctx.Done():
			t.Fatalf("cancelled")
		}
	}
	t.mu.Lock()
	t.recoveries = append(t.recoveries, Recovery{Fault: faultName, HealedAt: healedAt, After: 30 * time.Second})
	t.mu.Unlock()
	t.Fatalf("no 201 within 30s of healing %s", faultName)
	return 0
}

// ExpectStatuses checks that every record's status is one of codes.
func (t *T) ExpectStatuses(rs []load.Record, what string, codes ...int) {
	for _, r := range rs {
		ok := false
		for _, c := range codes {
			ok = ok || r.Status == c
		}
		t.Expect(ok, "%s: request %d answered %d (%s), want one of %v", what, r.Seq, r.Status, trim(r.Err), codes)
	}
}

// ExpectFast checks that every record was answered within limit.
func (t *T) ExpectFast(rs []load.Record, what string, limit time.Duration) {
	for _, r := range rs {
		t.Expect(r.Duration <= limit, "%s: request %d took %s, over %s", what, r.Seq, r.Duration.Round(time.Millisecond), limit)
	}
}

// ExpectRetryAfter checks that every 503/504 carries Retry-After.
func (t *T) ExpectRetryAfter(rs []load.Record) {
	for _, r := range rs {
		if r.Status == 503 || r.Status == 504 {
			t.Expect(r.RetryAfter != "", "request %d answered %d without Retry-After", r.Seq, r.Status)
		}
	}
}

func trim(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}
