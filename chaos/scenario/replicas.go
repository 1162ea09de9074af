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
		Name:        "two-replicas",
		Description: "two gateways share Redis and the API; concurrent identical signals across both, healthy and under resets, API and Redis outages: exactly one resource per fingerprint",
		Order:       9,
		Gateways:    2,
		// The first phase waits for the status to show the count: a few
		// seconds rather than the shipped 30.
		Configure: func(c *config.Config) { c.StatusInterval = config.D(2 * time.Second) },
		Phases: append([]Phase{{PhaseConcurrentIdentical, func(t *T) {
			sig := t.Signals("KubePodCrashLooping", 1)
			rs := t.Concurrently(20, func(i int) load.Record { return t.Send(i, sig) })
			t.ExpectStatuses(rs, "concurrent identical", 201, 202)
			created := 0
			for _, r := range rs {
				if r.Status == 201 {
					created++
				}
			}
			t.Expect(created == 1, "%d requests answered 201 for one signal, want exactly 1", created)
			st := t.Check(true)
			one := t.Expect(len(st.ResourcesFor(sig[0])) == 1, "want 1 resource, found %d", len(st.ResourcesFor(sig[0])))
			t.Expect(len(st.Committed()) == 1 && st.Committed()[0].Count == 20, "want occurrence count 20 in Redis, got %+v", st.Committed())
			if one {
				// Split across resources, no status could ever show 20.
				t.ExpectStatusCount(sig[0], 20)
			}
		}}}, retrying(
			fault.LimitData{Dep: testenv.Redis, Bytes: 2048, Toxicity: 1},
			fault.Down{Dep: testenv.Kubernetes},
			fault.Down{Dep: testenv.Redis},
		)...),
	})
}

// PhaseConcurrentIdentical is two-replicas' first phase.
const PhaseConcurrentIdentical = "20 concurrent identical signals across both replicas"

// retrying is a phase per fault: concurrent senders retrying through it.
func retrying(faults ...fault.Fault) []Phase {
	var out []Phase
	for _, f := range faults {
		out = append(out, Phase{"concurrent senders retrying through " + f.String(), func(t *T) {
			sigs := t.Signals("KubePodCrashLooping", 5)
			t.Inject(f)
			var wg sync.WaitGroup
			t.Go(&wg, func() {
				time.Sleep(time.Second)
				t.Heal(f)
			})
			// Four senders per signal, two per replica, each retrying
			// like Alertmanager until stored.
			t.Concurrently(4*len(sigs), func(i int) load.Record { return t.Retry(i, sigs[i/4:i/4+1]) })
			wg.Wait()
			st := t.Check(true)
			t.ExpectOneResourceEach(st, sigs, "through "+f.String())
		}})
	}
	return out
}
