package benchmark

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/alertgate/gateway/bench/traffic"
	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/testenv"
)

func init() {
	Register(Benchmark{Name: "profile", Description: "CPU and allocation profiles of the duplicate path (gateway in this process, load from a child process)", Run: profile})
}

// profile runs a gateway in this process (the binary exposes no pprof),
// with Redis direct, and drives it from a child process (`Self attack`),
// so that the profiles hold the gateway and not the load generator. The
// Toxiproxy in this process carries only the status projection's API
// calls.
func profile(ctx context.Context, h *Harness) (*Result, error) {
	ns, err := h.namespace(ctx, "profile")
	if err != nil {
		return nil, err
	}
	runID := h.RunID + "-prof"
	gen, err := traffic.New(traffic.Options{RunID: runID, Seed: 8, Pool: 1000})
	if err != nil {
		return nil, err
	}
	gw, err := h.Env.StartGateway(ctx, testenv.GatewayOptions{Namespace: ns, KeyPrefix: "bench:prof:" + h.RunID + ":", Configure: func(c *config.Config) {
		c.Redis.Addr = h.Env.Redis.Addr()
		c.LogLevel = "warn"
	}})
	if err != nil {
		return nil, err
	}
	defer func() { _ = gw.Stop() }()
	if err := h.warm(ctx, gen, gw.URL); err != nil {
		return nil, err
	}
	h.settle(ctx)
	d := h.dur(20 * time.Second)
	cpuPath := filepath.Join(h.Dir, "duplicate-cpu.pprof")
	allocPath := filepath.Join(h.Dir, "duplicate-alloc.pprof")
	basePath := filepath.Join(os.TempDir(), "alertgate-heap-base.pprof")
	runtime.GC()
	if err := writeHeap(basePath); err != nil {
		return nil, err
	}
	cf, err := os.Create(cpuPath)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(cf); err != nil {
		_ = cf.Close()
		return nil, err
	}
	cmd := exec.CommandContext(ctx, h.Self, "attack", "--url", gw.URL, "--connections", strconv.Itoa(DuplicateConnections), "--duration", d.String(),
		"--new-ratio", "0", "--pool", "1000", "--run-id", runID, "--seed", "9")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	pprof.StopCPUProfile()
	_ = cf.Close()
	if err != nil {
		return nil, fmt.Errorf("load process: %w\n%s", err, out.String())
	}
	heapPath := filepath.Join(os.TempDir(), "alertgate-heap.pprof")
	if err := writeHeap(heapPath); err != nil {
		return nil, err
	}
	// The allocation profile of the attack alone: the heap profile at the
	// end minus the one at the start.
	delta, err := exec.Command("go", "tool", "pprof", "-proto", "-base", basePath, heapPath).Output()
	if err != nil {
		return nil, fmt.Errorf("pprof -base: %w", err)
	}
	if err := os.WriteFile(allocPath, delta, 0o644); err != nil {
		return nil, err
	}
	h.logf("load process:\n%s", out.String())
	var summaries []string
	for _, s := range []struct{ title, file string }{
		{"cpu", "duplicate-cpu.txt"}, {"alloc_space", "duplicate-alloc-space.txt"}, {"alloc_objects", "duplicate-alloc-objects.txt"},
	} {
		args := []string{"tool", "pprof", "-top", "-nodecount=45"}
		src := cpuPath
		if s.title != "cpu" {
			args = append(args, "-sample_index="+s.title)
			src = allocPath
		}
		top, err := exec.Command("go", append(args, src)...).Output()
		if err != nil {
			return nil, fmt.Errorf("pprof -top: %w", err)
		}
		cum, err := exec.Command("go", append(append(args, "-cum"), src)...).Output()
		if err != nil {
			return nil, fmt.Errorf("pprof -top -cum: %w", err)
		}
		text := fmt.Sprintf("# %s, flat\n%s\n# %s, cumulative\n%s", s.title, top, s.title, cum)
		if err := os.WriteFile(filepath.Join(h.Dir, s.file), []byte(text), 0o644); err != nil {
			return nil, err
		}
		summaries = append(summaries, s.file)
	}
	res := &Result{Name: "profile", Figures: map[string]float64{},
		Files: append([]string{"duplicate-cpu.pprof", "duplicate-alloc.pprof"}, summaries...)}
	res.Summary = "Load (child process): \n\n```\n" + strings.TrimSpace(out.String()) + "\n```"
	res.Notes = []string{
		fmt.Sprintf("%s closed loop with %d connections, every signal a repeat of a pool of 1000 delivered once before.", d, DuplicateConnections),
		"Read with `go tool pprof -top docs/benchmarks/duplicate-cpu.pprof` (or -http); the alloc profile is a delta (heap at the end minus heap at the start): use -sample_index=alloc_space or alloc_objects.",
		"This process also holds the test environment's Toxiproxy (carrying the status projection's API calls) and idle verifier clients.",
	}
	return res, nil
}

func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("heap").WriteTo(f, 0)
}
