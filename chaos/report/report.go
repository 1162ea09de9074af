// Package report turns run results into report.json (machine-readable),
// report.md (a table to read in ten seconds) and one timeline picture per
// scenario.
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/alertgate/gateway/chaos/check"
	"github.com/alertgate/gateway/chaos/model"
	"github.com/alertgate/gateway/chaos/run"
)

// Report is the content of report.json.
type Report struct {
	Generated time.Time     `json:"generated"`
	Machine   Machine       `json:"machine"`
	Seed      int64         `json:"seed"`
	Mode      string        `json:"mode"`
	Passed    bool          `json:"passed"`
	Duration  time.Duration `json:"duration"`
	Scenarios []Scenario    `json:"scenarios"`
}

// Machine describes where the run happened.
type Machine struct {
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"goVersion"`
	Gateway   string `json:"gateway"` // "in-process" or the binary
}

// Scenario is one scenario's entry: the verdict and the figures, plus the
// full result.
type Scenario struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Passed      bool            `json:"passed"`
	Invariants  []run.Invariant `json:"invariants"`
	FailFastP50 time.Duration   `json:"failFastP50"`
	FailFastP99 time.Duration   `json:"failFastP99"`
	// Recovery is the longest time from a heal to the first 201.
	Recovery time.Duration  `json:"recovery"`
	Requests int            `json:"requests"`
	Statuses map[string]int `json:"statuses"`
	Leaks    run.Leaks      `json:"leaks"`
	Faults   []FaultWindow  `json:"faults"`
	Picture  string         `json:"picture,omitempty"`
	Result   *run.Result    `json:"result"`
}

// FaultWindow is a fault's time on the timeline, relative to the scenario
// start.
type FaultWindow struct {
	Fault string        `json:"fault"`
	From  time.Duration `json:"from"`
	To    time.Duration `json:"to"`
}

// Build makes the report of results.
func Build(results []*run.Result, seed int64, mode, gateway string, started time.Time) *Report {
	r := &Report{
		Generated: time.Now().UTC(), Seed: seed, Mode: mode, Passed: true, Duration: time.Since(started),
		Machine: Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Gateway: gateway},
	}
	for _, res := range results {
		s := Scenario{
			Name: res.Scenario, Description: res.Description, Passed: res.Passed, Invariants: res.Invariants,
			FailFastP50: res.FailFast.P50, FailFastP99: res.FailFast.P99, Requests: len(res.Records),
			Statuses: map[string]int{}, Leaks: res.Leaks, Faults: Windows(res), Result: res,
		}
		for code, n := range res.Statuses {
			s.Statuses[statusName(code)] += n
		}
		for _, rc := range res.Recoveries {
			s.Recovery = max(s.Recovery, rc.After)
		}
		r.Passed = r.Passed && res.Passed
		r.Scenarios = append(r.Scenarios, s)
	}
	return r
}

func statusName(code int) string {
	if code == 0 {
		return "no answer"
	}
	return fmt.Sprint(code)
}

// Windows pairs each injected fault with its heal.
func Windows(res *run.Result) []FaultWindow {
	open := map[string]time.Duration{}
	var out []FaultWindow
	end := res.Duration
	for _, ev := range res.Timeline {
		at := ev.At.Sub(res.Start)
		switch ev.Kind {
		case "inject":
			open[ev.Detail] = at
		case "heal":
			if from, ok := open[ev.Detail]; ok {
				out = append(out, FaultWindow{Fault: ev.Detail, From: from, To: at})
				delete(open, ev.Detail)
			}
		}
	}
	for f, from := range open {
		out = append(out, FaultWindow{Fault: f, From: from, To: end})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].From < out[j].From })
	return out
}

// Write writes report.json, report.md and the pictures into dir.
func Write(dir string, r *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		name := "timeline-" + s.Name + ".png"
		if err := Plot(s.Result, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("report: plot %s: %w", s.Name, err)
		}
		s.Picture = name
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), b, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(Markdown(r)), 0o644)
}

// Markdown renders the report as a page.
func Markdown(r *Report) string {
	var b strings.Builder
	verdict := "PASSED — every invariant held"
	if !r.Passed {
		verdict = "FAILED — see the violations below"
	}
	fmt.Fprintf(&b, "# Chaos report: %s\n\n", verdict)
	fmt.Fprintf(&b, "Mode %s, seed %d: %d scenario(s) in %s on %d CPUs (%s, gateway %s), %s.\n\n",
		r.Mode, r.Seed, len(r.Scenarios), r.Duration.Round(time.Second), r.Machine.CPUs, r.Machine.GoVersion, r.Machine.Gateway,
		r.Generated.Format(time.RFC3339))
	b.WriteString("| scenario | verdict | I1 orphan | I2 loss | I3 duplicate | I4 consistent | leaks | model M1–M6 | 503/504 p50 / p99 | recovery | requests |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Scenarios {
		inv := map[string]run.Invariant{}
		for _, i := range s.Invariants {
			inv[i.Name] = i
		}
		mark := func(name string) string {
			switch i, ok := inv[name]; {
			case ok && !i.Passed:
				return fmt.Sprintf("✗ %d", i.Violations)
			case !ok || !i.Checked:
				return "–"
			}
			return "✓"
		}
		v := "pass"
		if !s.Passed {
			v = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %d |\n", s.Name, v,
			mark(check.NoOrphan), mark(check.NoLoss), mark(check.NoDuplicate), mark(check.Consistent), mark(check.NoLeak),
			modelMark(inv), FormatMs(s.FailFastP50), FormatMs(s.FailFastP99), FormatMs(s.Recovery), s.Requests)
	}
	b.WriteString("\nI1: every committed record in Redis names an existing episode of its fingerprint, and no reservation outlives its lease. " +
		"I2: every signal answered 2xx has its episode (unless a controller deleted it). I3: at most one open episode per fingerprint and per signal. " +
		"I4: every committed record names an open episode (checked where the timeline says the state has settled). " +
		"Leaks: goroutines, Redis clients and TCP connections back to the baseline after the gateways stop. " +
		"Model: the model checker held the run's history (every request, fault, controller action and change of a resource) against the episode model: " +
		"M1 at most one open episode per fingerprint at every instant, M2 every acknowledged occurrence in an episode that existed, " +
		"M3 no occurrence absorbed by an ended episode once the gateway could know, M4 resolution follows the members, M5 Redis names only open episodes, " +
		"M6 every alert given to a real Alertmanager went out in a delivery the gateway acknowledged (where one sent). " +
		"–: not checked in this scenario. " +
		"Recovery: longest time from a fault's removal to the first 201.\n")
	for _, s := range r.Scenarios {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n", s.Name, s.Description)
		if s.Picture != "" {
			fmt.Fprintf(&b, "![timeline of %s](%s)\n\n", s.Name, s.Picture)
		}
		codes := make([]string, 0, len(s.Statuses))
		for c := range s.Statuses {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		var parts []string
		for _, c := range codes {
			parts = append(parts, fmt.Sprintf("%s×%d", c, s.Statuses[c]))
		}
		fmt.Fprintf(&b, "Answers: %s. Faults:", strings.Join(parts, ", "))
		for _, f := range s.Faults {
			fmt.Fprintf(&b, " %s (%.1fs–%.1fs);", f.Fault, f.From.Seconds(), f.To.Seconds())
		}
		b.WriteString("\n")
		if st := s.Result.Model.Stats; st.Requests > 0 {
			fmt.Fprintf(&b, "History: %d requests (%d acknowledged, %d firing occurrences, %d resolutions), %d episodes opened (%d ended), %d controller actions, %d faults.\n",
				st.Requests, st.Acknowledged, st.Occurrences, st.Resolutions, st.Episodes, st.Ended, st.Actions, st.Faults)
		}
		for _, f := range s.Result.HistoryFiles {
			fmt.Fprintf(&b, "- history: %s\n", filepath.Base(f))
		}
		for _, rc := range s.Result.Recoveries {
			fmt.Fprintf(&b, "- recovery after %s: %s\n", rc.Fault, FormatMs(rc.After))
		}
		for _, v := range s.Result.Violations {
			fmt.Fprintf(&b, "- **violation** %s\n", v)
		}
	}
	return b.String()
}

// modelMark is the model checker's verdict: ✓, the broken rules with
// their counts, or – when it did not run.
func modelMark(inv map[string]run.Invariant) string {
	var broken []string
	checked := false
	for _, name := range model.Invariants {
		i, ok := inv[name]
		if !ok {
			continue
		}
		checked = checked || i.Checked
		if !i.Passed {
			broken = append(broken, fmt.Sprintf("✗ %s %d", strings.Fields(name)[0], i.Violations))
		}
	}
	switch {
	case len(broken) > 0:
		return strings.Join(broken, ", ")
	case !checked:
		return "–"
	}
	return "✓"
}

// FormatMs formats a measured duration for a person: milliseconds with the
// precision that matters at their size, "–" when nothing was measured.
func FormatMs(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	case d < 10*time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return d.Round(100 * time.Millisecond).String()
}
