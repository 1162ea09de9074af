// Command gateway-load drives the gateway with realistic traffic through
// vegeta and reports throughput, latency quantiles, status codes and the
// gateway's CPU and memory. It only sends to loopback addresses.
//
//	gateway-load --url http://127.0.0.1:8080 [--rate N | --connections N] [--duration D] [--max-requests N] …
//	gateway-load --env …               start Redis, a control plane and the gateway binary, then attack it
//	gateway-load bench list|all|NAME…  run the benchmarks of docs/benchmarks.md
//	gateway-load floor --redis-addr A  serve the duplicate-path floor (the benchmark starts it itself)
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/alertgate/gateway/bench/attack"
	"github.com/alertgate/gateway/bench/benchmark"
	"github.com/alertgate/gateway/bench/floor"
	"github.com/alertgate/gateway/bench/traffic"
	"github.com/alertgate/gateway/internal/app"
	"github.com/alertgate/gateway/testenv"
)

func main() {
	// The benchmarks' bare controller-runtime clients log nothing.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case len(args) > 0 && args[0] == "floor":
		err = serveFloor(ctx, args[1:])
	case len(args) > 0 && args[0] == "bench":
		err = runBench(ctx, args[1:])
	case len(args) > 0 && args[0] == "attack":
		err = runAttack(ctx, args[1:])
	default:
		err = runAttack(ctx, args)
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway-load:", err)
		return 1
	}
	return 0
}

type attackFlags struct {
	urls        string
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
	runID       string
	seed        uint64
	pids        string
	warmup      bool
	jsonOut     bool
	useEnv      bool
	replicas    int
	gatewayBin  string
}

func runAttack(ctx context.Context, args []string) error {
	var f attackFlags
	fs := flag.NewFlagSet("gateway-load", flag.ContinueOnError)
	fs.StringVar(&f.urls, "url", "http://127.0.0.1:8080", "gateway base URL(s), comma-separated (loopback only); ignored with --env")
	fs.IntVar(&f.rate, "rate", 0, "requests per second; 0: closed loop with --connections workers")
	fs.IntVar(&f.connections, "connections", 10, "closed loop: workers and connections; fixed rate: their upper bound")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "bound on the attack's duration (at most 1h)")
	fs.Uint64Var(&f.maxRequests, "max-requests", 0, "bound on the number of requests (0: --duration only)")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "timeout of each request")
	fs.Float64Var(&f.newRatio, "new-ratio", 0.1, "probability that a signal is new rather than a repeat from the pool")
	fs.IntVar(&f.pool, "pool", 1000, "number of repeated signals (per source)")
	fs.IntVar(&f.batchMin, "batch-min", 1, "fewest alerts per webhook")
	fs.IntVar(&f.batchMax, "batch-max", 20, "most alerts per webhook")
	fs.Float64Var(&f.eventRatio, "event-ratio", 0, "share of requests that are one Kubernetes Warning Event")
	fs.StringVar(&f.runID, "run-id", "", "makes this run's signals distinct from other runs' (default: random); reuse it to repeat a pool")
	fs.Uint64Var(&f.seed, "seed", 0, "seed of the random choices (default: random)")
	fs.StringVar(&f.pids, "gateway-pid", "", "PID(s) of the gateway, comma-separated: report their CPU seconds and peak RSS")
	fs.BoolVar(&f.warmup, "warmup", false, "deliver the pool once before the attack, so that repeats are duplicates (default with --env)")
	fs.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
	fs.BoolVar(&f.useEnv, "env", false, "start redis-server, kube-apiserver+etcd, Toxiproxy and the gateway binary, then attack the gateway")
	fs.IntVar(&f.replicas, "replicas", 1, "with --env: gateways sharing Redis and the namespace; the load is spread round-robin")
	fs.StringVar(&f.gatewayBin, "gateway-bin", "", "with --env: gateway binary (default: go build ./cmd/gateway)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if f.runID == "" {
		f.runID = randomID()
	}
	watch := map[int]string{}
	for _, p := range strings.Split(f.pids, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		pid, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("--gateway-pid %q: %w", p, err)
		}
		watch[pid] = fmt.Sprintf("gateway[%d]", pid)
	}
	var urls []string
	if f.useEnv {
		e, gws, cleanup, err := startEnv(ctx, f)
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
		for _, u := range strings.Split(f.urls, ",") {
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
		BatchMin: f.batchMin, BatchMax: f.batchMax, EventRatio: f.eventRatio})
	if err != nil {
		return err
	}
	if f.warmup {
		reqs := gen.PoolRequests(20)
		r, err := attack.Run(ctx, attack.Options{Name: "warm-up", Targeter: traffic.Static(reqs, urls), Connections: 8, Duration: 5 * time.Minute})
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "warm-up: %d requests, codes %v, %.1fs\n", r.Requests, r.Codes, r.Seconds)
	}
	before := gen.Stats()
	r, err := attack.Run(ctx, attack.Options{Name: "attack", Targeter: gen.Targeter(urls), Rate: f.rate, Connections: f.connections,
		Duration: f.duration, MaxRequests: f.maxRequests, Timeout: f.timeout, Watch: watch})
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	st := gen.Stats()
	sent, newSigs := st.Signals-before.Signals, st.New-before.New
	if f.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			*attack.Report
			Signals    uint64  `json:"signals"`
			NewSignals uint64  `json:"newSignals"`
			SignalRate float64 `json:"signalsPerSecond"`
		}{r, sent, newSigs, float64(sent) / max(r.Seconds, 1e-9)})
	}
	fmt.Print(r.Text())
	fmt.Printf("  signals: %d sent (%d new), %.1f signals/s\n", sent, newSigs, float64(sent)/max(r.Seconds, 1e-9))
	return nil
}

