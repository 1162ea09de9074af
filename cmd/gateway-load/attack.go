package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/alertgate/gateway/bench/attack"
	"github.com/alertgate/gateway/bench/traffic"
	"github.com/alertgate/gateway/internal/app"
	"github.com/alertgate/gateway/testenv"
)

type attackFlags struct {
	urls        []string
	rate        int
	connections int
	duration    time.Duration
	maxRequests uint64
	timeout     time.Duration
	newRatio    float64
	pool        int
	batchMin    int
	batchMax    int
	eventRatio  float64
	labels      []string
	tokenFile   string
	runID       string
	seed        uint64
	pids        []int
	warmup      bool
	jsonOut     bool
	useEnv      bool
	replicas    int
	gatewayBin  string
}

func attackCmd(use string) *cobra.Command {
	var f attackFlags
	c := &cobra.Command{
		Use:   use,
		Short: "Attack gateways at --url (or started with --env) with generated webhooks and Events",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAttack(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := c.Flags()
	fl.StringSliceVar(&f.urls, "url", []string{"http://127.0.0.1:8080"}, "gateway base URL(s), comma-separated (loopback only); ignored with --env")
	fl.IntVar(&f.rate, "rate", 0, "requests per second; 0: closed loop with --connections workers")
	fl.IntVar(&f.connections, "connections", 10, "closed loop: workers and connections; fixed rate: their upper bound")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "bound on the attack's duration (at most 1h)")
	fl.Uint64Var(&f.maxRequests, "max-requests", 0, "bound on the number of requests (0: --duration only)")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "timeout of each request")
	fl.Float64Var(&f.newRatio, "new-ratio", 0.1, "probability that a signal is new rather than a repeat from the pool")
	fl.IntVar(&f.pool, "pool", 1000, "number of repeated signals (per source)")
	fl.IntVar(&f.batchMin, "batch-min", 1, "fewest alerts per webhook")
	fl.IntVar(&f.batchMax, "batch-max", 20, "most alerts per webhook")
	fl.Float64Var(&f.eventRatio, "event-ratio", 0, "share of requests that are one Kubernetes Warning Event")
	fl.StringArrayVar(&f.labels, "labels", nil, "a label set added to the generated alerts, as name=value,name=value; repeat it for several sets, each alert carrying one")
	fl.StringVar(&f.tokenFile, "bearer-token-file", "", "send the token in this file as a bearer token, as a sender of a gateway with --auth=kubernetes (its default) or static must")
	fl.StringVar(&f.runID, "run-id", "", "makes this run's signals distinct from other runs' (default: random); reuse it to repeat a pool")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of the random choices (default: random)")
	fl.IntSliceVar(&f.pids, "gateway-pid", nil, "PID(s) of the gateway, comma-separated: report their CPU seconds and peak RSS")
	fl.BoolVar(&f.warmup, "warmup", false, "deliver the pool once before the attack, so that repeats are duplicates (default with --env)")
	fl.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
	fl.BoolVar(&f.useEnv, "env", false, "start redis-server, kube-apiserver+etcd, Toxiproxy and the gateway binary, then attack the gateway")
	fl.IntVar(&f.replicas, "replicas", 1, "with --env: gateways sharing Redis and the namespace; the load is spread round-robin")
	fl.StringVar(&f.gatewayBin, "gateway-bin", "", "with --env: gateway binary (default: go build ./cmd/gateway)")
	return c
}

