// Package localdeps runs the gateway's dependencies as local processes on
// loopback: a real redis-server and a real control plane (envtest:
// kube-apiserver + etcd) with the RemediationRequest CRD installed.
// testenv (the tests' environment) breaks them; `gateway --dev` uses them
// when no Redis or cluster is configured.
package localdeps

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// RedisOptions configure a RedisServer.
type RedisOptions struct {
	// Bin is the redis-server executable. Default: "redis-server" on PATH.
	Bin string
	// Port to listen on, on 127.0.0.1. Default: a free port.
	Port int
	// MaxMemory is redis' maxmemory, e.g. "64mb". Default: "0" (none).
	MaxMemory string
	// Policy is redis' maxmemory-policy. Default: "noeviction", so a full
	// Redis refuses writes (OOM) rather than silently drop fingerprints.
	Policy string
	// Log receives the server's output. Default: discarded.
	Log *os.File
	// Args are extra redis-server arguments (e.g. --replicaof).
	Args []string
}

// RedisServer is a redis-server process that keeps nothing on disk: a
// restart is a fresh, empty server (data loss by design).
type RedisServer struct {
	opts RedisOptions
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis starts a redis-server and waits until it answers PING.
func StartRedis(ctx context.Context, opts RedisOptions) (*RedisServer, error) {
	if opts.Bin == "" {
		opts.Bin = "redis-server"
	}
	if opts.MaxMemory == "" {
		opts.MaxMemory = "0"
	}
	if opts.Policy == "" {
		opts.Policy = "noeviction"
	}
	port := opts.Port
	if port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	s := &RedisServer{opts: opts, port: port}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Addr is host:port of the server.
func (s *RedisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// PID of the running process, 0 if none.
func (s *RedisServer) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Start starts the process (again, after Kill or Stop) on the same port,
// empty.
func (s *RedisServer) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("localdeps: redis-server already running")
	}
	args := []string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--protected-mode", "no",
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--maxmemory", s.opts.MaxMemory, "--maxmemory-policy", s.opts.Policy,
		"--dir", os.TempDir(), "--dbfilename", fmt.Sprintf("alertgate-%d.rdb", s.port),
	}
	args = append(args, s.opts.Args...)
	cmd := exec.Command(s.opts.Bin, args...)
	if s.opts.Log != nil {
		cmd.Stdout, cmd.Stderr = s.opts.Log, s.opts.Log
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("localdeps: start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	track(cmd.Process.Pid)
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ping(s.Addr()); err == nil {
			return nil
		}
		select {
		case <-done:
			s.cmd = nil
			untrack(cmd.Process.Pid)
			return fmt.Errorf("localdeps: redis-server on port %d exited at start", s.port)
		case <-ctx.Done():
			s.stopLocked(syscall.SIGKILL)
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stopLocked(syscall.SIGKILL)
			return fmt.Errorf("localdeps: redis-server on port %d did not answer PING within 10s", s.port)
		}
	}
}

// Kill stops the server with SIGKILL: no shutdown, no save.
func (s *RedisServer) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked(syscall.SIGKILL)
}

// Stop stops the server with SIGTERM.
func (s *RedisServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked(syscall.SIGTERM)
}

// Running reports whether the process is up.
func (s *RedisServer) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

func (s *RedisServer) stopLocked(sig syscall.Signal) {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	untrack(s.cmd.Process.Pid)
	s.cmd = nil
}

// ping sends PING in the inline protocol and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected PING reply %q", line)
	}
	return nil
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