// startEnv starts the chaos environment and the gateways for --testenv.
func startEnv(ctx context.Context, f attackFlags) (*testenv.Env, []*testenv.Gateway, func(), error) {
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
	bin, err := gatewayBinary(f.gatewayBin)
	if err != nil {
		return nil, nil, cleanup, err
	}
	if err := assets(); err != nil {
		return nil, nil, cleanup, err
	}
	app.RouteLibraryLogs(slog.New(slog.DiscardHandler))
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	fmt.Fprintln(os.Stderr, "starting redis-server, kube-apiserver + etcd and Toxiproxy…")
	e, err = testenv.Start(sctx, testenv.Options{})
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
		for !g.Ready(sctx) {
			if sctx.Err() != nil {
				return e, gws, cleanup, fmt.Errorf("gateway not ready: %w", sctx.Err())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	fmt.Fprintf(os.Stderr, "gateways ready: %d in namespace %s\n", len(gws), ns)
	return e, gws, cleanup, nil
}

func randomID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// moduleRoot finds the directory of go.mod upwards from the working
// directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the gateway module (no go.mod found upwards); pass --gateway-bin")
		}
		dir = parent
	}
}

// gatewayBinary returns bin, or builds ./cmd/gateway into a temporary
// directory.
func gatewayBinary(bin string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(os.TempDir(), "alertgate-bench", "gateway")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/gateway")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	fmt.Fprintln(os.Stderr, "building ./cmd/gateway…")
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build gateway: %w", err)
	}
	return out, nil
}

// assets sets KUBEBUILDER_ASSETS from hack/test-binaries.sh when unset.
func assets() error {
	if os.Getenv("KUBEBUILDER_ASSETS") != "" {
		return nil
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(root, "hack", "test-binaries.sh"))
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("KUBEBUILDER_ASSETS unset and hack/test-binaries.sh failed: %w", err)
	}
	return os.Setenv("KUBEBUILDER_ASSETS", strings.TrimSpace(string(out)))
}

func serveFloor(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gateway-load floor", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "listen address (loopback)")
	addr := fs.String("redis-addr", "", "Redis address")
	prefix := fs.String("key-prefix", "alertgate:floor:", "prefix of the floor's keys")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := floor.Start(floor.Options{Listen: *listen, RedisAddr: *addr, KeyPrefix: *prefix})
	if err != nil {
		return err
	}
	fmt.Println(s.URL())
	<-ctx.Done()
	s.Stop()
	return nil
}

func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gateway-load bench", flag.ContinueOnError)
	out := fs.String("out", "docs/benchmarks", "directory for NAME.json, NAME.md and profiles")
	bin := fs.String("gateway-bin", "", "gateway binary (default: go build ./cmd/gateway)")
	quick := fs.Bool("quick", false, "shorten every benchmark (a smoke run, not a measurement)")
	compareBin := fs.String("compare-bin", "", "for the compare benchmark: the gateway binary built before a change")
	soakFor := fs.Duration("soak-duration", 5*time.Minute, "duration of the soak benchmark (at most 1h)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: gateway-load bench [flags] list | all | NAME...")
		fs.PrintDefaults()
		for _, b := range benchmark.All() {
			fmt.Fprintf(fs.Output(), "  %-10s %s\n", b.Name, b.Description)
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	names := fs.Args()
	if len(names) == 0 || names[0] == "list" {
		for _, b := range benchmark.All() {
			fmt.Printf("%-10s %s\n", b.Name, b.Description)
		}
		return nil
	}
	var todo []benchmark.Benchmark
	if names[0] == "all" {
		for _, b := range benchmark.All() {
			if b.Name != "soak" && b.Name != "compare" {
				todo = append(todo, b)
			}
		}
	} else {
		for _, n := range names {
			b, ok := benchmark.Get(n)
			if !ok {
				return fmt.Errorf("no benchmark %q (gateway-load bench list)", n)
			}
			todo = append(todo, b)
		}
	}
	gw, err := gatewayBinary(*bin)
	if err != nil {
		return err
	}
	if err := assets(); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	app.RouteLibraryLogs(slog.New(slog.DiscardHandler))
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	fmt.Fprintln(os.Stderr, "starting redis-server, kube-apiserver + etcd and Toxiproxy…")
	e, err := testenv.Start(sctx, testenv.Options{RedisMaxMemory: "2gb"})
	cancel()
	if err != nil {
		return err
	}
	defer e.Stop()
	h := &benchmark.Harness{Env: e, GatewayBin: gw, CompareBin: *compareBin, SoakDuration: *soakFor, Self: self, Dir: dir, Log: os.Stderr, Quick: *quick, RunID: randomID()}
	for _, b := range todo {
		fmt.Fprintf(os.Stderr, "== %s: %s\n", b.Name, b.Description)
		res, err := b.Run(ctx, h)
		if err != nil {
			return fmt.Errorf("%s: %w", b.Name, err)
		}
		res.Date = time.Now()
		res.Machine = benchmark.Machine()
		// Flags go before the benchmark's name (the flag package stops at
		// the first argument that is not one).
		cmdFlags := ""
		if b.Name == "soak" && *soakFor != 5*time.Minute {
			cmdFlags += "--soak-duration " + soakFor.String() + " "
		}
		if b.Name == "compare" {
			cmdFlags += "--compare-bin BEFORE --gateway-bin AFTER "
		}
		if *quick {
			cmdFlags += "--quick "
			res.Notes = append(res.Notes, "QUICK RUN: shortened, not a measurement.")
		}
		res.Command = "go run ./cmd/gateway-load bench " + cmdFlags + b.Name
		if err := benchmark.WriteResult(dir, res); err != nil {
			return err
		}
		fmt.Println(res.Markdown())
		_ = e.Heal(ctx)
	}
	return nil
}
