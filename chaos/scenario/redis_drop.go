package scenario

import (
	"time"

	"github.com/alertgate/gateway/internal/pipeline"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/fault"
	"github.com/alertgate/gateway/testenv/load"
)

func init() {
	Register(&Scenario{
		Name:        "redis-drop-mid-request",
		Description: "Redis connection dropped right after the reservation, then right before the commit: 503 within 5 s, no partial state, one logged failure",
		Order:       2,
		InProcess:   true,
		Configure:   shortLease,
		Run: func(t *T) {
			t.Phase("drop Redis right after the reservation")
			sig := t.Signals("KubePodOOMKilled", 1)
			f := fault.Down{Dep: testenv.Redis}
			t.InjectAt(pipeline.AfterReserve, f)
			r := t.Send(0, sig)
			t.ClearHooks()
			t.ExpectStatuses([]load.Record{r}, "Redis dropped after reservation", 503)
			t.ExpectFast([]load.Record{r}, "Redis dropped after reservation", 5*time.Second)
			t.ExpectRetryAfter([]load.Record{r})
			t.ExpectFailureLogged(r, "redis", "renew", "")
			st := t.Check(true)
			t.Expect(len(st.ResourcesFor(sig[0])) == 0, "a resource was created although Redis was lost before the create")
			healed := t.Heal(f)
			t.MeasureRecovery(f.String(), healed)
			t.WaitLease()
			r = t.Retry(0, sig)
			t.ExpectStatuses([]load.Record{r}, "retry", 201)

			t.Phase("drop Redis right before the commit")
			sig = t.Signals("KubePodOOMKilled", 1)
			t.InjectAt(pipeline.BeforeCommit, f)
			r = t.Send(0, sig)
			t.ClearHooks()
			t.ExpectStatuses([]load.Record{r}, "Redis dropped before commit", 503)
			t.ExpectFast([]load.Record{r}, "Redis dropped before commit", 5*time.Second)
			t.ExpectFailureLogged(r, "redis", "settle", "")
			// The resource exists but its record could not be written: the
			// answer is 503, the reservation expires, and the retry finds
			// the resource by its name.
			st = t.Check(false)
			t.Expect(len(st.ResourcesFor(sig[0])) == 1, "want the created resource to exist once, found %d", len(st.ResourcesFor(sig[0])))
			t.Heal(f)
			r = t.Retry(0, sig)
			t.ExpectStatuses([]load.Record{r}, "retry after the lost commit", 202)
			t.Check(true)
		},
	})
}
