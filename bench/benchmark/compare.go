package benchmark

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/alertgate/gateway/bench/attack"
	"github.com/alertgate/gateway/bench/traffic"
	"github.com/alertgate/gateway/testenv"
)

func init() {
	Register(Benchmark{Name: "compare", Description: "duplicate path of two gateway binaries (--compare-bin vs --gateway-bin), status projection idle, alternating rounds", Run: compare})
}

// compare measures an optimisation end to end: the same duplicate-path
// load on a gateway built before it (Harness.CompareBin) and after it
// (Harness.GatewayBin), five alternating rounds each, with the status
// projection idle (interval 1h) so that the request path alone is
// compared.
func compare(ctx context.Context, h *Harness) (*Result, error) {
	if h.CompareBin == "" {
		return nil, errors.New("compare needs --compare-bin (the gateway built before the change)")
	}
	ns, err := h.namespace(ctx, "compare")
	if err != nil {
		return nil, err
	}
	gen, err := traffic.New(traffic.Options{RunID: h.RunID + "-cmp", Seed: 11, Pool: 1000})
	if err != nil {
		return nil, err
	}
	prefix := "bench:cmp:" + h.RunID + ":"
	before, err := h.startGateway(ctx, ns, prefix, gatewaySpec{name: "before", bin: h.CompareBin, direct: true, configure: statusIdle})
	if err != nil {
		return nil, err
	}
	defer func() { _ = before.Stop() }()
	after, err := h.startGateway(ctx, ns, prefix, gatewaySpec{name: "after", direct: true, configure: statusIdle})
	if err != nil {
		return nil, err
	}
	defer func() { _ = after.Stop() }()
	if err := h.warm(ctx, gen, after.URL); err != nil {
		return nil, err
	}
	type subject struct {
		name string
		g    *testenv.Gateway
	}
	subjects := []subject{{"before", before}, {"after", after}}
	rows := []string{"| gateway | round | req/s | p50 ms | p99 ms | gateway CPU cores | gateway CPU ms/req | all processes (cores) |", "|---|---|---|---|---|---|---|---|"}
	tp, cpu := map[string][]float64{}, map[string][]float64{}
	res := &Result{Name: "compare", Figures: map[string]float64{}}
	d := h.dur(10 * time.Second)
	for round := 1; round <= 5; round++ {
		for _, s := range subjects {
			h.settle(ctx)
			r, err := h.run(ctx, attack.Options{Name: fmt.Sprintf("%s round %d", s.name, round), Targeter: gen.Targeter([]string{s.g.URL}),
				Connections: DuplicateConnections, Duration: d, Watch: h.watch(map[int]string{s.g.PID(): s.name})})
			if err != nil {
				return nil, err
			}
			p := proc(r, s.name)
			perReq := 1000 * p.CPUSeconds / float64(max(r.Requests, 1))
			rows = append(rows, fmt.Sprintf("| %s | %d | %.0f | %.2f | %.2f | %.2f | %.3f | %s |", s.name, round, r.SuccessRate, r.Latency.P50, r.Latency.P99, p.CPUCores, perReq, cpuLine(r)))
			tp[s.name] = append(tp[s.name], r.SuccessRate)
			cpu[s.name] = append(cpu[s.name], perReq)
			res.Attacks = append(res.Attacks, r)
		}
	}
	median := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	for _, s := range subjects {
		res.Figures[s.name+"_rps"] = median(tp[s.name])
		res.Figures[s.name+"_cpu_ms_per_req"] = median(cpu[s.name])
	}
	res.Summary = fmt.Sprintf("Median of 5 rounds: before %.0f req/s at %.3f gateway CPU ms/request; after %.0f req/s at %.3f ms/request (%+.1f%% throughput, %+.1f%% CPU per request).",
		res.Figures["before_rps"], res.Figures["before_cpu_ms_per_req"], res.Figures["after_rps"], res.Figures["after_cpu_ms_per_req"],
		100*(res.Figures["after_rps"]/res.Figures["before_rps"]-1), 100*(res.Figures["after_cpu_ms_per_req"]/res.Figures["before_cpu_ms_per_req"]-1))
	res.Tables = []string{strings.Join(rows, "\n")}
	res.Notes = []string{fmt.Sprintf("Closed loop, %d connections, %s per round, duplicates of a pool of 1000; both gateways share Redis keys and the namespace; status interval 1h for both.", DuplicateConnections, d)}
	return res, nil
}
