package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/alertgate/gateway/bench/benchmark"
	"github.com/alertgate/gateway/internal/app"
	"github.com/alertgate/gateway/testenv"
)

type benchFlags struct {
	out        string
	bin        string
	quick      bool
	compareBin string
	soakFor    time.Duration
}

func benchCmd() *cobra.Command {
	var f benchFlags
	c := &cobra.Command{
		Use:   "bench list | all | NAME...",
		Short: "Run the benchmarks of docs/benchmarks.md (all: every one but soak and compare)",
		RunE:  func(cmd *cobra.Command, names []string) error { return runBench(cmd, f, names) },
	}
	c.SetUsageTemplate(c.UsageTemplate() + "\nBenchmarks:\n" + catalog("  "))
	fl := c.Flags()
	fl.StringVar(&f.out, "out", "docs/benchmarks", "directory for NAME.json, NAME.md and profiles")
	fl.StringVar(&f.bin, "gateway-bin", "", "gateway binary (default: go build ./cmd/gateway)")
	fl.BoolVar(&f.quick, "quick", false, "shorten every benchmark (a smoke run, not a measurement)")
	fl.StringVar(&f.compareBin, "compare-bin", "", "for the compare benchmark: the gateway binary built before a change")
	fl.DurationVar(&f.soakFor, "soak-duration", 5*time.Minute, "duration of the soak benchmark (at most 1h)")
	return c
}

// catalog lists the benchmarks, one a line after indent.
func catalog(indent string) string {
	s := ""
	for _, b := range benchmark.All() {
		s += fmt.Sprintf("%s%-10s %s\n", indent, b.Name, b.Description)
	}
	return s
}

func runBench(cmd *cobra.Command, f benchFlags, names []string) error {
	ctx, log := cmd.Context(), cmd.ErrOrStderr()
	if len(names) == 0 || names[0] == "list" {
		fmt.Fprint(cmd.OutOrStdout(), catalog(""))
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
	gw, err := gatewayBinary(f.bin, log)
	if err != nil {
		return err
	}
	assets, err := testenv.Assets(log)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(f.out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	app.RouteLibraryLogs(slog.New(slog.DiscardHandler))
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	fmt.Fprintln(log, "starting redis-server, kube-apiserver + etcd and Toxiproxy…")
	e, err := testenv.Start(sctx, testenv.Options{AssetsDir: assets, RedisMaxMemory: "2gb"})
	cancel()
	if err != nil {
		return err
	}
	defer e.Stop()
	h := &benchmark.Harness{Env: e, GatewayBin: gw, CompareBin: f.compareBin, SoakDuration: f.soakFor, Self: self, Dir: dir, Log: log, Quick: f.quick, RunID: randomID()}
	for _, b := range todo {
		fmt.Fprintf(log, "== %s: %s\n", b.Name, b.Description)
		res, err := b.Run(ctx, h)
		if err != nil {
			return fmt.Errorf("%s: %w", b.Name, err)
		}
		res.Date = time.Now()
		res.Machine = benchmark.Machine()
		res.Command = "go run ./cmd/gateway-load bench " + rerunFlags(b.Name, f) + b.Name
		if f.quick {
			res.Notes = append(res.Notes, "QUICK RUN: shortened, not a measurement.")
		}
		if err := benchmark.WriteResult(dir, res); err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), res.Markdown())
		_ = e.Heal(ctx)
	}
	return nil
}

// rerunFlags are the flags that re-run benchmark name as this run did.
func rerunFlags(name string, f benchFlags) string {
	s := ""
	if name == "soak" && f.soakFor != 5*time.Minute {
		s += "--soak-duration " + f.soakFor.String() + " "
	}
	if name == "compare" {
		s += "--compare-bin BEFORE --gateway-bin AFTER "
	}
	if f.quick {
		s += "--quick "
	}
	return s
}
