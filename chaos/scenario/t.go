package scenario

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertgate/gateway/chaos/check"
	"github.com/alertgate/gateway/internal/pipeline"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/fault"
	"github.com/alertgate/gateway/testenv/load"
)

// T is what a scenario's Run sees: its context, the environment, its
// gateways, and the faults it injects and heals. What a run records
// (Timeline, timeline.go), how it sends (Sender, send.go) and the
// expectations scenarios share (Checks, expect.go) are parts of their own,
// embedded so that a timeline reads t.Phase, t.Send, t.Check. Its methods
// are safe for concurrent use; run goroutines that may call Fatalf with Go.
type T struct {
	Ctx      context.Context
	Env      *testenv.Env
	Gateways []*testenv.Gateway

	*Timeline
	*Sender
	*Checks

	hooks atomic.Pointer[pipeline.Hooks]
	rec   recorder

	mu       sync.Mutex
	active   map[string]fault.Undo
	deferred []func()
}

// Options configure a T; the runner makes them for each run.
type Options struct {
	// Env is the environment. Required.
	Env *testenv.Env
	// Client sends and records every request of the run. Required.
	Client *load.Client
	// Namespace holds the run's resources and KeyPrefix its Redis keys;
	// the checks read only those. Required.
	Namespace, KeyPrefix string
	// Lease is the gateways' reservation lease. Required.
	Lease time.Duration
	// Logf prints progress. Default: discarded.
	Logf func(format string, args ...any)
	// OnEvent sees every timeline event (progress display). Default: none.
	OnEvent func(Event)
}

// NewT is called by the runner.
func NewT(ctx context.Context, o Options) *T {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	t := &T{Ctx: ctx, Env: o.Env, active: map[string]fault.Undo{}}
	t.Timeline = &Timeline{logf: o.Logf, onEvent: o.OnEvent}
	t.Sender = &Sender{t: t, client: o.Client, namespace: o.Namespace}
	t.Checks = &Checks{t: t, stores: check.Stores{Redis: o.Env.RDB, Kube: o.Env.Kube}, namespace: o.Namespace, prefix: o.KeyPrefix, lease: o.Lease}
	t.hooks.Store(&pipeline.Hooks{})
	return t
}

// readRedis makes the checks read rdb instead of the environment's Redis.
func (t *T) readRedis(rdb redis.Cmdable) { t.Checks.stores.Redis = rdb }

// Inject applies f; the fault stays until Heal or the end of the scenario.
func (t *T) Inject(f fault.Fault) {
	undo, err := f.Inject(t.Ctx, t.Env)
	if err != nil {
		t.Fatalf("inject %s: %v", f, err)
	}
	t.mu.Lock()
	t.active[f.String()] = undo
	t.mu.Unlock()
	t.rec.injected(f, t.event("inject", f.String()).At)
}

// InjectAt injects f the first time a request reaches point, in the
// request's own goroutine, and lets the request go on (in-process
// gateways only: the scenario sets InProcess).
func (t *T) InjectAt(point pipeline.HookPoint, f fault.Fault) {
	var once sync.Once
	t.setHook(point, func(context.Context, pipeline.HookPoint, []string) {
		once.Do(func() { t.Inject(f) })
	})
}

// DelayAt holds the first request to reach point for d, as a pause of the
// gateway at that moment would (in-process gateways only).
func (t *T) DelayAt(point pipeline.HookPoint, d time.Duration) {
	var once sync.Once
	t.setHook(point, func(context.Context, pipeline.HookPoint, []string) {
		once.Do(func() {
			t.Note("holding a request at %s for %s", point, d)
			time.Sleep(d)
		})
	})
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
	at := t.event("heal", f.String()).At
	t.rec.healed(f.String(), at)
	return at
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
		t.rec.healed(n, t.event("heal", n).At)
	}
	if t.rec.nemesis != nil {
		if err := t.rec.nemesis.ReleaseAll(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Hooks is the pipeline.Hooks a runner gives its in-process gateways:
// each point calls what InjectAt set at that moment.
func (t *T) Hooks() pipeline.Hooks {
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

// setHook makes point run f in every gateway until ClearHooks.
func (t *T) setHook(point pipeline.HookPoint, f pipeline.Hook) {
	cur := *t.hooks.Load()
	next := pipeline.Hooks{}
	for k, v := range cur {
		next[k] = v
	}
	next[point] = f
	t.hooks.Store(&next)
}

// ClearHooks removes what InjectAt set.
func (t *T) ClearHooks() { t.hooks.Store(&pipeline.Hooks{}) }

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
