package scenario

import (
	"time"

	"github.com/alertgate/gateway/testenv/fault"
	"github.com/alertgate/gateway/testenv/load"
)

func init() {
	Register(&Scenario{
		Name: "alertmanager-redis-outage",
		Description: "an HA pair of real Alertmanagers (not clustered, one per replica) keeps delivering while redis-server is killed and restarts empty: " +
			"503 while it is gone, then every alert given exists once, a member of its episode, resolved when resolved",
		Order:    20,
		Gateways: 2,
		Run: func(t *T) {
			am := startAlertmanager(t, load.AlertmanagerOptions{Instances: 2, Name: "am-redis", Timing: amQuick})

			t.Phase("the pair delivers one group: two pods, one with two containers")
			a := t.Signals("AMRedisCrashLooping", 2)
			fire(t, am, []load.Signal{a[0], a[1], withContainer(a[0], "sidecar")})
			expectGiven(t, am, time.Time{}, 10*time.Second)

			t.Phase("redis-server killed while the pair delivers")
			kill := fault.RedisKill{}
			t.Inject(kill)
			down := time.Now()
			// A new group, a new alert in a known group, and a resolution:
			// each group's notification then needs Redis to be stored.
			fire(t, am, t.Signals("AMRedisNotReady", 2))
			fire(t, am, t.Signals(a[0].Name, 1))
			resolve(t, am, a[1:2])
			time.Sleep(2500 * time.Millisecond)
			healed := t.Heal(kill)
			n := expectOutage(t, am, down, healed, "redis-server killed", 503)
			t.Note("%d deliveries refused while redis-server was gone", n)
			t.MeasureRecovery(kill.String(), healed)
			expectGiven(t, am, healed, 15*time.Second)

			t.Phase("every alert resolved")
			resolve(t, am, stillFiring(am))
			expectGiven(t, am, time.Time{}, 10*time.Second)
			stopAlertmanager(t, am)
			t.Check(true)
		},
	})
}
