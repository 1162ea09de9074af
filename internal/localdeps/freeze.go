package localdeps

import (
	"bytes"
	"fmt"
	"os"
	"syscall"
	"time"
)

// freezeTimeout bounds the wait for every thread of a process to stop.
const freezeTimeout = time.Second

// Freeze stops process pid with SIGSTOP and returns once every one of its
// threads is stopped. kill returns before they are: a request sent at once
// could still be read and answered, or begun and then be in flight across
// the pause instead of waiting in the listen backlog. If the threads do not
// all stop within a second, Freeze continues the process and fails.
func Freeze(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return err
	}
	if err := waitStopped(pid, freezeTimeout); err != nil {
		_ = syscall.Kill(pid, syscall.SIGCONT)
		return err
	}
	return nil
}

// Thaw continues a process stopped by Freeze (SIGCONT).
func Thaw(pid int) error { return syscall.Kill(pid, syscall.SIGCONT) }

// waitStopped waits until every thread of pid is stopped (state T in
// /proc/PID/task/*/stat), for at most d.
func waitStopped(pid int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		stopped, err := allStopped(pid)
		if err != nil || stopped {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d not stopped after %s", pid, d)
		}
		time.Sleep(time.Millisecond)
	}
}

func allStopped(pid int) (bool, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false, err
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false, err
		}
		// The state follows the command name, which is in parentheses
		// and may itself hold spaces or parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return false, fmt.Errorf("unexpected /proc stat %q", b)
		}
		if s := b[i+2]; s != 'T' && s != 't' {
			return false, nil
		}
	}
	return true, nil
}
