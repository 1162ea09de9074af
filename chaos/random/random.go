package random

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/alertgate/gateway/chaos/check"
	"github.com/alertgate/gateway/chaos/scenario"
	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/fault"
	"github.com/alertgate/gateway/testenv/history"
	"github.com/alertgate/gateway/testenv/load"
)

// Options of a random run.
type Options struct {
	// Seed draws the schedule and the load; the same seed replays them.
	// Default: 0.
	Seed int64
	// Duration is how long faults and load run. Required.
	Duration time.Duration
	// Workers are concurrent senders, each like one Alertmanager.
	// Default: 4.
	Workers int
	// Specs are the faults drawn from. Default: the whole catalogue, and
	// pauses when the gateways are processes.
	Specs []fault.Spec
	// Gateways is the number of replicas: every other one runs with a
	// 1 s --dedup-window, --max-in-flight 1 (overloaded whenever two
	// senders reach it at once) and, in-process, a clock 20 minutes slow
	// (a rolling change, a small replica, a skewed node). Default: 2.
	Gateways int
}

// Scenario returns the random run as a scenario.
func Scenario(o Options) *scenario.Scenario {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Gateways <= 0 {
		o.Gateways = 2
	}
	return &scenario.Scenario{
		Name: "random",
		Description: fmt.Sprintf("seed %d: random faults from the whole catalogue (a remediation controller among them; gateway pauses when the gateways are processes) "+
			"for %s under %d Alertmanager-like senders of alerts that fire, repeat, resolve, re-fire and escalate and of Events, "+
			"to replicas that differ in clock, window and --max-in-flight (overload); then the history is held against the model",
			o.Seed, o.Duration, o.Workers),
		Gateways: o.Gateways,
		Seed:     o.Seed,
		// Deadline and lease keep their shipped relation (lease >
		// deadline) but are shortened, so that quiescence takes seconds.
		Configure: func(c *config.Config) {
			c.Request.Deadline = config.D(3 * time.Second)
			c.Dedup.Lease = config.D(4 * time.Second)
			c.StatusInterval = config.D(time.Second)
		},
		Replica: func(i int, g *testenv.GatewayOptions) {
			if i%2 == 0 {
				return
			}
			before := g.Configure
			g.Configure = func(c *config.Config) {
				if before != nil {
					before(c)
				}
				c.Dedup.Window = config.D(time.Second)
				c.Request.MaxInFlight = 1
			}
			if g.Bin == "" {
				g.Clock = testenv.SkewedClock(-20 * time.Minute)
			}
		},
		Run: func(t *scenario.T) { runRandom(t, o) },
	}
}

// Steps is the schedule of a run on these gateways: from specs, or the
// whole catalogue and pauses when the gateways are processes.
func Steps(seed int64, d time.Duration, gateways []*testenv.Gateway, specs []fault.Spec) []Step {
	if specs == nil {
		specs = fault.Catalog()
		if p, ok := fault.PauseSpec(gateways); ok {
			specs = append(specs, p)
		}
	}
	return ScheduleOf(seed, d, specs)
}

// logged gives every remediation controller of f the run's log of
// actions, so that the history has them.
func logged(f fault.Fault, log *history.Log[history.Action]) fault.Fault {
	switch x := f.(type) {
	case fault.Controller:
		x.Log = log
		return x
	case fault.Together:
		out := make(fault.Together, len(x))
		for i, y := range x {
			out[i] = logged(y, log)
		}
		return out
	}
	return f
}

