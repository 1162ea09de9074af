package benchmark

import (
	"context"
	"fmt"
	"strings"

	"github.com/alertgate/gateway/bench/attack"
	"github.com/alertgate/gateway/bench/traffic"
	"github.com/alertgate/gateway/internal/create"
	"github.com/alertgate/gateway/testenv"
)

func init() {
	Register(Benchmark{Name: "scaling", Description: "duplicate-path throughput and p99 at 1, 10, 50, 200 connections; 1 vs 2 replicas", Run: scaling})
}

func scaling(ctx context.Context, h *Harness) (*Result, error) {
	ns, err := h.namespace(ctx, "scaling")
	if err != nil {
		return nil, err
	}
	gen, err := traffic.New(traffic.Options{RunID: h.RunID + "-scale", Seed: 7, Pool: 1000})
	if err != nil {
		return nil, err
	}
	prefix := "bench:scale:" + h.RunID + ":"
	gw1, err := h.startGateway(ctx, ns, prefix, gatewaySpec{name: "gateway", direct: true})
	if err != nil {
		return nil, err
	}
	running := map[*testenv.Gateway]bool{gw1: true}
	defer func() {
		for g := range running {
			_ = g.Stop()
		}
	}()
	stop := func(g *testenv.Gateway) {
		if running[g] {
			delete(running, g)
			_ = g.Stop()
		}
	}
	if err := h.warm(ctx, gen, gw1.URL); err != nil {
		return nil, err
	}
	// A point as long as the default status interval holds one flush of
	// each default gateway, as their steady state does (10 s points caught
	// it in one point of three).
	d := h.dur(create.DefaultStatusInterval)
	rows := []string{"| replicas | connections | req/s (2xx) | signals/s | p50 ms | p99 ms | max ms | non-2xx | gateway CPU cores | CPU ms/req | all processes (cores) |",
		"|---|---|---|---|---|---|---|---|---|---|---|"}
	res := &Result{Name: "scaling", Figures: map[string]float64{}}
	status1h := false
	one := func(gws []*testenv.Gateway, conns int) error {
		h.settle(ctx)
		var urls []string
		watch := map[int]string{}
		for i, g := range gws {
			urls = append(urls, g.URL)
			watch[g.PID()] = fmt.Sprintf("gateway-%d", i+1)
		}
		before := gen.Stats().Signals
		r, err := h.run(ctx, attack.Options{Name: fmt.Sprintf("%d replica(s), %d connections", len(gws), conns), Targeter: gen.Targeter(urls),
			Connections: conns, Duration: d, Watch: h.watch(watch)})
		if err != nil {
			return err
		}
		sigs := float64(gen.Stats().Signals-before) / r.Seconds
		gwCPU, gwSec := 0.0, 0.0
		for _, p := range r.Processes {
			if strings.HasPrefix(p.Name, "gateway-") {
				gwCPU += p.CPUCores
				gwSec += p.CPUSeconds
			}
		}
		label := fmt.Sprint(len(gws))
		key := fmt.Sprintf("r%d_c%d", len(gws), conns)
		if status1h {
			label += " (status 1h)"
			key += "_status1h"
		}
		rows = append(rows, fmt.Sprintf("| %s | %d | %.0f | %.0f | %.2f | %.2f | %.2f | %d | %.2f | %.3f | %s |", label, conns, r.SuccessRate, sigs,
			r.Latency.P50, r.Latency.P99, r.Latency.Max, r.Requests-r.Success, gwCPU, 1000*gwSec/float64(max(r.Requests, 1)), cpuLine(r)))
		res.Figures["rps_"+key] = r.SuccessRate
		res.Figures["p99_ms_"+key] = r.Latency.P99
		res.Attacks = append(res.Attacks, r)
		return nil
	}
	for _, c := range []int{1, 10, 50, 200} {
		if err := one([]*testenv.Gateway{gw1}, c); err != nil {
			return nil, err
		}
	}
	gw2, err := h.startGateway(ctx, ns, prefix, gatewaySpec{name: "gateway-2", direct: true})
	if err != nil {
		return nil, err
	}
	running[gw2] = true
	for _, c := range []int{50, 200} {
		if err := one([]*testenv.Gateway{gw1, gw2}, c); err != nil {
			return nil, err
		}
	}
	// Each replica projects the statuses of what it saw: two replicas
	// double the status calls. The same points with the projection idle
	// show the request path alone.
	stop(gw1)
	stop(gw2)
	var qs []*testenv.Gateway
	for i := 1; i <= 2; i++ {
		g, err := h.startGateway(ctx, ns, prefix, gatewaySpec{name: fmt.Sprintf("gateway-status-1h-%d", i), direct: true, configure: statusIdle})
		if err != nil {
			return nil, err
		}
		running[g] = true
		qs = append(qs, g)
	}
	status1h = true
	for _, gws := range [][]*testenv.Gateway{qs[:1], qs} {
		if err := one(gws, 50); err != nil {
			return nil, err
		}
	}
	res.Summary = fmt.Sprintf("Duplicate path, closed loop: %.0f / %.0f / %.0f / %.0f req/s at 1 / 10 / 50 / 200 connections (p99 %.1f / %.1f / %.1f / %.1f ms); "+
		"2 replicas at 50 connections: %.0f req/s (1 replica: %.0f); with the status projection idle: 1 replica %.0f, 2 replicas %.0f.",
		res.Figures["rps_r1_c1"], res.Figures["rps_r1_c10"], res.Figures["rps_r1_c50"], res.Figures["rps_r1_c200"],
		res.Figures["p99_ms_r1_c1"], res.Figures["p99_ms_r1_c10"], res.Figures["p99_ms_r1_c50"], res.Figures["p99_ms_r1_c200"],
		res.Figures["rps_r2_c50"], res.Figures["rps_r1_c50"], res.Figures["rps_r1_c50_status1h"], res.Figures["rps_r2_c50_status1h"])
	res.Tables = []string{strings.Join(rows, "\n")}
	res.Notes = []string{
		fmt.Sprintf("%s per point, pool of 1000 signals delivered once before, then every signal a repeat; webhooks of 1–20 alerts; gateways reach Redis directly.", d),
		"With 2 replicas the load is spread round-robin; both share Redis, the key prefix and the namespace.",
	}
	return res, nil
}
