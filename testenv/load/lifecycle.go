package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

// Timing is the Alertmanager route a lifecycle's notifications follow (the
// one StartAlertmanager configures from it), and the gateway's dedup
// window the lifecycle constructors shape their times around.
type Timing struct {
	// Window is the gateway's dedup window. When set, it gives the route's
	// zero durations: GroupWait Window/10, GroupInterval Window/4,
	// RepeatInterval 3·Window/5. The repeat is deliberately not a multiple
	// of the group interval: a repeat due exactly at a flush is sent then
	// or one flush later depending on how long the previous send took.
	Window time.Duration
	// GroupBy are the route's group_by labels. Default: alertname,
	// namespace.
	GroupBy []string
	// GroupWait, GroupInterval and RepeatInterval as in Alertmanager's
	// route; without Window, zero is Alertmanager's default (30s, 5m, 4h).
	GroupWait, GroupInterval, RepeatInterval time.Duration
}

// Route returns t with every field in effect filled in.
func (t Timing) Route() Timing {
	def := func(d *time.Duration, fromWindow, am time.Duration) {
		switch {
		case *d > 0:
		case t.Window > 0:
			*d = fromWindow
		default:
			*d = am
		}
	}
	def(&t.GroupWait, t.Window/10, 30*time.Second)
	def(&t.GroupInterval, t.Window/4, 5*time.Minute)
	def(&t.RepeatInterval, 3*t.Window/5, 4*time.Hour)
	if len(t.GroupBy) == 0 {
		t.GroupBy = defaultGroupBy
	}
	return t
}

// amMaintenance is how often Alertmanager removes empty groups (its
// --dispatch.maintenance-interval default): a group whose alerts all
// resolved lives on until then, and an alert that fires again before it
// joins the old group's flushes without a new group_wait.
const amMaintenance = 30 * time.Second

// Lifecycle is a plan of what alerts fire and resolve, and which Events
// occur, at times relative to Start. Schedule turns it into the
// notifications Alertmanager, routed by Timing, would deliver; Drive makes
// a real Alertmanager deliver them. Build one with NewLifecycle and its
// methods, with the constructors below, or with Mix; it is not safe for
// concurrent use.
type Lifecycle struct {
	Timing Timing
	// Start is the origin of every offset; StartsAt and EndsAt are Start
	// plus an offset, truncated to milliseconds (Prometheus' precision).
	Start time.Time
	// Until is how long the lifecycle lasts: its schedule ends there and
	// alerts still firing then are left firing.
	Until time.Duration
	// Firings, in the order added.
	Firings []Firing
	// Occurrences of Events, in the order added.
	Occurrences []Occurrence
}

// Firing is one firing of an alert, from its start to its resolution.
type Firing struct {
	// Alert is its firing notification: the member's labels and StartsAt.
	Alert Signal
	From  time.Duration
	// To is when it resolves, after From; 0: it still fires at Until.
	To time.Duration
}

// Occurrence is an Event as posted At after Start.
type Occurrence struct {
	At    time.Duration
	Event Signal
}

// NewLifecycle returns an empty lifecycle starting at start.
func NewLifecycle(t Timing, start time.Time) *Lifecycle { return &Lifecycle{Timing: t, Start: start} }

func (l *Lifecycle) at(d time.Duration) time.Time { return l.Start.Add(d).Truncate(time.Millisecond) }

// Fire adds a firing of a's member (its Name, Namespace, Pod, Container,
// Severity; other fields are ignored) from from until to (0: never
// resolved). Until grows to show the notifications of both changes. It
// panics when the firing overlaps or touches another of the member's
// (Alertmanager would merge them into one) or ends before it starts.
func (l *Lifecycle) Fire(a Signal, from, to time.Duration) *Lifecycle {
	if from < 0 || (to != 0 && to <= from) {
		panic(fmt.Sprintf("load: firing of %s from %s to %s", a.Member(), from, to))
	}
	for _, f := range l.Firings {
		if f.Alert.Member() == a.Member() && (f.To == 0 || from <= f.To) && (to == 0 || to >= f.From) {
			panic(fmt.Sprintf("load: firing of %s at %s–%s overlaps its firing at %s–%s", a.Member(), from, to, f.From, f.To))
		}
	}
	a = Signal{Name: a.Name, Namespace: a.Namespace, Pod: a.Pod, Container: a.Container, Severity: a.Severity, StartsAt: l.at(from)}
	l.Firings = append(l.Firings, Firing{Alert: a, From: from, To: to})
	r := l.Timing.Route()
	l.Lasts(from + r.GroupWait)
	if to > 0 {
		l.Lasts(to + r.GroupWait + r.GroupInterval)
	}
	return l
}

