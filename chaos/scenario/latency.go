package scenario

import (
	"sync"
	"time"

	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/fault"
	"github.com/alertgate/gateway/testenv/load"
)

func init() {
	Register(&Scenario{
		Name:        "latency-short-deadline",
		Description: "10 s latency on Redis, then on the API, with a 1.5 s request deadline below the dependency timeouts: every request ends by the deadline with 504",
		Order:       5,
		Configure: func(c *config.Config) {
			c.Request.Deadline = config.D(1500 * time.Millisecond)
			c.Redis.Timeout = config.D(5 * time.Second)
			c.Kubernetes.Timeout = config.D(5 * time.Second)
			c.Dedup.Lease = config.D(3 * time.Second)
		},
		Phases: latency(1500*time.Millisecond, 504),
	})
	Register(&Scenario{
		Name:        "latency-default-deadline",
		Description: "10 s latency on Redis, then on the API, with the shipped defaults (15 s deadline, 1 s Redis and 5 s API timeouts): 503 by the dependency timeout, well within the deadline",
		Order:       6,
		Slow:        true,
		// The API timeout (5 s) is the longest wait below the deadline.
		Phases: latency(5*time.Second, 503),
	})
}

// PhaseRedisLatency is the latency scenarios' first phase.
const PhaseRedisLatency = "10 s latency on redis"

// latency is a phase per dependency: it slows it by 10 s and sends
// concurrent requests, which must all end within bound with one of codes.
func latency(bound time.Duration, codes ...int) []Phase {
	var out []Phase
	for _, dep := range testenv.Dependencies {
		out = append(out, Phase{"10 s latency on " + string(dep), func(t *T) {
			f := fault.Latency{Dep: dep, Latency: 10 * time.Second, Jitter: time.Second}
			t.Inject(f)
			sigs := t.Signals("KubeletDown", 4)
			var wg sync.WaitGroup
			rs := make([]load.Record, len(sigs))
			for i, s := range sigs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rs[i] = t.Send(0, []load.Signal{s})
				}()
			}
			wg.Wait()
			t.ExpectStatuses(rs, "latency on "+string(dep), codes...)
			// The slack covers the response's own way back and the 2-core
			// machine's scheduling; a hanging request would take 10 s.
			t.ExpectFast(rs, "latency on "+string(dep), bound+750*time.Millisecond)
			t.ExpectRetryAfter(rs)
			t.Note("latency on %s: statuses %s, slowest %s", dep, statuses(rs), slowest(rs).Round(time.Millisecond))
			t.Check(false)
			healed := t.Heal(f)
			t.MeasureRecovery(f.String(), healed)
			for _, r := range rs {
				t.ExpectStatuses([]load.Record{t.Retry(0, r.Signals)}, "retry", 201, 202)
			}
			t.Check(true)
		}})
	}
	return out
}

func slowest(rs []load.Record) time.Duration {
	var m time.Duration
	for _, r := range rs {
		m = max(m, r.Duration)
	}
	return m
}
