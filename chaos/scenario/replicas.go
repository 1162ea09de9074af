package scenario

import (
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/chaos/check"
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
		Run: func(t *T) {
			t.Phase("20 concurrent identical signals across both replicas")
			sig := t.Signals("KubePodCrashLooping", 1)
			rs := t.concurrently(20, func(i int) load.Record { return t.Send(i, sig) })
			t.ExpectStatuses(rs, "concurrent identical", 201, 202)
			created := 0
			for _, r := range rs {
				if r.Status == 201 {
					created++
				}
			}
			t.Expect(created == 1, "%d requests answered 201 for one signal, want exactly 1", created)
			st := t.Check(true)
			t.Expect(len(st.ResourcesFor(sig[0])) == 1, "want 1 resource, found %d", len(st.ResourcesFor(sig[0])))
			t.Expect(len(st.Committed()) == 1 && st.Committed()[0].Count == 20, "want occurrence count 20 in Redis, got %+v", st.Committed())
			t.expectStatusCount(sig[0], 20)

			for _, f := range []fault.Fault{
				fault.LimitData{Dep: testenv.Redis, Bytes: 2048, Toxicity: 1},
				fault.Down{Dep: testenv.Kubernetes},
				fault.Down{Dep: testenv.Redis},
			} {
				t.Phase("concurrent senders retrying through " + f.String())
				sigs := t.Signals("KubePodCrashLooping", 5)
				t.Inject(f)
				var wg sync.WaitGroup
				t.Go(&wg, func() {
					time.Sleep(time.Second)
					t.Heal(f)
				})
				// Four senders per signal, two per replica, each retrying
				// like Alertmanager until stored.
				t.concurrently(4*len(sigs), func(i int) load.Record { return t.Retry(i, sigs[i/4:i/4+1]) })
				wg.Wait()
				st := t.Check(true)
				t.ExpectOneResourceEach(st, sigs, "through "+f.String())
			}
		},
	})
}

// concurrently runs n sends at once and returns their records.
func (t *T) concurrently(n int, send func(i int) load.Record) []load.Record {
	out := make([]load.Record, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = send(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// expectStatusCount waits (up to two status intervals and a little) for the
// resource status to show the occurrence count projected from Redis.
func (t *T) expectStatusCount(sig load.Signal, want int64) {
	deadline := time.Now().Add(25 * time.Second)
	var got int64
	for time.Now().Before(deadline) {
		var list v1alpha1.RemediationRequestList
		if err := t.Env.Kube.List(t.Ctx, &list, client.InNamespace(t.Namespace)); err == nil {
			st := &check.State{Resources: list.Items}
			for _, r := range st.ResourcesFor(sig) {
				if d := r.Status.Deduplication; d != nil {
					got = d.OccurrenceCount
				}
			}
		}
		if got == want {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Expect(false, "status.deduplication.occurrenceCount of %s is %d, want %d", sig.Key(), got, want)
}
