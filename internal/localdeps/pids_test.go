package localdeps

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// ReapOrphans kills, by PID, the recorded children of an owner that is
// gone, and only those whose PID still runs the recorded executable.
func TestReapOrphansKillsOnlyRecordedExecutables(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	start := func() *exec.Cmd {
		c := exec.Command("sleep", "60")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
		return c
	}
	orphan, reused := start(), start()
	// An owner that has exited: a finished child's PID.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	owner := gone.Process.Pid
	writePIDs(owner, map[int]string{
		orphan.Process.Pid: exeOf(orphan.Process.Pid),
		// The PID now runs something else than what was recorded.
		reused.Process.Pid: "/usr/bin/redis-server",
	})
	// This process's own children are never reaped.
	track(reused.Process.Pid)
	t.Cleanup(func() { untrack(reused.Process.Pid) })

	if n := ReapOrphans(); n != 1 {
		t.Fatalf("killed %d, want 1", n)
	}
	done := make(chan error, 1)
	go func() { done <- orphan.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the orphan still runs")
	}
	if err := syscall.Kill(reused.Process.Pid, 0); err != nil {
		t.Fatalf("a process running another executable was killed: %v", err)
	}
	if len(readPIDs(owner)) != 0 {
		t.Fatal("the gone owner's record was kept")
	}
}
