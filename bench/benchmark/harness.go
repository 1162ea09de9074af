// Package benchmark holds the gateway's benchmarks, one file each, and
// their registry. Each starts what it measures on a testenv.Env (real
// redis-server, kube-apiserver + etcd, Toxiproxy), gateways from the built
// binary and, for the duplicate path, the floor, drives them with vegeta
// through bench/attack and returns a Result: figures, the anchor measured
// in the same run, and the CPU and memory of every process involved (on a
// 2-core machine the load generator, the gateway and the dependencies share
// the CPU).
package benchmark

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/alertgate/gateway/bench/attack"
	"github.com/alertgate/gateway/bench/procstat"
	"github.com/alertgate/gateway/bench/traffic"
	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/testenv"
)

// Harness is what every benchmark runs on.
type Harness struct {
	Env *testenv.Env
	// GatewayBin is the gateway binary benchmarks start.
	GatewayBin string
	// CompareBin is another gateway binary, for the compare benchmark.
	CompareBin string
	// Self is this program's executable; the floor runs as
	// `Self floor …` so that it is a process of its own, like the gateway.
	Self string
	// Dir receives profiles and other files. Default: the working
	// directory.
	Dir string
	// Log receives progress lines. Default: discarded.
	Log io.Writer
	// Quick shortens every benchmark (a smoke run, not a measurement).
	Quick bool
	// SoakDuration overrides the soak's 5 minutes (at most 1h).
	SoakDuration time.Duration
	// RunID names this run's namespaces, keys and signals.
	RunID string
}

