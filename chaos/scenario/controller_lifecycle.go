package scenario

import (
	"time"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/internal/pipeline"
	"github.com/alertgate/gateway/testenv/history"
	"github.com/alertgate/gateway/testenv/load"
)

// Phases of controller-lifecycle, by name: a broken gateway is shown
// caught by the one that exposes it.
const (
	PhaseKeepsFiring   = "an alert that keeps firing past the window"
	PhaseTerminal      = "each terminal phase ends its episode"
	PhaseDeleted       = "deleted, and deleted but held by a finalizer"
	PhaseStatus        = "the controller writes its own status"
	PhaseRefire        = "resolve, then re-fire inside and after the window"
	PhaseRacingMembers = "a warning and a critical of one pod, first seen at once by two replicas"
	PhaseMembers       = "escalation, and one alert per container"
	PhaseEvents        = "Events: a rising count, a series, no timestamps"
	PhaseLateCommit    = "a commit delayed past its lease while the controller ends the episode"
)

func init() {
	const window, lease = time.Second, 3 * time.Second
	// seen is how long the gateways get to learn of a controller's act:
	// their watch delivers it in milliseconds (the model allows 2 s).
	const seen = time.Second
	acted := func(t *T, a history.Action) {
		t.Expect(a.Err == "", "controller %s %s %s: %s", a.Kind, a.Phase, a.Resource, a.Err)
	}
	one := func(t *T, i int, s load.Signal) load.Record { return t.Send(i, []load.Signal{s}) }
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
		Phases: []Phase{
			{PhaseKeepsFiring, func(t *T) {
				sig := t.Signals("KubePodCrashLooping", 1)[0]
				ep := t.ExpectOpened(one(t, 0, sig), "its first notification")
				time.Sleep(window + 500*time.Millisecond)
				t.ExpectAttached(one(t, 1, sig), ep, "its repeat after the window")
			}},
			{PhaseTerminal, func(t *T) {
				sig := t.Signals("KubePodCrashLooping", 1)[0]
				ep := t.ExpectOpened(one(t, 0, sig), "its first notification")
				for i, p := range v1alpha1.DefaultTerminalPhases {
					acted(t, t.Controller().Finish(t.Ctx, ep, p))
					time.Sleep(seen)
					ep = t.ExpectOpened(one(t, i, sig), "the repeat after "+string(p), ep)
				}
			}},
			{PhaseDeleted, func(t *T) {
				ctl := t.Controller()
				sig := t.Signals("KubePodCrashLooping", 1)[0]
				ep := t.ExpectOpened(one(t, 0, sig), "its first notification")
				acted(t, ctl.Delete(t.Ctx, ep))
				time.Sleep(seen)
				ep = t.ExpectOpened(one(t, 0, sig), "the repeat after the deletion")
				hold, del := ctl.HoldAndDelete(t.Ctx, ep)
				acted(t, hold)
				acted(t, del)
				time.Sleep(seen)
				t.ExpectOpened(one(t, 1, sig), "the repeat while its episode terminates", ep)
				acted(t, ctl.Release(t.Ctx, ep))
			}},
			{PhaseStatus, func(t *T) {
				sig := t.Signals("KubePodCrashLooping", 1)[0]
				ep := t.ExpectOpened(one(t, 0, sig), "its first notification")
				acted(t, t.Controller().WriteStatus(t.Ctx, ep))
				for i := range 3 {
					t.ExpectAttached(one(t, i, sig), ep, "a repeat")
				}
				time.Sleep(time.Second) // three status projections
				t.expectCondition(ep)
			}},
			{PhaseRefire, func(t *T) {
				alert := t.Signals("KubePodNotReady", 1)[0]
				ep := t.ExpectOpened(one(t, 0, alert), "the alert")
				t.ExpectStatuses([]load.Record{one(t, 1, alert.Resolve(time.Now()))}, "its resolution", 200)
				t.ExpectResolved(ep, true, "resolved")
				alert = alert.Refire(time.Now())
				t.ExpectAttached(one(t, 0, alert), ep, "its re-fire inside the window")
				t.ExpectResolved(ep, false, "fires again")
				t.ExpectStatuses([]load.Record{one(t, 1, alert.Resolve(time.Now()))}, "its second resolution", 200)
				time.Sleep(window + 500*time.Millisecond)
				alert = alert.Refire(time.Now())
				t.ExpectAttached(one(t, 0, alert), ep, "its re-fire after the window")
				t.ExpectResolved(ep, false, "fires again after the window")
			}},
			{PhaseRacingMembers, func(t *T) {
				w := t.Signals("KubePodOOMKilled", 1)[0]
				c := w
				w.Severity, w.StartsAt = "warning", time.Now().Add(-7*time.Minute)
				c.Severity, c.StartsAt = "critical", time.Now().Add(-time.Minute)
				// The first to reach the create is held, so that the other
				// reaches it too while the episode is not yet opened: both
				// open, and the API server's AlreadyExists must arbitrate.
				t.DelayAt(pipeline.BeforeCreate, 500*time.Millisecond)
				rs := t.Concurrently(2, func(i int) load.Record { return one(t, i, []load.Signal{w, c}[i]) })
				t.ClearHooks()
				t.ExpectStatuses(rs, "racing first notifications", 201, 202)
				t.Expect(EpisodeOf(rs[0], 0) == EpisodeOf(rs[1], 0) && EpisodeOf(rs[0], 0) != "",
					"the warning and the critical of one pod went to %q and %q, want one episode", EpisodeOf(rs[0], 0), EpisodeOf(rs[1], 0))
			}},
			{PhaseMembers, func(t *T) {
				warn := t.Signals("KubeContainerWaiting", 1)[0]
				warn.Severity, warn.StartsAt = "warning", time.Now().Add(-10*time.Minute)
				ep := t.ExpectOpened(one(t, 0, warn), "the warning")
				crit := warn
				crit.Severity, crit.StartsAt = "critical", time.Now().Add(-time.Minute)
				t.ExpectAttached(one(t, 1, crit), ep, "the critical")
				side := warn
				side.Container, side.StartsAt = "sidecar", time.Now().Add(-30*time.Second)
				t.ExpectAttached(one(t, 0, side), ep, "the sidecar's alert")
				t.ExpectStatuses([]load.Record{one(t, 1, warn.Resolve(time.Now())), one(t, 0, crit.Resolve(time.Now()))}, "two of three resolved", 200)
				t.ExpectResolved(ep, false, "the sidecar still fires")
				t.ExpectStatuses([]load.Record{one(t, 1, side.Resolve(time.Now()))}, "the third resolved", 200)
				t.ExpectResolved(ep, true, "all three resolved")
			}},
			{PhaseEvents, func(t *T) {
				for i, shape := range []load.EventShape{load.ShapeCount, load.ShapeSeries, load.ShapeBare} {
					ev := t.Signals("BackOff", 1)[0]
					ev.StartsAt = time.Now().Add(-time.Minute).Truncate(time.Second)
					ev.Event = &load.Event{Shape: shape, Count: 1, LastSeen: ev.StartsAt}
					if shape == load.ShapeBare {
						ev.StartsAt, ev.Event.LastSeen = time.Time{}, time.Time{}
					}
					first := t.ExpectOpened(one(t, i, ev), "the first "+string(shape)+" event")
					for n := int32(2); n <= 3; n++ {
						next := ev
						next.Event = &load.Event{Shape: shape, Count: n, LastSeen: time.Now().Truncate(time.Second)}
						if shape == load.ShapeBare {
							next.Event.Count, next.Event.LastSeen = 0, time.Time{}
						}
						t.ExpectAttached(one(t, i+int(n), next), first, "the same "+string(shape)+" event again")
					}
				}
			}},
			{PhaseLateCommit, func(t *T) {
				// As a commit stuck behind a GC pause: the answer is out,
				// the commit comes after the lease and after the episode
				// ended, and must write nothing.
				late := t.Signals("KubeJobFailed", 1)[0]
				t.DelayAt(pipeline.BeforeCommit, lease+time.Second)
				ep := t.ExpectOpened(one(t, 0, late), "the alert")
				acted(t, t.Controller().Finish(t.Ctx, ep, "Completed"))
				time.Sleep(lease + time.Second + seen)
				t.ClearHooks()
				t.Check(true)
			}},
		},
	})
}