func runRandom(t *scenario.T, o Options) {
	steps := Steps(o.Seed, o.Duration, t.Gateways, o.Specs)
	for i := range steps {
		steps[i].Fault = logged(steps[i].Fault, t.Actions())
	}
	t.Note("seed %d: %d faults scheduled over %s", o.Seed, len(steps), o.Duration)
	t.Logf("schedule:\n%s", Describe(steps))
	t.Phase("random faults under load")
	start := time.Now()
	ctx, stop := context.WithDeadline(t.Ctx, start.Add(o.Duration))
	defer stop()

	var wg sync.WaitGroup
	t.Go(&wg, func() {
		for _, s := range steps {
			if !sleepUntil(ctx, start.Add(s.At)) {
				return
			}
			t.Inject(s.Fault)
			ok := sleepUntil(ctx, start.Add(s.At+s.For))
			t.Heal(s.Fault)
			if !ok {
				return
			}
		}
	})
	// A remediation controller is always at work in a cluster: it ends,
	// deletes and holds episodes for the whole run (more of them while a
	// drawn controller fault adds a second one).
	t.Inject(fault.Controller{Namespace: t.Namespace(), Seed: o.Seed, Every: 400 * time.Millisecond, Jitter: 200 * time.Millisecond,
		Weights: fault.RandomWeights, Log: t.Actions()})
	pool := load.NewPool(t.Namespace(), nil)
	for w := 0; w < o.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(o.Seed), uint64(w)+1))
			for ctx.Err() == nil {
				batch := pool.Next(r)
				send(ctx, t, w, batch)
				sleepUntil(ctx, time.Now().Add(time.Duration(20+r.IntN(80))*time.Millisecond))
			}
		}()
	}
	wg.Wait()

	t.Phase("quiescence")
	if err := t.HealAll(t.Ctx); err != nil {
		t.Fatalf("heal: %v", err)
	}
	if err := t.Env.Heal(t.Ctx); err != nil {
		t.Fatalf("heal environment: %v", err)
	}
	// In-flight reservations end within a lease; counts are projected
	// within a status interval.
	time.Sleep(t.Lease() + 1500*time.Millisecond)

	t.Phase("history check")
	// Every sender and the controller have stopped and a lease has passed:
	// the suite holds the whole history, with I4 and I5; the runner then
	// holds it against the model.
	st, vs, err := t.Verify(t.Ctx, check.Suite{Lease: t.Lease(), LeaseOver: true, Answered: true, Settled: true})
	if err != nil {
		t.Fatalf("read state: %v", err)
	}
	history := t.History()
	acked, sent := 0, map[string]bool{}
	for _, r := range history {
		for _, s := range r.Signals {
			sent[s.Key()] = true
		}
		if r.Acknowledged() {
			acked += len(r.Signals)
		}
	}
	t.Note("history: %d faults, %d requests, %d signals sent (%d distinct), %d acknowledged, %d resources, %d controller actions, %d violations",
		len(t.Faults()), len(history), countSignals(history), len(sent), acked, len(st.Resources), len(t.Actions().All()), len(vs))
	for _, v := range vs {
		t.Logf("seed %d; history around the violation:\n%s", o.Seed, Window(v, history, t.Events()))
	}
}

// send posts a batch and retries on 5xx and transport errors, at most 8
// attempts, as Alertmanager does until its notification times out. No
// sender's payload is invalid: a 4xx is a gateway bug.
func send(ctx context.Context, t *scenario.T, worker int, batch []load.Signal) {
	r := t.RetryBackoff(ctx, worker, batch, 8, time.Time{})
	if r.Status >= 400 && r.Status < 500 {
		t.Expect(false, "request %d answered %d: %s", r.Seq, r.Status, r.Err)
	}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(time.Until(t)):
		return true
	}
}

func countSignals(h []load.Record) int {
	n := 0
	for _, r := range h {
		n += len(r.Signals)
	}
	return n
}

// Window is the minimal history around a violation: every request it
// names and every request that carried a signal it names, and the faults
// active from a second before the first of them to a second after the last.
func Window(v check.Violation, history []load.Record, timeline []scenario.Event) string {
	var rel []load.Record
	for _, r := range history {
		if slices.Contains(v.Requests, r.Seq) || slices.ContainsFunc(r.Signals, func(s load.Signal) bool { return slices.Contains(v.Signals, s.Key()) }) {
			rel = append(rel, r)
		}
	}
	if len(rel) == 0 {
		return "  (no request names it)\n"
	}
	sort.Slice(rel, func(i, j int) bool { return rel[i].Start.Before(rel[j].Start) })
	from, to := rel[0].Start.Add(-time.Second), rel[len(rel)-1].Start.Add(rel[len(rel)-1].Duration+time.Second)
	var b strings.Builder
	fmt.Fprintf(&b, "  violation: %s\n", v)
	for _, ev := range timeline {
		if (ev.Kind == "inject" || ev.Kind == "heal") && ev.At.After(from) && ev.At.Before(to) {
			fmt.Fprintf(&b, "  %s %s %s\n", ev.At.Format("15:04:05.000"), ev.Kind, ev.Detail)
		}
	}
	for _, r := range rel {
		fmt.Fprintf(&b, "  %s request %d (%s, attempt %d) → %d in %s\n", r.Start.Format("15:04:05.000"), r.Seq, r.RequestID, r.Attempt, r.Status, r.Duration.Round(time.Millisecond))
	}
	return b.String()
}
