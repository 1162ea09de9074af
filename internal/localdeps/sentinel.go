package localdeps

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// SentinelGroup is a Redis master, one replica and three Sentinels on
// loopback, the smallest topology that fails over on its own.
type SentinelGroup struct {
	// MasterName is what the Sentinels monitor.
	MasterName string
	Master     *RedisServer
	Replica    *RedisServer
	sentinels  []*exec.Cmd
	addrs      []string
	dir        string
}

// StartSentinelGroup starts the group; a master is declared down after one
// second without answers.
func StartSentinelGroup(ctx context.Context, masterName string) (*SentinelGroup, error) {
	g := &SentinelGroup{MasterName: masterName}
	ok := false
	defer func() {
		if !ok {
			g.Stop()
		}
	}()
	var err error
	if g.Master, err = StartRedis(ctx, RedisOptions{}); err != nil {
		return nil, err
	}
	mport := g.Master.port
	if g.Replica, err = StartRedis(ctx, RedisOptions{Args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(mport)}}); err != nil {
		return nil, err
	}
	if g.dir, err = os.MkdirTemp("", "alertgate-sentinel-"); err != nil {
		return nil, err
	}
	for i := 0; i < 3; i++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		conf := filepath.Join(g.dir, fmt.Sprintf("sentinel-%d.conf", i))
		// Sentinel rewrites its configuration file: it must be writable.
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %d 2\nsentinel down-after-milliseconds %s 1000\n"+
			"sentinel failover-timeout %s 5000\nsentinel parallel-syncs %s 1\n", port, g.dir, masterName, mport, masterName, masterName, masterName)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			return nil, err
		}
		cmd := exec.Command("redis-server", conf, "--sentinel")
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("localdeps: start sentinel: %w", err)
		}
		track(cmd.Process.Pid)
		g.sentinels = append(g.sentinels, cmd)
		g.addrs = append(g.addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, a := range g.addrs {
		for ping(a) != nil {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("localdeps: sentinel %s did not answer PING", a)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ok = true
	return g, nil
}

// SentinelAddrs are the Sentinels' addresses.
func (g *SentinelGroup) SentinelAddrs() []string { return append([]string(nil), g.addrs...) }

// Stop stops every process and removes the configuration files.
func (g *SentinelGroup) Stop() {
	for _, c := range g.sentinels {
		_ = c.Process.Signal(syscall.SIGKILL)
		_ = c.Wait()
		untrack(c.Process.Pid)
	}
	g.sentinels = nil
	for _, r := range []*RedisServer{g.Master, g.Replica} {
		if r != nil {
			r.Kill()
		}
	}
	if g.dir != "" {
		_ = os.RemoveAll(g.dir)
	}
}
