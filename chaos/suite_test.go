package chaos_test

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alertgate/gateway/chaos/run"
	"github.com/alertgate/gateway/chaos/scenario"
	"github.com/alertgate/gateway/internal/app"
	"github.com/alertgate/gateway/testenv"
)

// The chaos suite: every registered scenario against a real redis-server,
// a real kube-apiserver + etcd and Toxiproxy, the same scenario definitions
// the gateway-chaos CLI runs.

var (
	e          *testenv.Env
	gatewayBin = flag.String("gateway-bin", "", "run gateways from this binary instead of in-process")
	// A failed run writes its history (JSON and a picture) here.
	historyDir = cmp.Or(os.Getenv("CHAOS_HISTORY_DIR"), filepath.Join(os.TempDir(), "alertgate-histories"))
)

func TestMain(m *testing.M) {
	flag.Parse()
	app.RouteLibraryLogs(slog.New(slog.DiscardHandler))
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "chaos suite: KUBEBUILDER_ASSETS is not set; run `make test` (it builds the control plane with hack/test-binaries.sh)")
		os.Exit(1)
	}
	// The Alertmanager scenarios need a real one; without it they would
	// fail one by one, so say it once.
	if os.Getenv("ALERTMANAGER_BIN") == "" {
		fmt.Fprintln(os.Stderr, "chaos suite: ALERTMANAGER_BIN is not set; run `make test` (it builds Alertmanager with hack/alertmanager.sh) or export ALERTMANAGER_BIN=$(./hack/alertmanager.sh)")
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var err error
	e, err = testenv.Start(ctx, testenv.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos suite: start environment:", err)
		os.Exit(1)
	}
	code := m.Run()
	e.Stop()
	testenv.RemoveGatewayBinary()
	os.Exit(code)
}

func TestScenarios(t *testing.T) {
	for _, s := range scenario.All() {
		t.Run(s.Name, func(t *testing.T) {
			res := run.Run(context.Background(), e, s, run.Options{GatewayBin: *gatewayBin, Logf: t.Logf, HistoryDir: historyDir})
			t.Logf("%s: %s; statuses %v; fail-fast p50 %s p99 %s (n=%d); leaks %+v",
				s.Name, res.Duration.Round(time.Millisecond), res.Statuses, res.FailFast.P50, res.FailFast.P99, res.FailFast.Count, res.Leaks)
			for _, r := range res.Recoveries {
				t.Logf("recovery after %s: %s", r.Fault, r.After.Round(time.Millisecond))
				if !r.OK || r.After > 30*time.Second {
					t.Errorf("recovery after %s took %s, over 30s", r.Fault, r.After)
				}
			}
			for _, f := range res.HistoryFiles {
				t.Logf("history: %s", f)
			}
			for _, v := range res.Violations {
				t.Error(v)
			}
			if t.Failed() {
				for _, r := range res.Records {
					t.Logf("request %d %s +%s: %d in %s %.200s", r.Seq, r.RequestID, r.Start.Sub(res.Start).Round(time.Millisecond), r.Status, r.Duration.Round(time.Millisecond), r.Err)
				}
				for _, l := range res.Logs {
					t.Logf("log %.400s", l)
				}
				for _, ev := range res.Timeline {
					t.Logf("event +%s %s %s", ev.At.Sub(res.Start).Round(time.Millisecond), ev.Kind, ev.Detail)
				}
			}
		})
	}
}
