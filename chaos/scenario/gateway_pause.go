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
	const lease = 3 * time.Second
	Register(&Scenario{
		Name: "gateway-pause",
		Description: "two gateway processes; one is paused (SIGSTOP) for longer than the lease while its requests hold reservations and wait on a slow API server, " +
			"while the other takes the same alerts and a controller ends and deletes episodes; after SIGCONT nothing is opened twice, " +
			"nothing attaches to an ended episode, and Redis names only open episodes",
		Order:     12,
		Gateways:  2,
		Processes: true,
		Configure: func(c *config.Config) {
			c.Dedup.Lease = config.D(lease)
			c.Request.Deadline = config.D(2 * time.Second)
			c.StatusInterval = config.D(300 * time.Millisecond)
		},
		Run: func(t *T) {
			ctl := t.Controller()
			sigs := t.Signals("KubePodCrashLooping", 4)

			t.Phase("two of four alerts open their episodes")
			var opened []string
			for _, s := range sigs[:2] {
				opened = append(opened, t.ExpectOpened(t.Send(1, []load.Signal{s}), "opening"))
			}

			t.Phase("replica 0 paused with its requests in flight")
			slow := fault.Latency{Dep: testenv.Kubernetes, Latency: 800 * time.Millisecond}
			t.Inject(slow)
			var wg sync.WaitGroup
			paused := make([]load.Record, len(sigs))
			for i, s := range sigs {
				t.Go(&wg, func() { paused[i] = t.Send(0, []load.Signal{s}) })
			}
			time.Sleep(300 * time.Millisecond) // reserved, waiting on the API
			pause := fault.Pause{Gateway: t.Gateways[0]}
			t.Inject(pause)
			t.Heal(slow)
			if a := ctl.Finish(t.Ctx, opened[0], "Completed"); a.Err != "" {
				t.Expect(false, "controller: %s", a.Err)
			}
			time.Sleep(lease + 500*time.Millisecond) // replica 0's leases ran out
			var taken []load.Record
			for _, s := range sigs {
				taken = append(taken, t.Retry(1, []load.Signal{s}))
			}
			t.ExpectStatuses(taken, "the other replica, during the pause", 201, 202)
			if a := ctl.Delete(t.Ctx, EpisodeOf(taken[1], 0)); a.Err != "" {
				t.Expect(false, "controller: %s", a.Err)
			}
			time.Sleep(time.Second)
			t.Heal(pause)
			wg.Wait()
			for _, r := range paused {
				t.Expect(r.Status < 400 || r.Status >= 500, "request %d to the paused replica answered %d", r.Seq, r.Status)
			}

			t.Phase("after the pause, both replicas")
			time.Sleep(time.Second)
			for i, s := range sigs {
				t.ExpectStatuses([]load.Record{t.Retry(i, []load.Signal{s})}, "after the pause", 201, 202)
			}
			t.Check(true)
		},
	})
}
