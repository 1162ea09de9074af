package scenario

import (
	"github.com/alertgate/gateway/testenv/fault"
)

func init() {
	Register(&Scenario{
		Name:        "redis-restart-data-loss",
		Description: "redis-server killed with SIGKILL and restarted empty: replaying the same signals in the window creates no second resource",
		Order:       8,
		Run: func(t *T) {
			t.Phase("10 alerts, healthy")
			sigs := t.Signals("KubeContainerWaiting", 10)
			t.ExpectStatuses(t.SendEach(0, sigs), "healthy", 201)
			t.Check(true)

			t.Phase("Redis killed")
			f := fault.RedisKill{}
			t.Inject(f)
			during := t.SendEach(0, t.Signals("KubeContainerWaiting", 3))
			t.ExpectStatuses(during, "Redis dead", 503)
			healed := t.Heal(f)
			t.MeasureRecovery(f.String()+" (restarted empty)", healed)

			t.Phase("replay on the empty Redis")
			// The fingerprints are gone; the deterministic names make the
			// API server answer AlreadyExists, so each replay is a duplicate.
			t.ExpectStatuses(t.SendEach(0, sigs), "replay after data loss", 202)
			st := t.Check(true)
			t.ExpectOneResourceEach(st, sigs, "after the replay")
		},
	})
}