func (h *Harness) logf(format string, a ...any) {
	if h.Log != nil {
		fmt.Fprintf(h.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
}

// dur returns d, or a tenth of it (at least a second) in quick mode.
func (h *Harness) dur(d time.Duration) time.Duration {
	if h.Quick {
		return max(d/10, time.Second)
	}
	return d
}

// Result is what a benchmark reports.
type Result struct {
	Name    string    `json:"name"`
	Date    time.Time `json:"date"`
	Machine string    `json:"machine"`
	// Command re-runs the benchmark.
	Command string `json:"command"`
	// Summary is a few lines of Markdown with the headline figures.
	Summary string `json:"summary"`
	// Tables are Markdown tables.
	Tables []string `json:"tables"`
	// Figures are the headline numbers by name (e.g. "ratio").
	Figures map[string]float64 `json:"figures"`
	// Attacks are the raw reports.
	Attacks []*attack.Report `json:"attacks,omitempty"`
	// Files written next to the result (profiles).
	Files []string `json:"files,omitempty"`
	Notes []string `json:"notes,omitempty"`
}

// Markdown renders the result.
func (r *Result) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n", r.Name)
	fmt.Fprintf(&b, "%s; %s\n\n", r.Date.Format("2006-01-02 15:04 MST"), r.Machine)
	fmt.Fprintf(&b, "```\n%s\n```\n\n", r.Command)
	if r.Summary != "" {
		b.WriteString(r.Summary + "\n\n")
	}
	for _, t := range r.Tables {
		b.WriteString(t + "\n\n")
	}
	for _, n := range r.Notes {
		b.WriteString("- " + n + "\n")
	}
	if len(r.Files) > 0 {
		b.WriteString("\nFiles: " + strings.Join(r.Files, ", ") + "\n")
	}
	return b.String()
}

// Machine describes this machine.
func Machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
		if len(f) >= 2 {
			var kb int64
			_, _ = fmt.Sscan(f[1], &kb)
			mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%d cores (%s)%s, %s %s/%s", runtime.NumCPU(), model, mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Benchmark is one registered benchmark.
type Benchmark struct {
	Name        string
	Description string
	Run         func(ctx context.Context, h *Harness) (*Result, error)
}

var (
	mu       sync.Mutex
	registry = map[string]Benchmark{}
)

// Register adds a benchmark; it panics on a duplicate name.
func Register(b Benchmark) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[b.Name]; dup {
		panic("benchmark " + b.Name + " registered twice")
	}
	registry[b.Name] = b
}

// All returns every benchmark, in the order of the documentation.
func All() []Benchmark {
	mu.Lock()
	defer mu.Unlock()
	order := []string{"duplicate", "create", "failfast", "recovery", "memory", "scaling", "profile", "soak", "compare"}
	var out []Benchmark
	seen := map[string]bool{}
	for _, n := range order {
		if b, ok := registry[n]; ok {
			out = append(out, b)
			seen[n] = true
		}
	}
	var rest []string
	for n := range registry {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	for _, n := range rest {
		out = append(out, registry[n])
	}
	return out
}

// Get returns a benchmark by name.
func Get(name string) (Benchmark, bool) {
	mu.Lock()
	defer mu.Unlock()
	b, ok := registry[name]
	return b, ok
}

// gatewaySpec says how to start a gateway.
type gatewaySpec struct {
	name string
	// bin is the gateway binary. Default: Harness.GatewayBin.
	bin string
	// direct connects the gateway straight to Redis instead of through
	// Toxiproxy (its API traffic always goes through the proxy).
	direct    bool
	configure func(*config.Config)
	// readyTimeout: testenv.GatewayOptions.ReadyTimeout.
	readyTimeout time.Duration
}

// statusIdle sets the status projection's interval to an hour, so that it
// stays idle during a benchmark and the request path alone is measured.
func statusIdle(c *config.Config) { c.StatusInterval = config.D(time.Hour) }

// namespace creates a namespace for one benchmark's resources.
func (h *Harness) namespace(ctx context.Context, bench string) (string, error) {
	ns := "bench-" + bench + "-" + h.RunID
	return ns, h.Env.CreateNamespace(ctx, ns)
}

// startGateway starts one gateway process.
func (h *Harness) startGateway(ctx context.Context, ns, prefix string, s gatewaySpec) (*testenv.Gateway, error) {
	g, err := h.Env.StartGateway(ctx, testenv.GatewayOptions{Namespace: ns, KeyPrefix: prefix, Bin: cmp.Or(s.bin, h.GatewayBin),
		ReadyTimeout: s.readyTimeout,
		Configure: func(c *config.Config) {
			if s.direct {
				c.Redis.Addr = h.Env.Redis.Addr()
			}
			c.LogLevel = "warn"
			if s.configure != nil {
				s.configure(c)
			}
		}})
	if err != nil {
		return nil, fmt.Errorf("benchmark: start gateway %s: %w", s.name, err)
	}
	return g, nil
}

// floorProc is the floor running as a child process.
type floorProc struct {
	URL string
	cmd *exec.Cmd
}

// startFloor runs `Self floor` against the env's Redis (direct).
func (h *Harness) startFloor(ctx context.Context, prefix string) (*floorProc, error) {
	cmd := exec.Command(h.Self, "floor", "--redis-addr", h.Env.Redis.Addr(), "--key-prefix", prefix, "--listen", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("benchmark: start floor: %w", err)
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l, ok := <-line:
		if !ok || !strings.HasPrefix(l, "http://") {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("benchmark: floor did not start (%q)", l)
		}
		return &floorProc{URL: strings.TrimSpace(l), cmd: cmd}, nil
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return nil, errors.New("benchmark: floor not listening after 10s")
}

func (f *floorProc) PID() int { return f.cmd.Process.Pid }

func (f *floorProc) Stop() {
	_ = f.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = f.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = f.cmd.Process.Kill()
		<-done
	}
}

// watch names the processes of a run: the given ones, this process (load
// generator and Toxiproxy), redis-server, kube-apiserver and etcd.
func (h *Harness) watch(procs map[int]string) map[int]string {
	w := map[int]string{os.Getpid(): "load+toxiproxy"}
	if p := h.Env.Redis.PID(); p > 0 {
		w[p] = "redis-server"
	}
	for p, n := range procstat.Descendants(os.Getpid()) {
		if n == "kube-apiserver" || n == "etcd" {
			w[p] = n
		}
	}
	for p, n := range procs {
		w[p] = n
	}
	return w
}

// warm delivers the generator's pool once to each URL, so that every later
// repeat is a duplicate; it fails unless every request was stored.
func (h *Harness) warm(ctx context.Context, g *traffic.Generator, urls ...string) error {
	for _, u := range urls {
		reqs := g.PoolRequests(20)
		r, err := attack.Run(ctx, attack.Options{Name: "warm-up " + u, Targeter: traffic.Static(reqs, []string{u}),
			Connections: 8, Duration: 5 * time.Minute, Timeout: 30 * time.Second})
		if err != nil {
			return err
		}
		if r.Success != len(reqs) {
			return fmt.Errorf("benchmark: warm-up of %s: %d of %d requests stored: codes %v errors %v", u, r.Success, len(reqs), r.Codes, r.Errors)
		}
		h.logf("warm-up %s: %d requests, %d signals in %.1fs", u, len(reqs), countSignals(reqs), r.Seconds)
	}
	return nil
}

func countSignals(reqs []traffic.Request) int {
	n := 0
	for _, r := range reqs {
		n += r.Signals
	}
	return n
}

// run is attack.Run with the harness's log.
func (h *Harness) run(ctx context.Context, o attack.Options) (*attack.Report, error) {
	r, err := attack.Run(ctx, o)
	if err != nil {
		return nil, err
	}
	h.logf("%s", strings.TrimRight(r.Text(), "\n"))
	return r, nil
}

// proc returns the usage of the process named name in r.
func proc(r *attack.Report, name string) procstat.Usage {
	for _, p := range r.Processes {
		if p.Name == name {
			return p
		}
	}
	return procstat.Usage{}
}

// cpuLine lists each process's CPU cores over an attack.
func cpuLine(r *attack.Report) string {
	ps := append([]procstat.Usage(nil), r.Processes...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].CPUSeconds > ps[j].CPUSeconds })
	var parts []string
	total := 0.0
	for _, p := range ps {
		total += p.CPUCores
		parts = append(parts, fmt.Sprintf("%s %.2f", p.Name, p.CPUCores))
	}
	if other := r.MachineCores - total; other > 0.05 {
		parts = append(parts, fmt.Sprintf("other work %.2f", other))
	}
	return fmt.Sprintf("%.2f cores: %s", total, strings.Join(parts, ", "))
}

