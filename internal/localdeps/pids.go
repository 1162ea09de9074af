package localdeps

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// A test process killed hard leaves its redis-server, etcd and
// kube-apiserver children running. Every child is recorded, with its
// executable, in a file named after the owning process; ReapOrphans kills
// the children of owners that are gone, by PID, after checking that the PID
// still runs the recorded executable.

var pidMu sync.Mutex

func pidDir() string {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "alertgate", "pids")
}

func pidFile(owner int) string { return filepath.Join(pidDir(), strconv.Itoa(owner)) }

func exeOf(pid int) string {
	p, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(p, " (deleted)")
}

func readPIDs(owner int) map[int]string {
	out := map[int]string{}
	b, err := os.ReadFile(pidFile(owner))
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		pid, exe, ok := strings.Cut(line, " ")
		if n, err := strconv.Atoi(pid); ok && err == nil {
			out[n] = exe
		}
	}
	return out
}

func writePIDs(owner int, m map[int]string) {
	if len(m) == 0 {
		_ = os.Remove(pidFile(owner))
		return
	}
	var b strings.Builder
	for pid, exe := range m {
		fmt.Fprintf(&b, "%d %s\n", pid, exe)
	}
	_ = os.MkdirAll(pidDir(), 0o755)
	_ = os.WriteFile(pidFile(owner), []byte(b.String()), 0o644)
}

// track records a child process of this process.
func track(pid int) {
	pidMu.Lock()
	defer pidMu.Unlock()
	m := readPIDs(os.Getpid())
	m[pid] = exeOf(pid)
	writePIDs(os.Getpid(), m)
}

// untrack forgets a child that has stopped.
func untrack(pid int) {
	pidMu.Lock()
	defer pidMu.Unlock()
	m := readPIDs(os.Getpid())
	delete(m, pid)
	writePIDs(os.Getpid(), m)
}

// ReapOrphans kills the recorded children of processes that no longer run
// and returns how many it killed.
func ReapOrphans() int {
	pidMu.Lock()
	defer pidMu.Unlock()
	entries, err := os.ReadDir(pidDir())
	if err != nil {
		return 0
	}
	killed := 0
	for _, e := range entries {
		owner, err := strconv.Atoi(e.Name())
		if err != nil || owner == os.Getpid() || syscall.Kill(owner, 0) == nil {
			continue
		}
		for pid, exe := range readPIDs(owner) {
			if exe != "" && exeOf(pid) == exe {
				if syscall.Kill(pid, syscall.SIGKILL) == nil {
					killed++
				}
			}
		}
		_ = os.Remove(pidFile(owner))
	}
	return killed
}
