package scenario

import (
	"time"

	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/fault"
	"github.com/alertgate/gateway/testenv/load"
)

func init() {
	Register(&Scenario{
		Name: "clock-skew",
		Description: "two replicas whose clocks are 20 minutes slow and 4 minutes fast take the same alerts and Events without timestamps, " +
			"before and after Redis loses its data: one episode each, never a 4xx",
		Order:     13,
		Gateways:  2,
		InProcess: true,
		Replica: func(i int, o *testenv.GatewayOptions) {
			o.Clock = testenv.SkewedClock([]time.Duration{-20 * time.Minute, 4 * time.Minute}[i%2])
		},
		Run: func(t *T) {
			alerts := t.Signals("KubePodCrashLooping", 3)
			bare := t.Signals("BackOff", 1)[0]
			bare.StartsAt = time.Time{}
			bare.Event = &load.Event{Shape: load.ShapeBare}
			all := append(alerts, bare)
			round := func(what string) {
				for i, s := range all {
					for r := range 2 {
						t.ExpectStatuses([]load.Record{t.Retry(i+r, []load.Signal{s})}, what, 201, 202)
					}
				}
			}
			t.Phase("each alert to both replicas")
			round("skewed replicas")
			st := t.Check(true)
			t.ExpectOneResourceEach(st, all, "with skewed clocks")

			t.Phase("Redis loses its data")
			f := fault.RedisKill{}
			t.Inject(f)
			t.Heal(f)
			round("after the data loss")
			st = t.Check(true)
			t.ExpectOneResourceEach(st, all, "after the data loss")
		},
	})
}
