package scenario

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/fault"
	"github.com/alertgate/gateway/testenv/load"
)

func init() {
	Register(&Scenario{
		Name: "alertmanager-overload",
		Description: "a real Alertmanager with group_interval 1m flushes 10 groups at once into a gateway with --max-in-flight 2 while the API is slow: " +
			"the refusals are 503s it retries, and every alert given is stored within 15 s",
		Order:     22,
		Configure: func(c *config.Config) { c.Request.MaxInFlight = 2 },
		Run: func(t *T) {
			// A refusal Alertmanager does not retry (a 4xx) is sent again
			// only at the group's next flush, a minute later: past the 15 s
			// the check allows, while its backoff (0.5 s × 1.5ⁿ) retries a
			// 503 well within it. For the same reason nothing is resolved
			// here, and group_wait is 1 s: an alert that reached its group
			// after the first flush would wait for the next (with 200 ms
			// one did, once, on a loaded machine).
			am := startAlertmanager(t, load.AlertmanagerOptions{Name: "am-overload",
				Timing: load.Timing{GroupWait: time.Second, GroupInterval: time.Minute, RepeatInterval: time.Hour}})

			t.Phase("10 groups flushed at once, 2 requests in flight, the API slow")
			// Each create waits for the slow API, so the concurrent
			// deliveries of one flush overlap for certain.
			slow := fault.Latency{Dep: testenv.Kubernetes, Latency: 300 * time.Millisecond, Jitter: 50 * time.Millisecond}
			t.Inject(slow)
			var sigs []load.Signal
			for g := range 10 {
				sigs = append(sigs, t.Signals(fmt.Sprintf("AMOverload%02d", g), 2)...)
			}
			fire(t, am, sigs)
			// Healed while the check watches the alerts being stored.
			var wg sync.WaitGroup
			t.Go(&wg, func() {
				time.Sleep(3 * time.Second)
				t.Heal(slow)
			})
			expectGiven(t, am, time.Time{}, 15*time.Second)
			wg.Wait()

			refused, deliveries := 0, 0
			for _, r := range t.History() {
				if r.Sender != am.Proxy(0).Name() {
					continue
				}
				deliveries++
				if strings.Contains(r.Err, "problems/overloaded") {
					refused++
				}
			}
			t.Note("%d deliveries, %d refused as overloaded", deliveries, refused)
			t.Expect(refused > 0, "no delivery was refused as overloaded: the scenario did not exceed --max-in-flight")
			stopAlertmanager(t, am)
			t.Check(true)
		},
	})
}