// WriteResult writes NAME.json and NAME.md into dir.
func WriteResult(dir string, r *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, r.Name+".json"), b, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, r.Name+".md"), []byte(r.Markdown()), 0o644)
}

// settle waits until the dependencies are idle (kube-apiserver, etcd and
// redis-server together under a fifth of a core over half a second), at
// most 30s: work left over from one attack (status projections) must not
// land in the next one.
func (h *Harness) settle(ctx context.Context) {
	w := h.watch(nil)
	delete(w, os.Getpid())
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		before := map[int]time.Duration{}
		for p := range w {
			if s, err := procstat.Read(p); err == nil {
				before[p] = s.CPU
			}
		}
		time.Sleep(500 * time.Millisecond)
		var used time.Duration
		for p := range w {
			if s, err := procstat.Read(p); err == nil {
				used += s.CPU - before[p]
			}
		}
		if used < 100*time.Millisecond {
			break
		}
	}
	if time.Now().After(deadline) {
		h.logf("dependencies still busy after 30s of settling")
	}
	// Work of other programs on the machine distorts every figure: wait
	// (at most a minute) until the machine is nearly idle.
	deadline = time.Now().Add(time.Minute)
	for ctx.Err() == nil {
		m, err := procstat.ReadMachine()
		if err != nil {
			return
		}
		time.Sleep(time.Second)
		if c := m.CoresSince(); c < 0.3 {
			return
		} else if time.Now().After(deadline) {
			h.logf("the machine is still busy (%.2f cores) with other work; measuring anyway", c)
			return
		}
	}
}
