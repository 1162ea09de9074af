package scenario

import (
	"time"

	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/fault"
	"github.com/alertgate/gateway/testenv/load"
)

func init() {
	Register(&Scenario{
		Name: "rolling-config",
		Description: "a rolling configuration change: three replicas with --dedup-window 5m, 10m and 1s take the same alerts, whose records expire " +
			"at different times, before and after Redis loses its data: one episode each",
		Order:    14,
		Gateways: 3,
		Replica: func(i int, o *testenv.GatewayOptions) {
			window := []time.Duration{5 * time.Minute, 10 * time.Minute, time.Second}[i%3]
			before := o.Configure
			o.Configure = func(c *config.Config) {
				if before != nil {
					before(c)
				}
				c.Dedup.Window = config.D(window)
			}
		},
		Run: func(t *T) {
			alerts := t.Signals("KubeDeploymentReplicasMismatch", 3)
			// A startsAt on which the 5m and 10m grids of the old design
			// disagree.
			for i := range alerts {
				alerts[i].StartsAt = time.Now().Add(-7 * time.Minute).Truncate(10 * time.Minute).Add(6 * time.Minute)
			}
			round := func(what string) {
				for i, s := range alerts {
					for r := range 3 {
						t.ExpectStatuses([]load.Record{t.Retry(i+r, []load.Signal{s})}, what, 201, 202)
					}
				}
			}
			t.Phase("each alert to every replica")
			round("three windows")
			time.Sleep(1500 * time.Millisecond) // the 1 s replica's records expire
			round("after the shortest window")
			st := t.Check(true)
			t.ExpectOneResourceEach(st, alerts, "with three windows")

			t.Phase("Redis loses its data")
			f := fault.RedisKill{}
			t.Inject(f)
			t.Heal(f)
			round("after the data loss")
			st = t.Check(true)
			t.ExpectOneResourceEach(st, alerts, "after the data loss")
		},
	})
}
