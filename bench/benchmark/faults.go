package benchmark

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/bench/attack"
	"github.com/alertgate/gateway/bench/traffic"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/fault"
)

func init() {
	Register(Benchmark{Name: "failfast", Description: "latency of the 503s while Redis or the API server is down", Run: failFast})
	Register(Benchmark{Name: "recovery", Description: "time from heal to the first 201, per dependency", Run: recovery})
}

// outage is one way a dependency is down.
type outage struct {
	name string
	f    fault.Fault
	// newRatio of the traffic: with Redis down every request fails;
	// with the API down only requests with new signals do (duplicates
	// are still counted and acknowledged), so every signal is new.
	newRatio float64
}

var outages = []outage{
	{"redis down (proxy disabled: connections closed and refused)", fault.Down{Dep: testenv.Redis}, 0.1},
	{"kubernetes down (proxy disabled: connections closed and refused)", fault.Down{Dep: testenv.Kubernetes}, 1},
	{"kube-apiserver stopped (process stopped, etcd up)", fault.APIServerStop{}, 1},
}

// failFast sends a fixed rate of webhooks through the proxies while each
// outage lasts and reports the latency of the 503 answers.
func failFast(ctx context.Context, h *Harness) (*Result, error) {
	ns, err := h.namespace(ctx, "failfast")
	if err != nil {
		return nil, err
	}
	gw, err := h.startGateway(ctx, ns, "bench:failfast:"+h.RunID+":", gatewaySpec{name: "gateway"})
	if err != nil {
		return nil, err
	}
	defer func() { _ = gw.Stop() }()
	res := &Result{Name: "failfast", Figures: map[string]float64{}}
	rows := []string{"| outage | requests | 503 | other codes | 503 p50 ms | p95 ms | p99 ms | max ms | gateway CPU cores |", "|---|---|---|---|---|---|---|---|---|"}
	worst := 0.0
	for i, o := range outages {
		gen, err := traffic.New(traffic.Options{RunID: fmt.Sprintf("%s-ff%d", h.RunID, i), Seed: uint64(10 + i), Pool: 200, NewRatio: o.newRatio})
		if err != nil {
			return nil, err
		}
		if err := h.warm(ctx, gen, gw.URL); err != nil {
			return nil, err
		}
		h.settle(ctx)
		undo, err := o.f.Inject(ctx, h.Env)
		if err != nil {
			return nil, err
		}
		injected := time.Now()
		r, err := h.run(ctx, attack.Options{Name: o.name, Targeter: gen.Targeter([]string{gw.URL}), Rate: 200, Connections: 64,
			Duration: h.dur(5 * time.Second), Timeout: 20 * time.Second, Watch: map[int]string{gw.PID(): "gateway"}, KeepSamples: true})
		uerr := undo(ctx)
		if err != nil {
			return nil, err
		}
		if uerr != nil {
			return nil, fmt.Errorf("heal %s: %w", o.name, uerr)
		}
		if err := h.Env.Heal(ctx); err != nil {
			return nil, err
		}
		if err := waitStored(ctx, gw.URL, gen); err != nil {
			return nil, fmt.Errorf("after %s: %w", o.name, err)
		}
		q := r.ByCode[http.StatusServiceUnavailable]
		other := map[int]int{}
		for c, n := range r.Codes {
			if c != http.StatusServiceUnavailable {
				other[c] = n
			}
		}
		// When did the answers that were not 503 start, after the fault?
		var lastOther time.Duration
		for _, s := range r.Samples {
			if s.Code != http.StatusServiceUnavailable {
				lastOther = max(lastOther, s.Start.Sub(injected))
			}
		}
		if len(other) > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: the %v answers that were not 503 were all to requests started within %s of the fault's injection.",
				o.name, other, lastOther.Round(time.Millisecond)))
		}
		r.Samples = nil
		rows = append(rows, fmt.Sprintf("| %s | %d | %d | %v | %.2f | %.2f | %.2f | %.2f | %.2f |", o.name, r.Requests, r.Codes[503], other,
			q.P50, q.P95, q.P99, q.Max, proc(r, "gateway").CPUCores))
		res.Figures[fmt.Sprintf("p99_ms_%d", i)] = q.P99
		worst = max(worst, q.P99)
		res.Attacks = append(res.Attacks, r)
	}
	res.Figures["worst_p99_ms"] = worst
	res.Summary = fmt.Sprintf("Worst p99 of the 503s over the three outages: **%.2f ms** (goal ≤ 50 ms).", worst)
	res.Tables = []string{strings.Join(rows, "\n")}
	res.Notes = append([]string{
		"200 webhooks/s (1–20 alerts) for the whole outage through the Toxiproxy proxies, default configuration (breaker: 3 failures, open 1s; Redis timeout 1s; API timeout 5s).",
		"Redis down: 10% new signals; API down: every signal new (duplicates are still acknowledged from Redis while the API is down).",
	}, res.Notes...)
	return res, nil
}

