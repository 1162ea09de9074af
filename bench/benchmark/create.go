package benchmark

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/bench/attack"
	"github.com/alertgate/gateway/bench/procstat"
	"github.com/alertgate/gateway/bench/traffic"
	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/internal/create"
	"github.com/alertgate/gateway/internal/ingest"
	"github.com/alertgate/gateway/internal/pipeline"
	"github.com/alertgate/gateway/testenv"
	"k8s.io/apimachinery/pkg/runtime"
)

func init() {
	Register(Benchmark{Name: "create", Description: "new-signal path: gateway latency per created resource vs a bare controller-runtime Create of the same object", Run: createPath})
}

// bareClient is a controller-runtime client configured as the gateway's:
// through the same Toxiproxy proxy, HTTP/1.1, the same rate limits and
// timeout, no cache.
func bareClient(e *testenv.Env) (client.Client, error) {
	cfg := config.Default()
	rc := rest.CopyConfig(e.ControlPlane.ConfigFor(e.ProxyAddr(testenv.Kubernetes)))
	rc.QPS = float32(cfg.Kubernetes.QPS)
	rc.Burst = cfg.Kubernetes.Burst
	rc.Timeout = cfg.Kubernetes.Timeout.Duration
	rc.UserAgent = "alertgate-bench"
	rc.NextProtos = []string{"http/1.1"}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.New(rc, client.Options{Scheme: scheme})
}