// Occur adds every occurrence of the Warning Event e (reason e.Name on
// e.Pod in e.Namespace; e.Event may give the APIVersion) at the given
// offsets, each posted as it happens, in shape: a count rising from 1,
// firstTimestamp or eventTime at the first, lastTimestamp or
// series.lastObservedTime at each. Times are whole seconds, the API's
// precision. One call per Event: a second would start its count again.
func (l *Lifecycle) Occur(e Signal, shape EventShape, at ...time.Duration) *Lifecycle {
	at = append([]time.Duration(nil), at...)
	sort.Slice(at, func(i, j int) bool { return at[i] < at[j] })
	for i, d := range at {
		s := Signal{Name: e.Name, Namespace: e.Namespace, Pod: e.Pod, Event: &Event{Shape: shape}}
		if e.Event != nil {
			s.Event.APIVersion = e.Event.APIVersion
		}
		first, now := l.Start.Add(at[0]).Truncate(time.Second), l.Start.Add(d).Truncate(time.Second)
		switch shape {
		case ShapeCount:
			s.StartsAt, s.Event.Count, s.Event.LastSeen = first, int32(i+1), now
		case ShapeSeries:
			s.StartsAt, s.Event.Count = first, int32(i+1)
			if i > 0 {
				s.Event.LastSeen = now
			}
		}
		l.Occurrences = append(l.Occurrences, Occurrence{At: d, Event: s})
		l.Lasts(d)
	}
	return l
}

// Lasts makes the lifecycle last at least d.
func (l *Lifecycle) Lasts(d time.Duration) *Lifecycle {
	l.Until = max(l.Until, d)
	return l
}

// Merge returns one lifecycle holding all of ls, from the earliest Start,
// with the others' offsets shifted accordingly. Those with firings must
// share one Timing (one Alertmanager route); it panics otherwise.
func Merge(ls ...*Lifecycle) *Lifecycle {
	out := &Lifecycle{}
	timed := false
	for i, l := range ls {
		if i == 0 || l.Start.Before(out.Start) {
			out.Start = l.Start
		}
	}
	for _, l := range ls {
		if len(l.Firings) > 0 {
			if timed && fmt.Sprint(l.Timing.Route()) != fmt.Sprint(out.Timing.Route()) {
				panic("load: Merge: lifecycles with firings have different timings")
			}
			out.Timing, timed = l.Timing, true
		} else if !timed {
			out.Timing = l.Timing
		}
	}
	for _, l := range ls {
		shift := l.Start.Sub(out.Start)
		for _, f := range l.Firings {
			to := f.To
			if to > 0 {
				to += shift
			}
			out.Fire(f.Alert, f.From+shift, to)
		}
		for _, o := range l.Occurrences {
			out.Occurrences = append(out.Occurrences, Occurrence{At: o.At + shift, Event: o.Event})
		}
		out.Lasts(l.Until + shift)
	}
	return out
}

// Last is the state each member is left in: its last firing, resolved if
// it resolved. It is what the lifecycle gives, not what a gateway saw.
func (l *Lifecycle) Last() []Signal {
	last := map[string]Firing{}
	for _, f := range l.Firings {
		if g, ok := last[f.Alert.Member()]; !ok || f.From > g.From {
			last[f.Alert.Member()] = f
		}
	}
	out := make([]Signal, 0, len(last))
	for _, f := range last {
		s := f.Alert
		if f.To > 0 {
			s = s.Resolve(l.at(f.To))
		}
		out = append(out, s)
	}
	sortByMember(out)
	return out
}

// Schedule is a sequence of requests at times relative to Start.
type Schedule struct {
	Start time.Time `json:"start"`
	Steps []Step    `json:"steps"`
}

// Step is one request: the alerts of one group's notification, or one
// Event.
type Step struct {
	At      time.Duration `json:"at"`
	Signals []Signal      `json:"signals"`
}

