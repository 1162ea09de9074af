// Package procstat reads a process's CPU time and memory from /proc (Linux)
// and follows them over a benchmark run: CPU seconds used during the run
// (utime+stime of /proc/PID/stat), peak resident memory (VmHWM of
// /proc/PID/status, reset at the start of the run) and sampled VmRSS.
package procstat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime; it is 100 on every
// Linux architecture Go supports.
const clockTick = 100

// Sample is a process's counters at one moment.
type Sample struct {
	At time.Time
	// CPU is user + system time since the process started.
	CPU time.Duration
	// RSS is VmRSS, HWM is VmHWM (peak RSS), both in bytes.
	RSS, HWM int64
}

// Read returns the counters of pid.
func Read(pid int) (Sample, error) {
	s := Sample{At: time.Now()}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("procstat: %w", err)
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields that follow start after its last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return s, fmt.Errorf("procstat: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return s, fmt.Errorf("procstat: short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return s, fmt.Errorf("procstat: /proc/%d/stat: %w", pid, err)
	}
	s.CPU = time.Duration(ut+st) * time.Second / clockTick
	st2, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("procstat: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(st2))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "VmRSS:"):
			s.RSS = kB(l)
		case strings.HasPrefix(l, "VmHWM:"):
			s.HWM = kB(l)
		}
	}
	return s, nil
}

func kB(line string) int64 {
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n * 1024
}

// ResetPeak resets VmHWM of pid to its current RSS (writes 5 to
// /proc/PID/clear_refs; needs the right to ptrace pid).
func ResetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// Name returns the command name of pid (comm).
func Name(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Descendants returns the processes below pid (children, grandchildren…)
// by command name, e.g. the kube-apiserver and etcd that a test
// environment started.
func Descendants(pid int) map[int]string {
	parent := map[int]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
	}
	out := map[int]string{}
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out[p] = Name(p)
				break
			}
		}
	}
	return out
}

// Usage is what one process used during a run.
type Usage struct {
	PID  int    `json:"pid"`
	Name string `json:"name"`
	// CPUSeconds is user + system CPU time used during the run.
	CPUSeconds float64 `json:"cpuSeconds"`
	// CPUCores is CPUSeconds over the run's wall time.
	CPUCores float64 `json:"cpuCores"`
	// PeakRSS is VmHWM at the end (reset at the start when allowed,
	// else the peak since the process started); MaxRSS the largest
	// sampled VmRSS; StartRSS and EndRSS the first and last samples.
	PeakRSS   int64      `json:"peakRssBytes"`
	PeakIsRun bool       `json:"peakIsRun"`
	MaxRSS    int64      `json:"maxRssBytes"`
	StartRSS  int64      `json:"startRssBytes"`
	EndRSS    int64      `json:"endRssBytes"`
	RSS       []RSSPoint `json:"rss,omitempty"`
	Err       string     `json:"error,omitempty"`
}

// RSSPoint is one RSS sample, seconds after the start.
type RSSPoint struct {
	T   float64 `json:"t"`
	RSS int64   `json:"rss"`
}

// Watch follows processes from Start to Stop.
type Watch struct {
	pids     []int
	names    map[int]string
	interval time.Duration
	keep     bool

	mu     sync.Mutex
	start  map[int]Sample
	max    map[int]int64
	series map[int][]RSSPoint
	reset  map[int]bool
	began  time.Time
	stop   chan struct{}
	done   chan struct{}
}

// NewWatch follows pids (named by names, else by comm), sampling RSS every
// interval (default 250ms); keep records the samples in the Usage.
func NewWatch(pids []int, names map[int]string, interval time.Duration, keep bool) *Watch {
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	if names == nil {
		names = map[int]string{}
	}
	return &Watch{pids: pids, names: names, interval: interval, keep: keep}
}

// Start resets the peaks and takes the first sample.
func (w *Watch) Start() {
	w.start, w.max, w.series, w.reset = map[int]Sample{}, map[int]int64{}, map[int][]RSSPoint{}, map[int]bool{}
	w.began = time.Now()
	for _, p := range w.pids {
		w.reset[p] = ResetPeak(p) == nil
		if s, err := Read(p); err == nil {
			w.start[p] = s
			w.max[p] = s.RSS
			if w.keep {
				w.series[p] = append(w.series[p], RSSPoint{0, s.RSS})
			}
		}
	}
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go w.loop()
}

func (w *Watch) loop() {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.sample()
		}
	}
}

func (w *Watch) sample() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.pids {
		s, err := Read(p)
		if err != nil {
			continue
		}
		if s.RSS > w.max[p] {
			w.max[p] = s.RSS
		}
		if w.keep {
			w.series[p] = append(w.series[p], RSSPoint{time.Since(w.began).Seconds(), s.RSS})
		}
	}
}

// Stop takes the last sample and returns each process's usage, in the
// order of the pids.
func (w *Watch) Stop() []Usage {
	close(w.stop)
	<-w.done
	w.sample()
	wall := time.Since(w.began).Seconds()
	out := make([]Usage, 0, len(w.pids))
	for _, p := range w.pids {
		u := Usage{PID: p, Name: w.names[p]}
		if u.Name == "" {
			u.Name = Name(p)
		}
		end, err := Read(p)
		st, ok := w.start[p]
		if err != nil || !ok {
			u.Err = fmt.Sprintf("not readable: %v", err)
			out = append(out, u)
			continue
		}
		u.CPUSeconds = (end.CPU - st.CPU).Seconds()
		if wall > 0 {
			u.CPUCores = u.CPUSeconds / wall
		}
		u.PeakRSS, u.PeakIsRun = end.HWM, w.reset[p]
		u.MaxRSS, u.StartRSS, u.EndRSS = w.max[p], st.RSS, end.RSS
		if end.RSS > u.MaxRSS {
			u.MaxRSS = end.RSS
		}
		u.RSS = w.series[p]
		out = append(out, u)
	}
	return out
}

// MiB formats bytes as mebibytes.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// Machine is the CPU time of the whole machine (all cores) from /proc/stat.
type Machine struct {
	At   time.Time
	Busy time.Duration // user, nice, system, irq, softirq, steal
}

// ReadMachine returns the machine's busy CPU time so far.
func ReadMachine() (Machine, error) {
	m := Machine{At: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return m, fmt.Errorf("procstat: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return m, errors.New("procstat: malformed /proc/stat")
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return m, fmt.Errorf("procstat: /proc/stat: %w", err)
		}
		busy += n
	}
	m.Busy = time.Duration(busy) * time.Second / clockTick
	return m, nil
}

// CoresSince returns the cores the machine kept busy on average since m.
func (m Machine) CoresSince() float64 {
	now, err := ReadMachine()
	if err != nil || !now.At.After(m.At) {
		return 0
	}
	return (now.Busy - m.Busy).Seconds() / now.At.Sub(m.At).Seconds()
}