func runAttack(ctx context.Context, stdout, log io.Writer, f attackFlags) error {
	if f.runID == "" {
		f.runID = randomID()
	}
	sets, err := labelSets(f.labels)
	if err != nil {
		return err
	}
	token := ""
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return fmt.Errorf("--bearer-token-file: %w", err)
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return fmt.Errorf("--bearer-token-file %s is empty", f.tokenFile)
		}
	}
	watch := map[int]string{}
	for _, pid := range f.pids {
		watch[pid] = fmt.Sprintf("gateway[%d]", pid)
	}
	var urls []string
	if f.useEnv {
		e, gws, cleanup, err := startEnv(ctx, log, f)
		defer cleanup()
		if err != nil {
			return err
		}
		for i, g := range gws {
			urls = append(urls, g.URL)
			watch[g.PID()] = fmt.Sprintf("gateway-%d", i+1)
		}
		watch[os.Getpid()] = "load+toxiproxy"
		watch[e.Redis.PID()] = "redis-server"
		f.warmup = true
	} else {
		for _, u := range f.urls {
			if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
				urls = append(urls, u)
			}
		}
	}
	if len(urls) == 0 {
		return errors.New("no --url")
	}
	for _, u := range urls {
		if err := attack.CheckLoopback(u); err != nil {
			return err
		}
	}
	gen, err := traffic.New(traffic.Options{RunID: f.runID, Seed: f.seed, Pool: f.pool, NewRatio: f.newRatio,
		BatchMin: f.batchMin, BatchMax: f.batchMax, EventRatio: f.eventRatio, LabelSets: sets})
	if err != nil {
		return err
	}
	if f.warmup {
		reqs := gen.PoolRequests(20)
		r, err := attack.Run(ctx, attack.Options{Name: "warm-up", Targeter: traffic.Static(reqs, urls), Connections: 8, Duration: 5 * time.Minute, BearerToken: token})
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "warm-up: %d requests, codes %v, %.1fs\n", r.Requests, r.Codes, r.Seconds)
	}
	before := gen.Stats()
	r, err := attack.Run(ctx, attack.Options{Name: "attack", Targeter: gen.Targeter(urls), Rate: f.rate, Connections: f.connections,
		Duration: f.duration, MaxRequests: f.maxRequests, Timeout: f.timeout, Watch: watch, BearerToken: token})
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	st := gen.Stats()
	sent, newSigs := st.Signals-before.Signals, st.New-before.New
	if f.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			*attack.Report
			Signals    uint64  `json:"signals"`
			NewSignals uint64  `json:"newSignals"`
			SignalRate float64 `json:"signalsPerSecond"`
		}{r, sent, newSigs, float64(sent) / max(r.Seconds, 1e-9)})
	}
	fmt.Fprint(stdout, r.Text())
	fmt.Fprintf(stdout, "  signals: %d sent (%d new), %.1f signals/s\n", sent, newSigs, float64(sent)/max(r.Seconds, 1e-9))
	return nil
}

// labelSets parses --labels values (name=value,name=value each).
func labelSets(flags []string) ([]map[string]string, error) {
	var sets []map[string]string
	for _, f := range flags {
		set := map[string]string{}
		for _, kv := range strings.Split(f, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("--labels %q: %q is not name=value", f, kv)
			}
			set[k] = v
		}
		sets = append(sets, set)
	}
	return sets, nil
}

// startEnv starts the test environment and the gateways for --env.
func startEnv(ctx context.Context, log io.Writer, f attackFlags) (*testenv.Env, []*testenv.Gateway, func(), error) {
	var e *testenv.Env
	var gws []*testenv.Gateway
	cleanup := func() {
		for _, g := range gws {
			_ = g.Stop()
		}
		if e != nil {
			e.Stop()
		}
	}
	bin, err := gatewayBinary(f.gatewayBin, log)
	if err != nil {
		return nil, nil, cleanup, err
	}
	assets, err := testenv.Assets(log)
	if err != nil {
		return nil, nil, cleanup, err
	}
	app.RouteLibraryLogs(slog.New(slog.DiscardHandler))
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	fmt.Fprintln(log, "starting redis-server, kube-apiserver + etcd and Toxiproxy…")
	e, err = testenv.Start(sctx, testenv.Options{AssetsDir: assets})
	if err != nil {
		return nil, nil, cleanup, err
	}
	ns := "load-" + f.runID
	if err := e.CreateNamespace(sctx, ns); err != nil {
		return e, nil, cleanup, err
	}
	for range max(f.replicas, 1) {
		g, err := e.StartGateway(sctx, testenv.GatewayOptions{Namespace: ns, KeyPrefix: "load:" + f.runID + ":", Bin: bin})
		if err != nil {
			return e, gws, cleanup, err
		}
		gws = append(gws, g)
	}
	fmt.Fprintf(log, "gateways ready: %d in namespace %s\n", len(gws), ns)
	return e, gws, cleanup, nil
}

// gatewayBinary returns bin, or builds ./cmd/gateway into a temporary
// directory.
func gatewayBinary(bin string, log io.Writer) (string, error) {
	if bin != "" {
		return bin, nil
	}
	fmt.Fprintln(log, "building ./cmd/gateway…")
	b, err := testenv.BuildGateway(filepath.Join(os.TempDir(), "alertgate-bench"), log)
	if err != nil {
		return "", fmt.Errorf("%w; or pass --gateway-bin", err)
	}
	return b, nil
}