// Play calls send with each step at Start+At (at once for steps already
// due), in order; a slow send delays the steps after it. It returns
// ctx.Err() if ctx ends first.
func (s Schedule) Play(ctx context.Context, send func(Step)) error {
	for _, st := range s.Steps {
		if err := sleepUntil(ctx, s.Start.Add(st.At)); err != nil {
			return err
		}
		send(st)
	}
	return nil
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// Schedule returns the notifications of the lifecycle up to Until, as an
// Alertmanager with Timing's route delivers them when every delivery
// succeeds: per group, the first flush group_wait after the group appears,
// then one every group_interval; a flush notifies when an alert fired that
// the last notification did not show firing, when an alert resolved since
// (send_resolved), or when repeat_interval has passed (strictly), and the
// notification holds every alert of the group, resolved ones with their
// endsAt, firing ones with endsAt zero; resolved alerts then leave the
// group, and an empty group is removed at Alertmanager's next maintenance
// (every 30 s, counted here from Start; Alertmanager counts from its own
// start). So a resolution followed by a new firing within one flush shows
// no resolved notification, and the new startsAt only at the next repeat:
// what Alertmanager does. Events are posted as they occur. Within a step,
// alerts are ordered by member; steps at the same time by group key, then
// Events.
func (l *Lifecycle) Schedule() Schedule {
	r := l.Timing.Route()
	byGroup := map[string][]Firing{}
	for _, f := range l.Firings {
		k := groupOf(f.Alert, r.GroupBy)
		byGroup[k] = append(byGroup[k], f)
	}
	keys := make([]string, 0, len(byGroup))
	for k := range byGroup {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := Schedule{Start: l.Start}
	for _, k := range keys {
		out.Steps = append(out.Steps, l.simulate(r, byGroup[k])...)
	}
	for _, o := range l.Occurrences {
		if o.At <= l.Until {
			out.Steps = append(out.Steps, Step{At: o.At, Signals: []Signal{o.Event}})
		}
	}
	sort.SliceStable(out.Steps, func(i, j int) bool { return out.Steps[i].At < out.Steps[j].At })
	return out
}

func groupOf(a Signal, by []string) string {
	labels := a.Labels()
	g := map[string]string{}
	for _, k := range by {
		if v, ok := labels[k]; ok {
			g[k] = v
		}
	}
	return groupKey(g)
}

type simAlert struct {
	sig      Signal
	resolved bool
	end      time.Duration
}

type nflogEntry struct {
	firing, resolved map[string]bool
	at               time.Duration
}

// simulate runs one aggregation group of Alertmanager (dispatch.aggrGroup
// with notify.DedupStage) over the group's firings.
func (l *Lifecycle) simulate(r Timing, firings []Firing) []Step {
	type change struct {
		at    time.Duration
		start bool
		f     Firing
	}
	var changes []change
	for _, f := range firings {
		changes = append(changes, change{f.From, true, f})
		if f.To > 0 {
			changes = append(changes, change{f.To, false, f})
		}
	}
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].at < changes[j].at })

	const never = time.Duration(1<<63 - 1)
	var (
		steps  []Step
		alerts = map[string]*simAlert{}
		entry  *nflogEntry
		exists bool
		next   time.Duration // next flush, while the group exists
		gcAt   = never       // its removal, while it is empty
		ci     int
	)
	// Each iteration applies a change, flushes or removes the group; time
	// advances by at least a group interval every two flushes.
	bound := 2*len(changes) + 2*int(l.Until/r.GroupInterval) + 8
	for i := 0; ; i++ {
		if i > bound {
			panic("load: Alertmanager simulation did not end")
		}
		tc, tf, tg := never, never, never
		if ci < len(changes) {
			tc = changes[ci].at
		}
		if exists {
			tf = next
			if len(alerts) == 0 {
				tg = gcAt
			}
		}
		t := min(tc, tf, tg)
		if t == never || t > l.Until {
			break
		}
		switch {
		case t == tc: // a push precedes a flush at the same instant
			c := changes[ci]
			ci++
			m := c.f.Alert.Member()
			if !c.start {
				if a := alerts[m]; a != nil {
					a.resolved, a.end = true, c.at
				}
				continue
			}
			if !exists {
				exists, next = true, t+r.GroupWait
			}
			alerts[m] = &simAlert{sig: c.f.Alert}
			gcAt = never
		case t == tg:
			exists = false
		default:
			firing, resolved := map[string]bool{}, map[string]bool{}
			var sigs []Signal
			for m, a := range alerts {
				if a.resolved && a.end <= t {
					resolved[m] = true
					sigs = append(sigs, a.sig.Resolve(l.at(a.end)))
				} else {
					firing[m] = true
					sigs = append(sigs, a.sig)
				}
			}
			if needsUpdate(entry, firing, resolved, t, r.RepeatInterval) {
				sortByMember(sigs)
				steps = append(steps, Step{At: t, Signals: sigs})
				entry = &nflogEntry{firing: firing, resolved: resolved, at: t}
			}
			for m := range resolved {
				delete(alerts, m)
			}
			if len(alerts) == 0 {
				gcAt = (t/amMaintenance + 1) * amMaintenance
			}
			next = t + r.GroupInterval
		}
	}
	return steps
}