// createPath alternates, for three rounds, N one-alert webhooks of new
// signals sent one at a time to the gateway and N bare Creates of the very
// objects the gateway builds for such signals (decoded by the gateway's own
// reader, built by create.Build), one at a time, against the same API
// server through the same proxy.
func createPath(ctx context.Context, h *Harness) (*Result, error) {
	ns, err := h.namespace(ctx, "create")
	if err != nil {
		return nil, err
	}
	gen, err := traffic.New(traffic.Options{RunID: h.RunID + "-create", Seed: 2, Pool: 1, NewRatio: 1, BatchMin: 1, BatchMax: 1})
	if err != nil {
		return nil, err
	}
	gw, err := h.startGateway(ctx, ns, "bench:create:"+h.RunID+":", gatewaySpec{name: "gateway", direct: true})
	if err != nil {
		return nil, err
	}
	defer func() { _ = gw.Stop() }()
	// The same gateway with the status projection idle: a created
	// resource otherwise costs the API server a GET and an UPDATE of its
	// status a second later, which competes with the next creates.
	quiet, err := h.startGateway(ctx, ns, "bench:create:"+h.RunID+":", gatewaySpec{name: "gateway-status-1h", direct: true,
		configure: statusIdle})
	if err != nil {
		return nil, err
	}
	defer func() { _ = quiet.Stop() }()
	bare, err := bareClient(h.Env)
	if err != nil {
		return nil, err
	}
	rd := ingest.New(ingest.Options{})
	n := 200
	if h.Quick {
		n = 20
	}
	// One of each first: connections, discovery and caches warm.
	if _, err := h.run(ctx, attack.Options{Name: "gateway warm-up", Targeter: gen.Targeter([]string{gw.URL}), Connections: 1, MaxRequests: 5, Duration: time.Minute}); err != nil {
		return nil, err
	}
	if _, err := h.run(ctx, attack.Options{Name: "gateway-status-1h warm-up", Targeter: gen.Targeter([]string{quiet.URL}), Connections: 1, MaxRequests: 5, Duration: time.Minute}); err != nil {
		return nil, err
	}
	var gwRuns []*attack.Report
	var bareLat, gwLat, quietLat []time.Duration
	var bareCPU []string
	for round := 1; round <= 3; round++ {
		for _, s := range []struct {
			name string
			g    *testenv.Gateway
			lat  *[]time.Duration
		}{{"gateway", gw, &gwLat}, {"gateway-status-1h", quiet, &quietLat}} {
			h.settle(ctx)
			r, err := h.run(ctx, attack.Options{Name: fmt.Sprintf("%s round %d", s.name, round), Targeter: gen.Targeter([]string{s.g.URL}),
				Connections: 1, MaxRequests: uint64(n), Duration: 5 * time.Minute, KeepSamples: true, Watch: h.watch(map[int]string{s.g.PID(): s.name})})
			if err != nil {
				return nil, err
			}
			if r.Codes[http.StatusCreated] != n {
				return nil, fmt.Errorf("%s round %d: codes %v, want %d × 201", s.name, round, r.Codes, n)
			}
			gwRuns = append(gwRuns, r)
			for _, x := range r.Samples {
				*s.lat = append(*s.lat, x.Latency)
			}
			r.Samples = nil
		}
		h.settle(ctx)
		objs := make([]*v1alpha1.RemediationRequest, n)
		for i := range objs {
			req := gen.Next()
			hr := httptest.NewRequest(http.MethodPost, req.Path, bytes.NewReader(req.Body))
			hr.Header.Set("Content-Type", "application/json")
			pr, err := rd.Prometheus(httptest.NewRecorder(), hr, time.Now())
			if err != nil {
				return nil, err
			}
			sig := &pr.Signals[0]
			var members []pipeline.Member
			if m, ok := pipeline.MemberOf(sig); ok {
				members = append(members, m)
			}
			objs[i] = create.Build(sig, ns, 1, members)
		}
		var lat []time.Duration
		w := procstat.NewWatch(slices.Sorted(maps.Keys(h.watch(nil))), h.watch(nil), 0, false)
		machine, _ := procstat.ReadMachine()
		w.Start()
		for _, o := range objs {
			start := time.Now()
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := bare.Create(cctx, o)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("bare create: %w", err)
			}
			lat = append(lat, time.Since(start))
		}
		usage := w.Stop()
		q := attack.Of(lat)
		cl := cpuLine(&attack.Report{Processes: usage, MachineCores: machine.CoresSince()})
		h.logf("bare create round %d: %d creates, p50 %.2f ms p99 %.2f ms; %s", round, n, q.P50, q.P99, cl)
		bareLat = append(bareLat, lat...)
		bareCPU = append(bareCPU, fmt.Sprintf("round %d p50 %.2f p99 %.2f, %s", round, q.P50, q.P99, cl))
	}
	g, qg, b := attack.Of(gwLat), attack.Of(quietLat), attack.Of(bareLat)
	res := &Result{Name: "create", Figures: map[string]float64{
		"gateway_p50_ms": g.P50, "gateway_p99_ms": g.P99, "bare_p50_ms": b.P50, "bare_p99_ms": b.P99,
		"ratio_p50": g.P50 / b.P50, "ratio_p99": g.P99 / b.P99,
		"status1h_p50_ms": qg.P50, "status1h_p99_ms": qg.P99, "status1h_ratio_p50": qg.P50 / b.P50, "status1h_ratio_p99": qg.P99 / b.P99,
	}, Attacks: gwRuns}
	res.Summary = fmt.Sprintf("Per created resource, %d of each over 3 interleaved rounds: gateway p50 **%.2f ms**, p99 %.2f ms; bare `client.Create` p50 **%.2f ms**, p99 %.2f ms. "+
		"Ratio p50 **%.2f×** (goal ≤ 1.3×), p99 %.2f×. With the status projection idle (interval 1h): p50 %.2f ms, p99 %.2f ms, ratio p50 **%.2f×**, p99 %.2f×.",
		3*n, g.P50, g.P99, b.P50, b.P99, res.Figures["ratio_p50"], res.Figures["ratio_p99"], qg.P50, qg.P99, res.Figures["status1h_ratio_p50"], res.Figures["status1h_ratio_p99"])
	rows := []string{"| path | n | p50 ms | p95 ms | p99 ms | max ms | mean ms |", "|---|---|---|---|---|---|---|",
		fmt.Sprintf("| gateway (HTTP → view → claim → create → 201; the commit after the answer) | %d | %.2f | %.2f | %.2f | %.2f | %.2f |", g.Count, g.P50, g.P95, g.P99, g.Max, g.Mean),
		fmt.Sprintf("| gateway, status interval 1h | %d | %.2f | %.2f | %.2f | %.2f | %.2f |", qg.Count, qg.P50, qg.P95, qg.P99, qg.Max, qg.Mean),
		fmt.Sprintf("| bare controller-runtime Create | %d | %.2f | %.2f | %.2f | %.2f | %.2f |", b.Count, b.P50, b.P95, b.P99, b.Max, b.Mean),
	}
	var cpu []string
	for i, r := range gwRuns {
		cpu = append(cpu, fmt.Sprintf("round %d: %s", i+1, cpuLine(r)))
	}
	res.Tables = []string{strings.Join(rows, "\n")}
	res.Notes = []string{
		"One request at a time (no concurrency), each a webhook of one new alert; the bare client creates the object create.Build makes from the same kind of alert, decoded by the gateway's reader.",
		"Both go through the same Toxiproxy proxy to the same kube-apiserver, HTTP/1.1, QPS 500 / burst 1000; the gateway reaches Redis directly.",
		"Bare rounds: " + strings.Join(bareCPU, "; ") + ".",
		"CPU during the gateway rounds (default, then status 1h, per round): " + strings.Join(cpu, "; ") + ".",
	}
	return res, nil
}
