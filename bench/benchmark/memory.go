package benchmark

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/alertgate/gateway/bench/attack"
	"github.com/alertgate/gateway/bench/procstat"
	"github.com/alertgate/gateway/bench/traffic"
	"github.com/alertgate/gateway/internal/breaker"
	"github.com/alertgate/gateway/internal/create"
	"github.com/alertgate/gateway/internal/dedup"
	"github.com/alertgate/gateway/internal/ingest"
	"github.com/alertgate/gateway/internal/pipeline"
	"github.com/alertgate/gateway/testenv/fault"
)

func init() {
	Register(Benchmark{Name: "memory", Description: "Redis bytes per fingerprint; the episode cache's cost per resource and the gateway's RSS with 1k and 100k episodes", Run: memory})
	Register(Benchmark{Name: "soak", Description: "5 minutes at a steady rate: gateway RSS over time (flat, no growth)", Run: soak})
}

// seed opens episode 1 of the gateway's fingerprint of every pool alert:
// its RemediationRequest, created directly in the API server (create.Build
// of the signal the gateway's reader makes from the very webhook later
// sent, 32 creates at a time), and its committed record in Redis. A fresh
// gateway then lists them all into its episode cache, which is what is
// measured, and the duplicates attach without an API call.
func seed(ctx context.Context, h *Harness, gen *traffic.Generator, ns, prefix string) (time.Duration, error) {
	start := time.Now()
	st, err := dedup.New(h.Env.RDB, dedup.Options{KeyPrefix: prefix, Breaker: breaker.New(breaker.Options{Failures: 1 << 20})})
	if err != nil {
		return 0, err
	}
	rd := ingest.New(ingest.Options{})
	now := time.Now()
	var sigs []pipeline.Signal
	for _, r := range gen.PoolRequests(100) {
		hr := httptest.NewRequest(http.MethodPost, r.Path, bytes.NewReader(r.Body))
		hr.Header.Set("Content-Type", "application/json")
		read := rd.Prometheus
		if r.Path == traffic.EventPath {
			read = rd.KubernetesEvent
		}
		pr, err := read(httptest.NewRecorder(), hr, now)
		if err != nil {
			return 0, err
		}
		sigs = append(sigs, pr.Signals...)
	}
	work := make(chan *pipeline.Signal)
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range work {
				var members []pipeline.Member
				if m, ok := pipeline.MemberOf(s); ok {
					members = append(members, m)
				}
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err := h.Env.Kube.Create(cctx, create.Build(s, ns, 1, members))
				cancel()
				if err != nil && !apierrors.IsAlreadyExists(err) {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	seen := map[string]bool{}
	var claims []pipeline.Claim
	var settle []pipeline.Settlement
	for i := range sigs {
		s := &sigs[i]
		if seen[s.Fingerprint] {
			continue
		}
		seen[s.Fingerprint] = true
		select {
		case work <- s:
		case err := <-errs:
			close(work)
			wg.Wait()
			return 0, err
		}
		claims = append(claims, pipeline.Claim{Fingerprint: s.Fingerprint, Increment: 1, View: pipeline.EpisodeView{Next: 1}})
		settle = append(settle, pipeline.Settlement{Fingerprint: s.Fingerprint, Seq: 1, Commit: true, Count: 1})
		if len(claims) >= 1000 || i == len(sigs)-1 {
			if _, err := st.Claim(ctx, "seed", now, claims); err != nil {
				return 0, err
			}
			if err := st.Settle(ctx, "seed", now, settle); err != nil {
				return 0, err
			}
			claims, settle = claims[:0], settle[:0]
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return time.Since(start), nil
}

// memory opens N episodes, starts a fresh gateway, measures what its
// episode cache of N resources costs, then sends duplicates spread over all
// N for a while and reads the gateway's RSS.
func memory(ctx context.Context, h *Harness) (*Result, error) {
	sizes := []int{1000, 100000}
	d := 30 * time.Second
	if h.Quick {
		sizes, d = []int{1000, 10000}, 3*time.Second
	}
	res := &Result{Name: "memory", Figures: map[string]float64{}}
	rows := []string{"| episodes | Redis used_memory growth per fingerprint | MEMORY USAGE of one key | gateway ready after | episode cache | Go heap live, idle | Go heap in use, idle | gateway RSS idle | gateway peak RSS under load | gateway RSS at end | requests | signals/s |",
		"|---|---|---|---|---|---|---|---|---|---|---|---|"}
	heaps := map[int]float64{}
	for _, n := range sizes {
		ns, err := h.namespace(ctx, fmt.Sprintf("memory-%d", n))
		if err != nil {
			return nil, err
		}
		gen, err := traffic.New(traffic.Options{RunID: fmt.Sprintf("%s-mem%d", h.RunID, n), Seed: 5, Pool: n})
		if err != nil {
			return nil, err
		}
		prefix := fmt.Sprintf("bench:mem:%s:%d:", h.RunID, n)
		before, err := fault.UsedMemory(ctx, h.Env.RDB)
		if err != nil {
			return nil, err
		}
		took, err := seed(ctx, h, gen, ns, prefix)
		if err != nil {
			return nil, err
		}
		after, err := fault.UsedMemory(ctx, h.Env.RDB)
		if err != nil {
			return nil, err
		}
		keys, err := h.Env.RDB.Keys(ctx, prefix+"*").Result()
		if err != nil || len(keys) == 0 {
			return nil, fmt.Errorf("seeded keys: %d, %v", len(keys), err)
		}
		usage, err := h.Env.RDB.MemoryUsage(ctx, keys[0]).Result()
		if err != nil {
			return nil, err
		}
		per := float64(after-before) / float64(len(keys))
		h.logf("%d episodes opened in %s (%d keys): used_memory +%d B (%.0f B each), MEMORY USAGE %d B", n, took.Round(time.Second), len(keys), after-before, per, usage)
		started := time.Now()
		gw, err := h.startGateway(ctx, ns, prefix, gatewaySpec{name: "gateway", direct: true, readyTimeout: 10 * time.Minute})
		if err != nil {
			return nil, err
		}
		ready := time.Since(started)
		time.Sleep(2 * time.Second)
		idle, _ := procstat.Read(gw.PID())
		rt := readRuntime(ctx, gw.URL)
		heaps[n] = rt.live
		h.settle(ctx)
		before2 := gen.Stats().Signals
		r, err := h.run(ctx, attack.Options{Name: fmt.Sprintf("duplicates over %d episodes", n), Targeter: gen.Targeter([]string{gw.URL}),
			Connections: DuplicateConnections, Duration: d, Watch: h.watch(map[int]string{gw.PID(): "gateway"})})
		if err != nil {
			_ = gw.Stop()
			return nil, err
		}
		sigs := float64(gen.Stats().Signals-before2) / r.Seconds
		p := proc(r, "gateway")
		_ = gw.Stop()
		rows = append(rows, fmt.Sprintf("| %d | %.0f B | %d B | %s | %.0f | %.1f MiB | %.1f MiB | %s | %s | %s | %d (%v) | %.0f |", len(keys), per, usage,
			ready.Round(10*time.Millisecond), rt.cached, rt.live/(1<<20), rt.heap/(1<<20), procstat.MiB(idle.RSS), procstat.MiB(p.PeakRSS), procstat.MiB(p.EndRSS), r.Requests, r.Codes, sigs))
		res.Figures[fmt.Sprintf("rss_idle_mib_%d", n)] = float64(idle.RSS) / (1 << 20)
		res.Figures[fmt.Sprintf("rss_peak_mib_%d", n)] = float64(p.PeakRSS) / (1 << 20)
		res.Figures[fmt.Sprintf("heap_idle_mib_%d", n)] = rt.heap / (1 << 20)
		res.Figures[fmt.Sprintf("heap_live_mib_%d", n)] = rt.live / (1 << 20)
		res.Figures[fmt.Sprintf("ready_s_%d", n)] = ready.Seconds()
		res.Figures[fmt.Sprintf("redis_bytes_per_fp_%d", n)] = per
		res.Figures[fmt.Sprintf("memory_usage_key_%d", n)] = float64(usage)
		res.Attacks = append(res.Attacks, r)
	}
	small, large := sizes[0], sizes[1]
	perResource := (heaps[large] - heaps[small]) / float64(large-small)
	res.Figures["cache_bytes_per_resource"] = perResource
	res.Summary = fmt.Sprintf("Episode cache: **%.0f B of live Go heap per resource** (live heap %.1f MiB idle with %d episodes, %.1f MiB with %d); the gateway was ready %.1f s after its start with %d. "+
		"Gateway RSS idle %.1f / %.1f MiB, peak under load %.1f / %.1f MiB. Redis: **%.0f B** per fingerprint (MEMORY USAGE of one key), %.0f B of used_memory growth per fingerprint at %d.",
		perResource, heaps[small]/(1<<20), small, heaps[large]/(1<<20), large, res.Figures[fmt.Sprintf("ready_s_%d", large)], large,
		res.Figures[fmt.Sprintf("rss_idle_mib_%d", small)], res.Figures[fmt.Sprintf("rss_idle_mib_%d", large)],
		res.Figures[fmt.Sprintf("rss_peak_mib_%d", small)], res.Figures[fmt.Sprintf("rss_peak_mib_%d", large)],
		res.Figures[fmt.Sprintf("memory_usage_key_%d", large)], res.Figures[fmt.Sprintf("redis_bytes_per_fp_%d", large)], large)
	res.Tables = []string{strings.Join(rows, "\n")}
	res.Notes = []string{
		"Each fingerprint's episode 1 is created directly in the API server (create.Build of the signal the gateway's reader makes from the very webhook later sent) and committed in Redis by the gateway's own store; a fresh gateway process then lists them (500 a page) into its episode cache before it is ready.",
		"The cost per resource is the difference of the live heap (go_gc_heap_live_bytes of the gateway's /metrics: what the last GC marked, 2 s after it is ready) between the two sizes, divided by the difference of their sizes; the heap in use adds the garbage not yet collected.",
		fmt.Sprintf("A fresh gateway per size; %s closed loop with %d connections of duplicates spread uniformly over all the fingerprints; peak RSS is VmHWM reset at the start of the attack.", d, DuplicateConnections),
		"used_memory growth includes the main and expires dictionaries' entries and their growth slack (the dictionaries double in size).",
	}
	return res, nil
}

// readRuntime reads the Go heap in use, the heap the last GC marked live
// and the episode cache's size from the gateway's /metrics.
func readRuntime(ctx context.Context, base string) (rt struct{ heap, live, cached float64 }) {
	m := scrape(ctx, base)
	rt.heap, rt.live, rt.cached = m["go_memstats_heap_inuse_bytes"], m["go_gc_heap_live_bytes"], m["alertgate_episode_cache_resources"]
	return rt
}

// soak runs a steady rate for 5 minutes and follows the gateway's RSS.
func soak(ctx context.Context, h *Harness) (*Result, error) {
	ns, err := h.namespace(ctx, "soak")
	if err != nil {
		return nil, err
	}
	gen, err := traffic.New(traffic.Options{RunID: h.RunID + "-soak", Seed: 6, Pool: 1000, NewRatio: 0.005, EventRatio: 0.1})
	if err != nil {
		return nil, err
	}
	gw, err := h.startGateway(ctx, ns, "bench:soak:"+h.RunID+":", gatewaySpec{name: "gateway", direct: true})
	if err != nil {
		return nil, err
	}
	defer func() { _ = gw.Stop() }()
	if err := h.warm(ctx, gen, gw.URL); err != nil {
		return nil, err
	}
	h.settle(ctx)
	d := 5 * time.Minute
	if h.SoakDuration > 0 {
		d = h.SoakDuration
	}
	if h.Quick {
		d = 30 * time.Second
	}
	const rate = 200
	// The Go heap and goroutines, from the gateway's own /metrics, tell
	// growth from the runtime's RSS noise.
	mctx, stopMetrics := context.WithCancel(ctx)
	series := make(chan []runtimePoint, 1)
	go func() { series <- sampleRuntime(mctx, gw.URL, 5*time.Second) }()
	r, err := h.run(ctx, attack.Options{Name: "soak", Targeter: gen.Targeter([]string{gw.URL}), Rate: rate, Connections: 64, Duration: d,
		KeepRSS: true, Watch: h.watch(map[int]string{gw.PID(): "gateway"})})
	stopMetrics()
	points := <-series
	if err != nil {
		return nil, err
	}
	p := proc(r, "gateway")
	// Mean RSS per minute, and the slope over everything after the first
	// minute (least squares).
	type minute struct {
		sum, max int64
		n        int
	}
	var mins []minute
	var xs, ys []float64
	for _, s := range p.RSS {
		m := int(s.T / 60)
		for len(mins) <= m {
			mins = append(mins, minute{})
		}
		mins[m].sum += s.RSS
		mins[m].n++
		mins[m].max = max(mins[m].max, s.RSS)
		if s.T >= 60 || h.Quick {
			xs = append(xs, s.T/60)
			ys = append(ys, float64(s.RSS)/(1<<20))
		}
	}
	slope := leastSquares(xs, ys)
	rows := []string{"| minute | mean RSS | max RSS | samples |", "|---|---|---|---|"}
	for i, m := range mins {
		if m.n == 0 {
			continue
		}
		rows = append(rows, fmt.Sprintf("| %d | %s | %s | %d |", i+1, procstat.MiB(m.sum/int64(m.n)), procstat.MiB(m.max), m.n))
	}
	res := &Result{Name: "soak", Figures: map[string]float64{"slope_mib_per_min": slope, "peak_rss_mib": float64(p.PeakRSS) / (1 << 20),
		"start_rss_mib": float64(p.StartRSS) / (1 << 20), "end_rss_mib": float64(p.EndRSS) / (1 << 20)}, Attacks: []*attack.Report{r}}
	res.Summary = fmt.Sprintf("%s at %d webhooks/s (%d requests, codes %v): gateway RSS %s at the start, %s at the end, peak %s; slope after the first minute **%+.2f MiB/min**. p50 %.2f ms, p99 %.2f ms. Gateway CPU %.2f cores.",
		d, rate, r.Requests, r.Codes, procstat.MiB(p.StartRSS), procstat.MiB(p.EndRSS), procstat.MiB(p.PeakRSS), slope, r.Latency.P50, r.Latency.P99, p.CPUCores)
	var hx, hy []float64
	rt := []string{"| t (s) | Go heap in use | goroutines |", "|---|---|---|"}
	for i, pt := range points {
		if pt.t >= 60 || h.Quick {
			hx = append(hx, pt.t/60)
			hy = append(hy, pt.heap/(1<<20))
		}
		if i%6 == 0 || i == len(points)-1 {
			rt = append(rt, fmt.Sprintf("| %.0f | %.1f MiB | %.0f |", pt.t, pt.heap/(1<<20), pt.goroutines))
		}
	}
	heapSlope := leastSquares(hx, hy)
	res.Figures["heap_slope_mib_per_min"] = heapSlope
	res.Summary += fmt.Sprintf(" Go heap in use (from /metrics every 5s): slope after the first minute **%+.2f MiB/min**.", heapSlope)
	res.Tables = []string{strings.Join(rows, "\n"), strings.Join(rt, "\n")}
	res.Notes = []string{
		"Pool of 1000 alerts and 1000 Warning Events delivered once before; then 90% webhooks of 1–20 alerts and 10% Events, 0.5% of the signals new (each creates a resource), the rest duplicates.",
		"RSS (VmRSS of /proc/PID/status) sampled every 250ms; the raw series is in soak.json.",
		"CPU over the run: " + cpuLine(r) + ".",
	}
	// The samples are long; keep only the gateway's series in the JSON.
	for i := range r.Processes {
		if r.Processes[i].Name != "gateway" {
			r.Processes[i].RSS = nil
		}
	}
	return res, nil
}

func leastSquares(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return math.NaN()
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return math.NaN()
	}
	return (n*sxy - sx*sy) / den
}

type runtimePoint struct{ t, heap, goroutines float64 }

// sampleRuntime reads go_memstats_heap_inuse_bytes and go_goroutines from
// the gateway's /metrics every interval until ctx is done.
func sampleRuntime(ctx context.Context, base string, every time.Duration) []runtimePoint {
	var out []runtimePoint
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if m := scrape(ctx, base); m != nil {
			out = append(out, runtimePoint{t: time.Since(start).Seconds(), heap: m["go_memstats_heap_inuse_bytes"], goroutines: m["go_goroutines"]})
		}
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
	}
}
