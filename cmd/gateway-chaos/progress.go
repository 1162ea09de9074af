package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/alertgate/gateway/chaos/run"
	"github.com/alertgate/gateway/chaos/scenario"
	"github.com/alertgate/gateway/testenv/load"
)

// progress shows what is happening: on a terminal, one status line redrawn
// in place (scenario, phase, requests, answers, active faults); otherwise
// plain lines for phases, faults and results.
type progress struct {
	out io.Writer
	tty bool

	mu       sync.Mutex
	name     string
	index    int
	total    int
	phase    string
	sent     int
	statuses map[int]int
	faults   map[string]bool
	last     time.Time
}

func newProgress(out io.Writer) *progress {
	tty := false
	if f, ok := out.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &progress{out: out, tty: tty}
}

func (p *progress) start(name string, i, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.name, p.index, p.total, p.phase, p.sent = name, i, n, "starting", 0
	p.statuses, p.faults = map[int]int{}, map[string]bool{}
	if !p.tty {
		fmt.Fprintf(p.out, "[%d/%d] %s\n", i, n, name)
	}
	p.drawLocked(true)
}

func (p *progress) event(ev scenario.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev.Kind {
	case "phase":
		p.phase = ev.Detail
	case "inject":
		p.faults[ev.Detail] = true
	case "heal":
		delete(p.faults, ev.Detail)
	}
	if !p.tty {
		fmt.Fprintf(p.out, "  %s %-9s %s\n", ev.At.Format("15:04:05.000"), ev.Kind, ev.Detail)
	}
	p.drawLocked(true)
}

func (p *progress) record(r load.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent++
	p.statuses[r.Status]++
	p.drawLocked(false)
}

func (p *progress) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !strings.HasPrefix(msg, "VIOLATION") || p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "  %s\n", msg)
}

func (p *progress) done(res *run.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.out, "\r\033[K")
	}
	v := "pass"
	if !res.Passed {
		v = "FAIL"
	}
	fmt.Fprintf(p.out, "[%d/%d] %-26s %s  %d requests %s, %d violation(s), %s\n", p.index, p.total, res.Scenario, v,
		len(res.Records), tally(res.Statuses), len(res.Violations), res.Duration.Round(100*time.Millisecond))
	if p.tty {
		for _, x := range res.Violations {
			fmt.Fprintf(p.out, "    %s\n", x)
		}
	}
}

// drawLocked redraws the status line, at most ten times a second.
func (p *progress) drawLocked(force bool) {
	if !p.tty || (!force && time.Since(p.last) < 100*time.Millisecond) {
		return
	}
	p.last = time.Now()
	faults := "no fault"
	if len(p.faults) > 0 {
		var fs []string
		for f := range p.faults {
			fs = append(fs, f)
		}
		sort.Strings(fs)
		faults = "FAULT " + strings.Join(fs, ", ")
	}
	line := fmt.Sprintf("[%d/%d] %s · %s · %d requests %s · %s", p.index, p.total, p.name, p.phase, p.sent, tally(p.statuses), faults)
	if w, _, err := term.GetSize(int(os.Stderr.Fd())); err == nil && w > 10 && len(line) > w-1 {
		line = line[:w-2] + "…"
	}
	fmt.Fprintf(p.out, "\r\033[K%s", line)
}

func tally(m map[int]int) string {
	codes := make([]int, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	parts := make([]string, 0, len(codes))
	for _, c := range codes {
		name := fmt.Sprint(c)
		if c == 0 {
			name = "err"
		}
		parts = append(parts, fmt.Sprintf("%s:%d", name, m[c]))
	}
	return "(" + strings.Join(parts, " ") + ")"
}