// needsUpdate is notify.DedupStage.needsUpdate with send_resolved.
func needsUpdate(e *nflogEntry, firing, resolved map[string]bool, now, repeat time.Duration) bool {
	if e == nil {
		return len(firing) > 0
	}
	for m := range firing {
		if !e.firing[m] {
			return true
		}
	}
	if len(firing) == 0 {
		return len(e.firing) > 0
	}
	for m := range resolved {
		if !e.resolved[m] {
			return true
		}
	}
	return now-e.at > repeat
}

// Drive pushes the lifecycle's alerts to am as Prometheus would: each
// firing at Start+From, each resolution at Start+To, those due at the same
// instant in one push. Alertmanager then makes the notifications (compare
// Schedule). Events are not Alertmanager's to deliver: send the Event steps
// of Schedule yourself. It returns at the first error or when ctx ends.
func (l *Lifecycle) Drive(ctx context.Context, am *Alertmanager) error {
	type push struct {
		at      time.Duration
		resolve bool
		sig     Signal
	}
	var ps []push
	for _, f := range l.Firings {
		ps = append(ps, push{f.From, false, f.Alert})
		if f.To > 0 {
			ps = append(ps, push{f.To, true, f.Alert.Resolve(l.at(f.To))})
		}
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].at < ps[j].at })
	for i := 0; i < len(ps); {
		j := i
		var batch []Signal
		for ; j < len(ps) && ps[j].at == ps[i].at && ps[j].resolve == ps[i].resolve; j++ {
			batch = append(batch, ps[j].sig)
		}
		if err := sleepUntil(ctx, l.Start.Add(ps[i].at)); err != nil {
			return err
		}
		var err error
		if ps[i].resolve {
			err = am.Resolve(ctx, batch)
		} else {
			err = am.Fire(ctx, batch)
		}
		if err != nil {
			return fmt.Errorf("load: drive at %s: %w", ps[i].at, err)
		}
		i = j
	}
	return nil
}

func startOf(a Signal) time.Time {
	if a.StartsAt.IsZero() {
		return time.Now().Truncate(time.Millisecond)
	}
	return a.StartsAt
}

// The constructors below make the lifecycles the gateway's episode model
// must handle. Each starts at a.StartsAt (zero: now) and takes a's labels.

// KeepsFiring: a fires and never resolves, for d. Alertmanager repeats it
// every repeat interval with the same startsAt: with d past the window,
// the gateway sees occurrences of one firing after its dedup window.
func KeepsFiring(t Timing, a Signal, d time.Duration) *Lifecycle {
	return NewLifecycle(t, startOf(a)).Fire(a, 0, 0).Lasts(d)
}

// Refire: a fires for firing, resolves, and fires again gap later with a
// new startsAt, then fires for firing more. A gap shorter than the window
// re-fires inside it; a gap shorter than the group interval may show no
// resolved notification at all (see Schedule).
func Refire(t Timing, a Signal, firing, gap time.Duration) *Lifecycle {
	return NewLifecycle(t, startOf(a)).Fire(a, 0, firing).Fire(a, firing+gap, 0).Lasts(2*firing + gap)
}

// Escalation: a fires as a warning; after later the critical alert of the
// same pod fires with its own startsAt and the warning resolves, so that
// one notification carries both: one fingerprint, two members. The
// critical keeps firing past a repeat.
func Escalation(t Timing, a Signal, after time.Duration) *Lifecycle {
	r := t.Route()
	warn, crit := a, a
	warn.Severity, crit.Severity = "warning", "critical"
	return NewLifecycle(t, startOf(a)).Fire(warn, 0, after).Fire(crit, after, 0).Lasts(after + r.RepeatInterval + 2*r.GroupInterval)
}

// PerContainer: one alert per container of a's pod, the i-th firing at
// i·step and resolving at (n+i)·step: members of one fingerprint with
// different startsAt that resolve separately, the last leaving the
// fingerprint resolved.
func PerContainer(t Timing, a Signal, containers []string, step time.Duration) *Lifecycle {
	l := NewLifecycle(t, startOf(a))
	n := len(containers)
	for i, c := range containers {
		s := a
		s.Container = c
		l.Fire(s, time.Duration(i)*step, time.Duration(n+i)*step)
	}
	return l
}

