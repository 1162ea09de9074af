package benchmark

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/alertgate/gateway/bench/attack"
	"github.com/alertgate/gateway/bench/traffic"
	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/internal/create"
)

// DuplicateConnections is the closed-loop concurrency of the duplicate
// benchmark.
const DuplicateConnections = 32

func init() {
	Register(Benchmark{Name: "duplicate", Description: "duplicate path (Redis only): gateway throughput vs the floor, same Redis, same load", Run: duplicate})
}

// duplicate alternates closed-loop attacks on the gateway and on the floor
// (three rounds each, so drift hits both), every signal a repeat from a
// pool delivered once beforehand, each attack as long as the default status
// interval. Two more gateway configurations, with a
// status interval of 10s (the default before 2026-12-04) and of an hour,
// show what the status projection (API calls made on behalf of
// duplicates) costs on this machine.
func duplicate(ctx context.Context, h *Harness) (*Result, error) {
	ns, err := h.namespace(ctx, "duplicate")
	if err != nil {
		return nil, err
	}
	gen, err := traffic.New(traffic.Options{RunID: h.RunID + "-dup", Seed: 1, Pool: 1000})
	if err != nil {
		return nil, err
	}
	gw, err := h.startGateway(ctx, ns, "bench:dup:"+h.RunID+":", gatewaySpec{name: "gateway", direct: true})
	if err != nil {
		return nil, err
	}
	defer func() { _ = gw.Stop() }()
	quiet, err := h.startGateway(ctx, ns, "bench:dup:"+h.RunID+":", gatewaySpec{name: "gateway-status-1h", direct: true,
		configure: statusIdle})
	if err != nil {
		return nil, err
	}
	defer func() { _ = quiet.Stop() }()
	tenth, err := h.startGateway(ctx, ns, "bench:dup:"+h.RunID+":", gatewaySpec{name: "gateway-status-10s", direct: true,
		configure: func(c *config.Config) { c.StatusInterval = config.D(10 * time.Second) }})
	if err != nil {
		return nil, err
	}
	defer func() { _ = tenth.Stop() }()
	fl, err := h.startFloor(ctx, "bench:floor:"+h.RunID+":")
	if err != nil {
		return nil, err
	}
	defer fl.Stop()
	// The two gateways share keys and namespace: one warm-up serves both.
	if err := h.warm(ctx, gen, gw.URL, fl.URL); err != nil {
		return nil, err
	}

	type subject struct {
		name, url string
		pid       int
		// status is the subject's status interval when it flushes
		// within the run, else 0.
		status time.Duration
	}
	subjects := []subject{{"gateway", gw.URL, gw.PID(), create.DefaultStatusInterval}, {"floor", fl.URL, fl.PID(), 0},
		{"gateway-status-10s", tenth.URL, tenth.PID(), 10 * time.Second}, {"gateway-status-1h", quiet.URL, quiet.PID(), 0}}
	runs := map[string][]*attack.Report{}
	signals := map[string][]float64{}
	// What the status projections of the three gateways called during each
	// round and the wait after it: the API server's share of the cost.
	gateways := []string{gw.URL, tenth.URL, quiet.URL}
	scrapeAll := func() []map[string]float64 {
		var out []map[string]float64
		for _, u := range gateways {
			out = append(out, scrape(ctx, u))
		}
		return out
	}
	calls := map[string][]statusCalls{}
	// An attack as long as the default status interval holds exactly one
	// flush of the default gateway (and three of the 10s one), as its steady
	// state does; shorter rounds would miss it most of the time.
	d := h.dur(create.DefaultStatusInterval)
	var all []*attack.Report
	for round := 1; round <= 3; round++ {
		for _, s := range subjects {
			h.settle(ctx)
			scraped := scrapeAll()
			before := gen.Stats().Signals
			r, err := h.run(ctx, attack.Options{Name: fmt.Sprintf("%s round %d", s.name, round), Targeter: gen.Targeter([]string{s.url}),
				Connections: DuplicateConnections, Duration: d, Watch: h.watch(map[int]string{s.pid: s.name})})
			if err != nil {
				return nil, err
			}
			runs[s.name] = append(runs[s.name], r)
			signals[s.name] = append(signals[s.name], float64(gen.Stats().Signals-before)/r.Seconds)
			all = append(all, r)
			if s.status > 0 && !h.Quick {
				// What the round observed after its last flush is written
				// at the next tick: let it pass before the next subject's
				// round, which it would slow.
				h.logf("waiting %s for %s's last status flush", s.status+2*time.Second, s.name)
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(s.status + 2*time.Second):
				}
			}
			calls[s.name] = append(calls[s.name], statusCallsBetween(scraped, scrapeAll()))
		}
	}
	res := &Result{Name: "duplicate", Figures: map[string]float64{}, Attacks: all}
	res.Figures["status_conflicts"] = 0
	var rows []string
	rows = append(rows, "| subject | round | req/s | signals/s | p50 ms | p99 ms | max ms | codes | subject CPU cores | CPU ms/req | peak RSS | status patches / conflicts / gets | all processes (cores) |",
		"|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	med := map[string]float64{}
	for _, s := range subjects {
		var tp []float64
		for i, r := range runs[s.name] {
			p := proc(r, s.name)
			c := calls[s.name][i]
			rows = append(rows, fmt.Sprintf("| %s | %d | %.0f | %.0f | %.2f | %.2f | %.2f | %v | %.2f | %.3f | %.1f MiB | %.0f / %.0f / %.0f | %s |",
				s.name, i+1, r.Throughput, signals[s.name][i], r.Latency.P50, r.Latency.P99, r.Latency.Max, r.Codes,
				p.CPUCores, 1000*p.CPUSeconds/float64(max(r.Requests, 1)), float64(p.PeakRSS)/(1<<20),
				c.patches, c.conflicts, c.gets, cpuLine(r)))
			res.Figures["status_conflicts"] += c.conflicts
			tp = append(tp, r.SuccessRate)
		}
		sort.Float64s(tp)
		med[s.name] = tp[len(tp)/2]
	}
	res.Figures["gateway_rps"] = med["gateway"]
	res.Figures["floor_rps"] = med["floor"]
	res.Figures["gateway_status1h_rps"] = med["gateway-status-1h"]
	res.Figures["ratio"] = med["gateway"] / med["floor"]
	res.Figures["ratio_status1h"] = med["gateway-status-1h"] / med["floor"]
	res.Figures["gateway_status10s_rps"] = med["gateway-status-10s"]
	res.Figures["ratio_status10s"] = med["gateway-status-10s"] / med["floor"]
	res.Summary = fmt.Sprintf("Median of 3 rounds (2xx/s): gateway **%.0f**, floor **%.0f**: ratio **%.2f×** (goal ≥ 0.7×). "+
		"Status interval 10s: %.0f, **%.2f×**. Status projection idle (interval 1h): %.0f, **%.2f×**. Status conflicts over the run: %.0f.",
		med["gateway"], med["floor"], res.Figures["ratio"], med["gateway-status-10s"], res.Figures["ratio_status10s"],
		med["gateway-status-1h"], res.Figures["ratio_status1h"], res.Figures["status_conflicts"])
	res.Tables = []string{strings.Join(rows, "\n")}
	res.Notes = []string{
		fmt.Sprintf("Closed loop, %d connections, %s per attack, pool of 1000 signals delivered once before (1000 RemediationRequests), then every signal a repeat; webhooks of 1–20 alerts.", DuplicateConnections, d),
		"Each attack lasts one default status interval, so it holds one status flush of the default gateway and three of the 10s one, as their steady state does; after a gateway's round the benchmark waits out its interval, so that the flush of what the round observed last does not land in the next subject's round.",
		"Status patches / conflicts / gets: the calls of the three gateways' status projections (alertgate_status_calls_total) from the round's start to the end of the wait after it; one flush of the 1000 hot resources is 1000 patches, and a conflict costs a get and a second patch.",
		"Gateway and floor talk to the same redis-server directly (not through Toxiproxy); the gateway's API traffic goes through Toxiproxy, which runs in the load generator's process.",
		"The load generator, the gateway (or floor), redis-server, kube-apiserver and etcd share the 2 cores: compare CPU ms per request as well as throughput.",
	}
	return res, nil
}
