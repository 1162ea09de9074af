package scenario

import (
	"time"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/internal/pipeline"
	"github.com/alertgate/gateway/testenv/history"
	"github.com/alertgate/gateway/testenv/load"
)

func init() {
	const window, lease = time.Second, 3 * time.Second
	// seen is how long the gateways get to learn of a controller's act:
	// their watch delivers it in milliseconds (the model allows 2 s).
	const seen = time.Second
	Register(&Scenario{
		Name: "controller-lifecycle",
		Description: "a remediation controller ends episodes every way (each terminal phase, a deletion, a deletion held by a finalizer) and writes its own status, " +
			"while alerts keep firing past the window, resolve and re-fire, escalate and fire per container, and Events repeat: " +
			"every occurrence attaches to the open episode or opens exactly one; a commit delayed past its lease writes nothing",
		Order:     11,
		Gateways:  2,
		InProcess: true,
		Configure: func(c *config.Config) {
			c.Dedup.Window = config.D(window)
			c.Dedup.Lease = config.D(lease)
			c.Request.Deadline = config.D(2 * time.Second)
			c.StatusInterval = config.D(300 * time.Millisecond)
		},
		Run: func(t *T) {
			ctl := t.Controller()
			acted := func(a history.Action) {
				t.Expect(a.Err == "", "controller %s %s %s: %s", a.Kind, a.Phase, a.Resource, a.Err)
			}
			one := func(i int, s load.Signal) load.Record { return t.Send(i, []load.Signal{s}) }
			sig := t.Signals("KubePodCrashLooping", 1)[0]

			t.Phase("an alert that keeps firing past the window")
			ep := t.ExpectOpened(one(0, sig), "its first notification")
			time.Sleep(window + 500*time.Millisecond)
			t.ExpectAttached(one(1, sig), ep, "its repeat after the window")

			t.Phase("each terminal phase ends its episode")
			for i, p := range v1alpha1.DefaultTerminalPhases {
				acted(ctl.Finish(t.Ctx, ep, p))
				time.Sleep(seen)
				ep = t.ExpectOpened(one(i, sig), "the repeat after "+string(p), ep)
			}

			t.Phase("deleted, and deleted but held by a finalizer")
			acted(ctl.Delete(t.Ctx, ep))
			time.Sleep(seen)
			ep = t.ExpectOpened(one(0, sig), "the repeat after the deletion")
			hold, del := ctl.HoldAndDelete(t.Ctx, ep)
			acted(hold)
			acted(del)
			time.Sleep(seen)
			held := ep
			ep = t.ExpectOpened(one(1, sig), "the repeat while its episode terminates", held)
			acted(ctl.Release(t.Ctx, held))

			t.Phase("the controller writes its own status")
			acted(ctl.WriteStatus(t.Ctx, ep))
			for i := range 3 {
				t.ExpectAttached(one(i, sig), ep, "a repeat")
			}
			time.Sleep(time.Second) // three status projections
			t.expectCondition(ep)

			t.Phase("resolve, then re-fire inside and after the window")
			alert := t.Signals("KubePodNotReady", 1)[0]
			e2 := t.ExpectOpened(one(0, alert), "the alert")
			t.ExpectStatuses([]load.Record{one(1, alert.Resolve(time.Now()))}, "its resolution", 200)
			t.ExpectResolved(e2, true, "resolved")
			alert = alert.Refire(time.Now())
			t.ExpectAttached(one(0, alert), e2, "its re-fire inside the window")
			t.ExpectResolved(e2, false, "fires again")
			t.ExpectStatuses([]load.Record{one(1, alert.Resolve(time.Now()))}, "its second resolution", 200)
			time.Sleep(window + 500*time.Millisecond)
			alert = alert.Refire(time.Now())
			t.ExpectAttached(one(0, alert), e2, "its re-fire after the window")
			t.ExpectResolved(e2, false, "fires again after the window")

			t.Phase("a warning and a critical of one pod, first seen at once by two replicas")
			pair := t.Signals("KubePodOOMKilled", 1)[0]
			pairW, pairC := pair, pair
			pairW.Severity, pairW.StartsAt = "warning", time.Now().Add(-7*time.Minute)
			pairC.Severity, pairC.StartsAt = "critical", time.Now().Add(-time.Minute)
			rs := t.Concurrently(2, func(i int) load.Record { return one(i, []load.Signal{pairW, pairC}[i]) })
			t.ExpectStatuses(rs, "racing first notifications", 201, 202)
			t.Expect(EpisodeOf(rs[0], 0) == EpisodeOf(rs[1], 0) && EpisodeOf(rs[0], 0) != "",
				"the warning and the critical of one pod went to %q and %q, want one episode", EpisodeOf(rs[0], 0), EpisodeOf(rs[1], 0))

			t.Phase("escalation, and one alert per container")
			warn := t.Signals("KubeContainerWaiting", 1)[0]
			warn.Severity, warn.StartsAt = "warning", time.Now().Add(-10*time.Minute)
			e3 := t.ExpectOpened(one(0, warn), "the warning")
			crit := warn
			crit.Severity, crit.StartsAt = "critical", time.Now().Add(-time.Minute)
			t.ExpectAttached(one(1, crit), e3, "the critical")
			side := warn
			side.Container, side.StartsAt = "sidecar", time.Now().Add(-30*time.Second)
			t.ExpectAttached(one(0, side), e3, "the sidecar's alert")
			t.ExpectStatuses([]load.Record{one(1, warn.Resolve(time.Now())), one(0, crit.Resolve(time.Now()))}, "two of three resolved", 200)
			t.ExpectResolved(e3, false, "the sidecar still fires")
			t.ExpectStatuses([]load.Record{one(1, side.Resolve(time.Now()))}, "the third resolved", 200)
			t.ExpectResolved(e3, true, "all three resolved")

			t.Phase("Events: a rising count, a series, no timestamps")
			for i, shape := range []load.EventShape{load.ShapeCount, load.ShapeSeries, load.ShapeBare} {
				ev := t.Signals("BackOff", 1)[0]
				ev.StartsAt = time.Now().Add(-time.Minute).Truncate(time.Second)
				ev.Event = &load.Event{Shape: shape, Count: 1, LastSeen: ev.StartsAt}
				if shape == load.ShapeBare {
					ev.StartsAt, ev.Event.LastSeen = time.Time{}, time.Time{}
				}
				first := t.ExpectOpened(one(i, ev), "the first "+string(shape)+" event")
				for n := int32(2); n <= 3; n++ {
					next := ev
					next.Event = &load.Event{Shape: shape, Count: n, LastSeen: time.Now().Truncate(time.Second)}
					if shape == load.ShapeBare {
						next.Event.Count, next.Event.LastSeen = 0, time.Time{}
					}
					t.ExpectAttached(one(i+int(n), next), first, "the same "+string(shape)+" event again")
				}
			}

			t.Phase("a commit delayed past its lease while the controller ends the episode")
			// As a commit stuck behind a GC pause: the answer is out, the
			// commit comes after the lease and after the episode ended.
			late := t.Signals("KubeJobFailed", 1)[0]
			t.DelayAt(pipeline.BeforeCommit, lease+time.Second)
			e4 := t.ExpectOpened(one(0, late), "the alert")
			acted(ctl.Finish(t.Ctx, e4, "Completed"))
			time.Sleep(lease + time.Second + seen)
			t.ClearHooks()
			t.Check(true)
		},
	})
}