// EventSeries: n occurrences, every apart, of the Warning Event reason
// a.Name on a.Pod, in shape (ShapeCount, ShapeSeries, ShapeBare).
func EventSeries(a Signal, shape EventShape, n int, every time.Duration) *Lifecycle {
	l := NewLifecycle(Timing{}, startOf(a))
	at := make([]time.Duration, n)
	for i := range at {
		at[i] = time.Duration(i) * every
	}
	return l.Occur(a, shape, at...)
}

// MixAlertNames and MixReasons are the alertnames and Event reasons Mix
// and the Pool use: kube-prometheus alerts and kubelet/scheduler reasons,
// disjoint so that no alert and Event share a Key.
var (
	MixAlertNames = []string{"KubePodCrashLooping", "KubePodNotReady", "KubeContainerWaiting", "KubeDeploymentReplicasMismatch",
		"KubeStatefulSetReplicasMismatch", "KubeJobFailed", "KubePersistentVolumeFillingUp", "CPUThrottlingHigh", "KubeMemoryOvercommit"}
	MixReasons = []string{"BackOff", "FailedScheduling", "Unhealthy", "FailedMount", "FailedCreatePodSandBox", "OOMKilling"}
)

// maxGroup bounds the alerts of one group at any time, so that each
// notification carries 1–5 alerts.
const maxGroup = 5

// Mix draws, from seed, one lifecycle per pod in namespace, starting at
// random offsets within the first third of d; the whole lasts at least d
// (longer when a late resolution or Event needs it): keeps firing; fires
// and resolves; re-fires inside the window; re-fires after it; escalates
// warning→critical; one alert per container; Events with a rising count,
// with a series, without timestamps. Pods share an alertname (so a group)
// while the group's members stay at most 5. The same seed, arguments and
// start give the same lifecycle. t.Window must be set.
func Mix(seed uint64, t Timing, namespace string, pods []string, start time.Time, d time.Duration) *Lifecycle {
	if t.Window <= 0 {
		panic("load: Mix needs Timing.Window")
	}
	rnd := rand.New(rand.NewPCG(seed, 0x6c6f6164))
	r := t.Route()
	w, gi := t.Window, r.GroupInterval
	between := func(lo, hi time.Duration) time.Duration {
		if hi <= lo {
			return lo.Truncate(time.Millisecond)
		}
		return (lo + time.Duration(rnd.Int64N(int64(hi-lo)))).Truncate(time.Millisecond)
	}
	l := NewLifecycle(t, start).Lasts(d)
	group, used := 0, 0
	name := func(members int) string {
		if used+members > maxGroup {
			group, used = group+1, 0
		}
		used += members
		n := MixAlertNames[group%len(MixAlertNames)]
		if group >= len(MixAlertNames) {
			n = fmt.Sprintf("%s%d", n, group/len(MixAlertNames))
		}
		return n
	}
	shapes := []EventShape{ShapeCount, ShapeSeries, ShapeBare}
	for _, pod := range pods {
		from := between(0, d/3)
		a := Signal{Namespace: namespace, Pod: pod}
		switch k := rnd.IntN(8); k {
		case 0:
			a.Name = name(1)
			l.Fire(a, from, 0)
		case 1:
			a.Name = name(1)
			l.Fire(a, from, from+between(gi, w))
		case 2, 3:
			a.Name = name(1)
			firing, gap := between(gi, w/2), between(w/10, w/2)
			if k == 3 {
				gap = between(w+gi, 2*w)
			}
			l.Fire(a, from, from+firing).Fire(a, from+firing+gap, 0)
		case 4:
			a.Name = name(2)
			warn, crit := a, a
			warn.Severity, crit.Severity = "warning", "critical"
			after := between(gi, w)
			l.Fire(warn, from, from+after).Fire(crit, from+after, 0)
		case 5:
			n := 2 + rnd.IntN(2)
			a.Name = name(n)
			step := between(gi, w/2)
			for i, c := range []string{"app", "sidecar", "init"}[:n] {
				s := a
				s.Container = c
				l.Fire(s, from+time.Duration(i)*step, from+time.Duration(n+i)*step)
			}
		default:
			a.Name = MixReasons[rnd.IntN(len(MixReasons))]
			n, every := 2+rnd.IntN(5), between(w/5, w)
			at := make([]time.Duration, n)
			for i := range at {
				at[i] = from + time.Duration(i)*every
			}
			l.Occur(a, shapes[rnd.IntN(len(shapes))], at...)
		}
	}
	return l
}
