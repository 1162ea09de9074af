package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alertgate/gateway/chaos/report"
	"github.com/alertgate/gateway/chaos/run"
	"github.com/alertgate/gateway/chaos/scenario"
)

// The report is checked against the numbers of a real run, recomputed here
// from its records, not against a snapshot.
func TestReportFromRealRun(t *testing.T) {
	s, _ := scenario.Get("redis-oom")
	started := time.Now()
	res := run.Run(context.Background(), e, s, run.Options{Logf: t.Logf})
	dir := t.TempDir()
	if err := report.Write(dir, report.Build([]*run.Result{res}, 7, "scenarios", "in-process", started)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got report.Report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Scenarios) != 1 || got.Seed != 7 || got.Passed != res.Passed {
		t.Fatalf("report header %+v", got)
	}
	sc := got.Scenarios[0]
	statuses := map[string]int{}
	var fails []time.Duration
	for _, r := range res.Records {
		code := fmt.Sprint(r.Status)
		if r.Status == 0 {
			code = "no answer"
		}
		statuses[code]++
		if r.Status == 503 || r.Status == 504 {
			fails = append(fails, r.Duration)
		}
	}
	if sc.Requests != len(res.Records) || len(sc.Result.Records) != len(res.Records) {
		t.Errorf("requests %d, the run made %d", sc.Requests, len(res.Records))
	}
	if fmt.Sprint(sc.Statuses) != fmt.Sprint(statuses) {
		t.Errorf("statuses %v, the run answered %v", sc.Statuses, statuses)
	}
	if len(fails) == 0 {
		t.Fatal("the OOM scenario produced no 503: nothing to check the fail-fast figures against")
	}
	// Nearest rank, rounded: the k-th smallest with k = round(p·n).
	slices.Sort(fails)
	rank := func(p float64) time.Duration { return fails[max(int(math.Round(p*float64(len(fails))))-1, 0)] }
	if sc.FailFastP50 != rank(0.50) || sc.FailFastP99 != rank(0.99) {
		t.Errorf("fail-fast p50/p99 %s/%s, recomputed %s/%s", sc.FailFastP50, sc.FailFastP99, rank(0.50), rank(0.99))
	}
	var maxRecovery time.Duration
	for _, r := range res.Recoveries {
		maxRecovery = max(maxRecovery, r.After)
	}
	if sc.Recovery != maxRecovery || maxRecovery == 0 {
		t.Errorf("recovery %s, the run measured %s", sc.Recovery, maxRecovery)
	}
	if len(sc.Faults) != 1 || sc.Faults[0].Fault != "redis-oom" || sc.Faults[0].To <= sc.Faults[0].From {
		t.Errorf("fault timeline %+v", sc.Faults)
	}
	png, err := os.ReadFile(filepath.Join(dir, sc.Picture))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("picture %s: %v", sc.Picture, err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !strings.Contains(string(md), "| redis-oom |") || !strings.Contains(string(md), sc.Picture) {
		t.Errorf("report.md lacks the scenario row or its picture:\n%s", md)
	}
}
