package scenario

import (
	"context"
	"fmt"
	"math"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/internal/localdeps"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/fault"
	"github.com/alertgate/gateway/testenv/load"
)

const sentinelMaster = "alertgate"

func init() {
	Register(&Scenario{
		Name: "sentinel-failover",
		Description: "Redis behind Sentinel (master, replica, 3 sentinels): the master is killed with SIGKILL mid-traffic; " +
			"the gateways follow the promoted replica within 30 s, no acknowledged signal is lost and none is created twice",
		Order:    10,
		Gateways: 2,
		Setup: func(t *T) (Prepared, error) {
			g, err := localdeps.StartSentinelGroup(t.Ctx, sentinelMaster)
			if err != nil {
				return Prepared{}, err
			}
			t.Defer(g.Stop)
			// The checks follow the master too.
			fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: sentinelMaster, SentinelAddrs: g.SentinelAddrs(),
				Protocol: 2, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
			t.Defer(func() { _ = fc.Close() })
			return Prepared{
				Configure: func(c *config.Config) {
					c.Redis.Addr = ""
					c.Redis.SentinelMaster = sentinelMaster
					c.Redis.SentinelAddrs = g.SentinelAddrs()
				},
				Redis: fc,
				Run:   func(t *T) { sentinelFailover(t, g) },
			}, nil
		},
	})
}

// sentinelFailover kills the master of g mid-traffic.
func sentinelFailover(t *T, g *localdeps.SentinelGroup) {
	t.Phase("20 alerts through Sentinel, both replicas")
	first := t.Signals("KubePodCrashLooping", 20)
	for i, s := range first {
		t.ExpectStatuses([]load.Record{t.Send(i, []load.Signal{s})}, "healthy", 201)
	}
	t.Check(true)

	t.Phase("master killed; senders keep retrying")
	f := masterKill{g}
	t.Inject(f)
	killed := time.Now()
	during := t.Signals("KubePodCrashLooping", 10)
	done := make(chan []load.Record)
	go func() {
		done <- t.Concurrently(len(during), func(i int) load.Record {
			return t.RetryBackoff(t.Ctx, i, during[i:i+1], math.MaxInt, time.Now().Add(40*time.Second))
		})
	}()
	promoted := make(chan time.Duration, 1)
	go func() {
		for time.Since(killed) < 40*time.Second {
			if addr, err := currentMaster(t.Ctx, g); err == nil && addr == g.Replica.Addr() {
				promoted <- time.Since(killed)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		promoted <- -1
	}()
	t.MeasureRecovery(f.String(), killed)
	t.Note("the Sentinels promoted the replica %s after the kill", (<-promoted).Round(time.Millisecond))
	for _, r := range <-done {
		t.ExpectStatuses([]load.Record{r}, "sent during the failover, retried", 201, 202)
	}
	if addr, err := currentMaster(t.Ctx, g); err != nil || addr != g.Replica.Addr() {
		t.Expect(false, "the Sentinels name %s as master (%v), want the promoted replica %s", addr, err, g.Replica.Addr())
	}

	t.Phase("replay every signal")
	// Acknowledged fingerprints the replica had not yet received are
	// gone from Redis; the deterministic names find their resources.
	for i, s := range append(first, during...) {
		t.ExpectStatuses([]load.Record{t.Send(i, []load.Signal{s})}, "replay after failover", 202)
	}
	st := t.Check(true)
	t.ExpectOneResourceEach(st, append(first, during...), "after the failover")
}

// masterKill kills the Sentinel group's master with SIGKILL; it does not
// come back (the Sentinels promote the replica).
type masterKill struct{ g *localdeps.SentinelGroup }

func (masterKill) String() string             { return "sentinel-master-kill" }
func (masterKill) Target() testenv.Dependency { return testenv.Redis }

func (f masterKill) Inject(context.Context, *testenv.Env) (fault.Undo, error) {
	f.g.Master.Kill()
	return func(context.Context) error { return nil }, nil
}

// currentMaster asks a Sentinel for the master's address.
func currentMaster(ctx context.Context, g *localdeps.SentinelGroup) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: g.SentinelAddrs()[0], Protocol: 2})
	defer sc.Close()
	v, err := sc.GetMasterAddrByName(ctx, sentinelMaster).Result()
	if err != nil {
		return "", err
	}
	if len(v) != 2 {
		return "", fmt.Errorf("unexpected reply %v", v)
	}
	return net.JoinHostPort(v[0], v[1]), nil
}
