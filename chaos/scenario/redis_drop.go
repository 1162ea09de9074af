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
		Description: "Redis connection dropped right after the reservation, then right before the commit: the episode is opened all the same (the API server is the truth), 201 within 5 s, the unsettled reservation logged and expired with its lease, the retry attached",
		Order:       2,
		InProcess:   true,
		Configure:   shortLease,
		Run: func(t *T) {
			// Redis is the fast path: with the reservation written, the
			// episode is opened in the API server whatever happens to Redis
			// next, and the record is rebuilt from the API server's state.
			f := fault.Down{Dep: testenv.Redis}
			for _, at := range []pipeline.HookPoint{pipeline.AfterReserve, pipeline.BeforeCommit} {
				t.Phase("drop Redis at " + string(at))
				sig := t.Signals("KubePodOOMKilled", 1)
				t.InjectAt(at, f)
				r := t.Send(0, sig)
				t.ExpectStatuses([]load.Record{r}, "Redis dropped at "+string(at), 201)
				t.ExpectFast([]load.Record{r}, "Redis dropped at "+string(at), 5*time.Second)
				t.ExpectSettleFailureLogged(r)
				t.ClearHooks()
				st := t.Check(false)
				t.Expect(len(st.ResourcesFor(sig[0])) == 1, "want the episode opened once, found %d", len(st.ResourcesFor(sig[0])))
				healed := t.Heal(f)
				t.MeasureRecovery(f.String(), healed)
				r = t.Retry(0, sig)
				t.ExpectStatuses([]load.Record{r}, "the same alert again", 202)
				t.WaitLease()
				t.Check(true)
			}
		},
	})
}