// waitStored sends new signals until one is stored (201), at most 30s.
func waitStored(ctx context.Context, url string, gen *traffic.Generator) error {
	g, err := traffic.New(traffic.Options{Pool: 1, NewRatio: 1, BatchMin: 1, BatchMax: 1})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r, err := attack.Run(ctx, attack.Options{Targeter: g.Targeter([]string{url}), Connections: 1, MaxRequests: 1, Duration: 10 * time.Second, Timeout: 10 * time.Second})
		if err != nil {
			return err
		}
		if r.Codes[http.StatusCreated] == 1 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no 201 within 30s")
}

// recovery keeps 100 one-alert webhooks of new signals per second going
// while a dependency goes down for 3s and comes back, and measures from
// the heal to the first 201; three trials per outage.
func recovery(ctx context.Context, h *Harness) (*Result, error) {
	ns, err := h.namespace(ctx, "recovery")
	if err != nil {
		return nil, err
	}
	gw, err := h.startGateway(ctx, ns, "bench:recovery:"+h.RunID+":", gatewaySpec{name: "gateway"})
	if err != nil {
		return nil, err
	}
	defer func() { _ = gw.Stop() }()
	bare, err := bareClient(h.Env)
	if err != nil {
		return nil, err
	}
	res := &Result{Name: "recovery", Figures: map[string]float64{}}
	rows := []string{"| outage | trial | heal took ms | heal → first 201 ms | heal done → first 201 ms | anchor: heal → first bare Create ms (separate trial) | 503s during outage |", "|---|---|---|---|---|---|---|"}
	worst, worstFromStart := 0.0, 0.0
	trials := 3
	if h.Quick {
		trials = 1
	}
	for i, o := range outages {
		var afters, anchors []float64
		for t := 1; t <= trials; t++ {
			gen, err := traffic.New(traffic.Options{RunID: fmt.Sprintf("%s-rec%d-%d", h.RunID, i, t), Seed: uint64(20 + i), Pool: 1, NewRatio: 1, BatchMin: 1, BatchMax: 1})
			if err != nil {
				return nil, err
			}
			h.settle(ctx)
			var healStart, healDone time.Time
			errc := make(chan error, 1)
			actx, stop := context.WithCancel(ctx)
			go func() {
				// The attack ends 5s after the dependency is back.
				defer time.AfterFunc(5*time.Second, stop)
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
					errc <- ctx.Err()
					return
				}
				undo, err := o.f.Inject(ctx, h.Env)
				if err != nil {
					errc <- err
					return
				}
				time.Sleep(3 * time.Second)
				healStart = time.Now()
				err = undo(ctx)
				healDone = time.Now()
				errc <- err
			}()
			r, err := attack.Run(actx, attack.Options{Name: fmt.Sprintf("%s trial %d", o.name, t), Targeter: gen.Targeter([]string{gw.URL}),
				Rate: 100, Connections: 64, Duration: time.Minute, Timeout: 20 * time.Second, KeepSamples: true})
			stop()
			if ierr := <-errc; ierr != nil {
				return nil, ierr
			}
			if err != nil && ctx.Err() != nil {
				return nil, err
			}
			h.logf("%s", strings.TrimRight(r.Text(), "\n"))
			if err := h.Env.Heal(ctx); err != nil {
				return nil, err
			}
			sort.Slice(r.Samples, func(a, b int) bool { return r.Samples[a].End().Before(r.Samples[b].End()) })
			var first time.Time
			failed := 0
			for _, s := range r.Samples {
				if s.End().Before(healStart) {
					if s.Code != http.StatusCreated {
						failed++
					}
					continue
				}
				if s.Code == http.StatusCreated {
					first = s.End()
					break
				}
			}
			if first.IsZero() {
				return nil, fmt.Errorf("%s trial %d: no 201 within 5s of the heal", o.name, t)
			}
			r.Samples = nil
			after := ms(first.Sub(healStart))
			afters = append(afters, after)
			worst = max(worst, ms(first.Sub(healDone)))
			worstFromStart = max(worstFromStart, after)
			// The anchor: the same outage without gateway traffic, a
			// bare client retrying one Create from the moment of the heal.
			h.settle(ctx)
			anchor := "none in 15s"
			undo, err := o.f.Inject(ctx, h.Env)
			if err != nil {
				return nil, err
			}
			time.Sleep(3 * time.Second)
			aStart := time.Now()
			undone := make(chan error, 1)
			go func() { undone <- undo(ctx) }()
			bareFirst := firstBareCreate(ctx, bare, ns, fmt.Sprintf("anchor-%s-%d-%d", h.RunID, i, t))
			if err := <-undone; err != nil {
				return nil, err
			}
			if !bareFirst.IsZero() {
				anchor = fmt.Sprintf("%.0f", ms(bareFirst.Sub(aStart)))
				anchors = append(anchors, ms(bareFirst.Sub(aStart)))
			}
			rows = append(rows, fmt.Sprintf("| %s | %d | %.0f | %.0f | %.0f | %s | %d |", o.name, t, ms(healDone.Sub(healStart)), after, ms(first.Sub(healDone)), anchor, failed))
			res.Attacks = append(res.Attacks, r)
		}
		sort.Float64s(afters)
		res.Figures[fmt.Sprintf("max_ms_%d", i)] = afters[len(afters)-1]
		if len(anchors) > 0 {
			sort.Float64s(anchors)
			res.Figures[fmt.Sprintf("anchor_max_ms_%d", i)] = anchors[len(anchors)-1]
		}
	}
	res.Figures["worst_after_heal_done_ms"] = worst
	res.Figures["worst_after_heal_start_ms"] = worstFromStart
	res.Summary = fmt.Sprintf("Worst time from the dependency being back (heal returned) to the first 201: **%.0f ms** (goal ≤ 2 s); worst from the start of the heal: %.0f ms.", worst, worstFromStart)
	res.Tables = []string{strings.Join(rows, "\n")}
	res.Notes = []string{
		"100 one-alert webhooks of new signals per second through the Toxiproxy proxies; outage from t=1s to t=4s; default configuration (breaker opens after 3 failures for 1s, then lets one probe through).",
		"'heal took' is the time the heal itself takes: enabling a proxy is instant; starting kube-apiserver again returns once envtest's readiness polling sees it healthy, which can be after it already serves writes (a negative 'heal done → first 201').",
		"Anchor: the same outage again without gateway traffic; from the moment of the heal a bare controller-runtime client (same proxy, 1s timeout per try) retries one Create every 20ms; its first success is when the API server itself takes RemediationRequest writes again.",
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// firstBareCreate creates one object through the proxy with a bare client,
// retrying every 20ms for at most 15s (each try bounded by 1s: a try sent
// while the API server starts may hang), and returns when it first
// succeeded: the API server's
// own readiness for a RemediationRequest write, the anchor of the
// gateway's recovery.
func firstBareCreate(ctx context.Context, c client.Client, ns, name string) time.Time {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		obj := &v1alpha1.RemediationRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1alpha1.RemediationRequestSpec{Fingerprint: strings.Repeat("a", 64), SignalName: "Anchor", Severity: "info",
				Source: "prometheus", FiringTime: metav1.Now(), ReceivedTime: metav1.Now(), Episode: 1},
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.Create(cctx, obj)
		cancel()
		if err == nil || apierrors.IsAlreadyExists(err) {
			return time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Time{}
}
