package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/alertgate/gateway/chaos/random"
	"github.com/alertgate/gateway/chaos/report"
	"github.com/alertgate/gateway/chaos/run"
	"github.com/alertgate/gateway/chaos/scenario"
	"github.com/alertgate/gateway/internal/app"
	"github.com/alertgate/gateway/testenv"
)

type runFlags struct {
	scenarios  []string
	gateways   int
	gatewayBin string
	reportDir  string
	seed       int64
	quick      bool
	random     bool
	duration   time.Duration
	keep       bool
}

func runCmd() *cobra.Command {
	var f runFlags
	c := &cobra.Command{
		Use:   "run",
		Short: "Start Redis, a control plane, Toxiproxy and the gateway; run the scenarios; write the report",
		Long: "Runs every scenario (or those named with --scenario) and writes report.json, report.md and one\n" +
			"timeline picture per scenario to --report-dir. Exits 0 only if every invariant held.\n" +
			"With --random, runs a seeded random fault schedule for --duration and checks the history.",
		RunE: func(cmd *cobra.Command, _ []string) error { return runRun(cmd, f) },
	}
	fl := c.Flags()
	fl.StringSliceVar(&f.scenarios, "scenario", nil, "scenario names to run (default: all); see `list`")
	fl.IntVar(&f.gateways, "gateways", 0, "gateway replicas per scenario (default: what each scenario needs)")
	fl.StringVar(&f.gatewayBin, "gateway-bin", "", "test this gateway binary (run as processes) instead of the in-process build")
	fl.StringVar(&f.reportDir, "report-dir", "reports", "where to write report.json, report.md and the pictures")
	fl.Int64Var(&f.seed, "seed", 1, "seed of the random schedule and load")
	fl.BoolVar(&f.quick, "quick", false, "short profile: skip the scenarios marked slow")
	fl.BoolVar(&f.random, "random", false, "run a random fault schedule instead of the scenarios")
	fl.DurationVar(&f.duration, "duration", 2*time.Minute, "length of the random run")
	fl.BoolVar(&f.keep, "keep-histories", false, "write every run's history to --report-dir, not only a failed one's")
	return c
}

func runRun(cmd *cobra.Command, f runFlags) error {
	var todo []*scenario.Scenario
	switch {
	case f.random:
		todo = []*scenario.Scenario{random.Scenario(random.Options{Seed: f.seed, Duration: f.duration, Gateways: f.gateways})}
	case len(f.scenarios) == 0:
		for _, s := range scenario.All() {
			if !(f.quick && s.Slow) {
				todo = append(todo, s)
			}
		}
	default:
		for _, name := range f.scenarios {
			s, ok := scenario.Get(name)
			if !ok {
				return fmt.Errorf("unknown scenario %q; see `gateway-chaos list`", name)
			}
			todo = append(todo, s)
		}
	}
	if f.gatewayBin != "" {
		abs, err := filepath.Abs(f.gatewayBin)
		if err != nil {
			return err
		}
		f.gatewayBin = abs
	}
	out := cmd.ErrOrStderr()
	assets, err := testenv.Assets(out)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Each gateway keeps its own JSON log for the report; the libraries'
	// process-wide loggers would only repeat it on the terminal.
	app.RouteLibraryLogs(slog.New(slog.DiscardHandler))

	started := time.Now()
	fmt.Fprintf(out, "starting redis-server, kube-apiserver + etcd, and Toxiproxy…\n")
	e, err := testenv.Start(ctx, testenv.Options{AssetsDir: assets})
	if err != nil {
		return err
	}
	defer e.Stop()
	fmt.Fprintf(out, "environment up in %s\n", time.Since(started).Round(100*time.Millisecond))

	p := newProgress(out)
	var results []*run.Result
	for i, s := range todo {
		if ctx.Err() != nil {
			break
		}
		p.start(s.Name, i+1, len(todo))
		res := run.Run(ctx, e, s, run.Options{
			GatewayBin: f.gatewayBin, Gateways: f.gateways,
			Timeout:    f.duration + 3*time.Minute,
			Logf:       p.logf,
			OnEvent:    p.event,
			OnRecord:   p.record,
			HistoryDir: f.reportDir, KeepHistory: f.keep,
		})
		p.done(res)
		results = append(results, res)
	}
	mode := "scenarios"
	if f.random {
		mode = "random"
	}
	gw := "in-process"
	if f.gatewayBin != "" {
		gw = f.gatewayBin
	}
	rep := report.Build(results, f.seed, mode, gw, started)
	if err := report.Write(f.reportDir, rep); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "\n%s\nreport: %s\n", summary(rep), filepath.Join(f.reportDir, "report.md"))
	if !rep.Passed || len(results) < len(todo) {
		if f.random {
			fmt.Fprintf(cmd.OutOrStdout(), "reproduce with: gateway-chaos run --random --seed %d --duration %s\n", f.seed, f.duration)
		}
		return exitCode(1)
	}
	return nil
}

func summary(r *report.Report) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SCENARIO\tVERDICT\t503/504 P50\tP99\tRECOVERY\tREQUESTS\tVIOLATIONS")
	for _, s := range r.Scenarios {
		v := "pass"
		if !s.Passed {
			v = "FAIL"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", s.Name, v, report.FormatMs(s.FailFastP50),
			report.FormatMs(s.FailFastP99), report.FormatMs(s.Recovery), s.Requests, len(s.Result.Violations))
	}
	_ = w.Flush()
	return b.String()
}
