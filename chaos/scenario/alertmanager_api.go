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
		Name: "alertmanager-api-outage",
		Description: "an HA pair of real Alertmanagers (not clustered, one per replica) delivers a group holding an invalid alert, then keeps delivering while the Kubernetes API is unreachable: " +
			"the invalid alert is rejected alone, 503 or 202 (attached through the cache) during the outage, then every alert given exists once, a member of its episode, resolved when resolved",
		Order:    21,
		Gateways: 2,
		// The invalid alert has more labels than this; every other has fewer.
		Configure: func(c *config.Config) { c.Request.MaxLabels = invalidMaxLabels },
		Run: func(t *T) {
			am := startAlertmanager(t, load.AlertmanagerOptions{Instances: 2, Name: "am-api", Timing: amQuick})

			t.Phase("one group: two valid alerts and an invalid one")
			a := t.Signals("AMApiCrashLooping", 2)
			// Pushed first, so that every notification of the group carrying
			// the valid ones carries it too: a gateway that refuses the whole
			// batch stores nothing of them. (The group's first notification
			// may carry it alone, if the valid ones came after group_wait:
			// 400, nothing in it being usable.)
			pushInvalid(t, am, a[0])
			fire(t, am, a)
			expectGiven(t, am, time.Time{}, 10*time.Second)
			expectRejectedAlone(t, am)

			// 202 answers a delivery whose every alert is a known member of
			// an episode the gateway's cache holds: that needs Redis only.
			t.Phase("Kubernetes API unreachable while the pair delivers")
			api := fault.Down{Dep: testenv.Kubernetes}
			t.Inject(api)
			down := time.Now()
			// A new group; a new member of a known episode and a resolution,
			// both written to the API before the answer.
			fire(t, am, t.Signals("AMApiNotReady", 2))
			fire(t, am, []load.Signal{withContainer(a[0], "sidecar")})
			resolve(t, am, a[1:2])
			time.Sleep(2500 * time.Millisecond)
			healed := t.Heal(api)
			t.Note("%d deliveries refused while the API was unreachable", expectOutage(t, am, down, healed, "API unreachable", 503, 202))
			t.MeasureRecovery(api.String(), healed)
			expectGiven(t, am, healed, 15*time.Second)

			t.Phase("every valid alert resolved; the invalid one still fires in Alertmanager")
			resolve(t, am, stillFiring(am))
			expectGiven(t, am, time.Time{}, 10*time.Second)
			stopAlertmanager(t, am)
			t.Check(true)
		},
	})
}
