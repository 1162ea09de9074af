package load

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// testTiming: group_wait 100ms, group_interval 250ms, repeat 600ms.
var (
	testTiming = Timing{Window: time.Second}
	t0         = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	pod        = Signal{Name: "KubePodCrashLooping", Namespace: "ns", Pod: "api-0", StartsAt: t0}
)

// describe renders a schedule as "at: container/severity/F|R@startsAt-offset ..."
// lines, times in ms from Start.
func describe(s Schedule) string {
	var b strings.Builder
	ms := func(t time.Time) int64 { return t.Sub(s.Start).Milliseconds() }
	for _, st := range s.Steps {
		fmt.Fprintf(&b, "%d:", st.At.Milliseconds())
		for _, sig := range st.Signals {
			switch {
			case sig.IsEvent():
				fmt.Fprintf(&b, " %s#%d", sig.Event.Shape, sig.Event.Count)
			case sig.Resolved:
				fmt.Fprintf(&b, " %s/%s/R@%d-%d", sig.container(), sig.severity(), ms(sig.StartsAt), ms(sig.EndsAt))
			default:
				fmt.Fprintf(&b, " %s/%s/F@%d", sig.container(), sig.severity(), ms(sig.StartsAt))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func expectSchedule(t *testing.T, name string, l *Lifecycle, want string) {
	t.Helper()
	s := l.Schedule()
	if got := describe(s); got != strings.TrimLeft(want, "\n") {
		t.Errorf("%s: schedule\n%s\nwant\n%s", name, got, strings.TrimLeft(want, "\n"))
	}
	if errs := checkStream(steps(s), s.Start, s.Steps); len(errs) > 0 {
		t.Errorf("%s: inconsistent: %s", name, strings.Join(errs, "\n"))
	}
}

func steps(s Schedule) [][]Signal {
	out := make([][]Signal, len(s.Steps))
	for i, st := range s.Steps {
		out[i] = st.Signals
	}
	return out
}

// The constructors' schedules, worked out by hand from Alertmanager's
// rules: flushes at 100 + 250k ms; a repeat when more than 600 ms passed.
func TestLifecycleConstructors(t *testing.T) {
	expectSchedule(t, "keeps firing", KeepsFiring(testTiming, pod, 3*time.Second), `
100: app/critical/F@0
850: app/critical/F@0
1600: app/critical/F@0
2350: app/critical/F@0
`)
	// Resolved at 500, notified at the 600 flush; the new firing at 800
	// joins the empty group, which Alertmanager keeps until its
	// maintenance, so it is notified at the 850 flush.
	expectSchedule(t, "re-fire", Refire(testTiming, pod, 500*time.Millisecond, 300*time.Millisecond), `
100: app/critical/F@0
600: app/critical/R@0-500
850: app/critical/F@800
`)
	// Resolved at 400 and firing again at 500, both between two flushes:
	// no resolved notification, the new startsAt only at the repeat.
	expectSchedule(t, "re-fire within a flush", Refire(testTiming, pod, 400*time.Millisecond, 100*time.Millisecond), `
100: app/critical/F@0
850: app/critical/F@500
`)
	// After the maintenance at 30 s removed the empty group, the new
	// firing makes a new group: group_wait again.
	expectSchedule(t, "re-fire after the window", Refire(testTiming, pod, 500*time.Millisecond, 40*time.Second), `
100: app/critical/F@0
600: app/critical/R@0-500
40600: app/critical/F@40500
`)
	expectSchedule(t, "escalation", Escalation(testTiming, pod, time.Second), `
100: app/warning/F@0
850: app/warning/F@0
1100: app/critical/F@1000 app/warning/R@0-1000
1850: app/critical/F@1000
`)
	expectSchedule(t, "per container", PerContainer(testTiming, pod, []string{"app", "sidecar"}, 400*time.Millisecond), `
100: app/critical/F@0
600: app/critical/F@0 sidecar/critical/F@400
850: app/critical/R@0-800 sidecar/critical/F@400
1350: sidecar/critical/R@400-1200
`)
	expectSchedule(t, "event count", EventSeries(Signal{Name: "BackOff", Namespace: "ns", Pod: "web-0", StartsAt: t0}, ShapeCount, 3, time.Second), `
0: count#1
1000: count#2
2000: count#3
`)
	series := EventSeries(Signal{Name: "BackOff", Namespace: "ns", Pod: "web-0", StartsAt: t0}, ShapeSeries, 2, time.Second).Schedule()
	if e := series.Steps[0].Signals[0].Event; e.Count != 1 || !e.LastSeen.IsZero() {
		t.Errorf("first occurrence of a series: %+v, want count 1 and no series", e)
	}
	if e := series.Steps[1].Signals[0]; e.Event.Count != 2 || !e.Event.LastSeen.Equal(t0.Add(time.Second)) || !e.StartsAt.Equal(t0) {
		t.Errorf("second occurrence of a series: %+v %+v", e, e.Event)
	}

	// Merged lifecycles keep their own times; Last is what each member
	// was left in.
	other := pod
	other.Pod, other.StartsAt = "api-1", t0.Add(200*time.Millisecond)
	m := Merge(Refire(testTiming, pod, 500*time.Millisecond, 300*time.Millisecond), PerContainer(testTiming, other, []string{"app"}, 300*time.Millisecond))
	expectSchedule(t, "merged", m, `
100: app/critical/F@0
350: app/critical/F@0 app/critical/F@200
600: app/critical/R@0-500 app/critical/R@200-500
850: app/critical/F@800
`)
	last := m.Last()
	if len(last) != 2 || last[0].Resolved || !last[0].StartsAt.Equal(t0.Add(800*time.Millisecond)) || !last[1].Resolved {
		t.Errorf("last states %v", last)
	}
	defer func() {
		if recover() == nil {
			t.Error("overlapping firings of one member were accepted")
		}
	}()
	NewLifecycle(testTiming, t0).Fire(pod, 0, time.Second).Fire(pod, time.Second, 0)
}

// checkStream checks that notifications, in order, are consistent as one
// Alertmanager (or a Pool) sends them: per member, a firing never shows an
// older startsAt than one shown before, and after a resolution only a
// newer firing, starting after its endsAt; a resolution ends the firing
// shown (or a later one) and is repeated only as it was; a webhook holds
// 1–5 alerts of one group, each member once; an Event goes alone, its
// count never falls and its first occurrence does not move. With at, no
// time lies after its step.
func checkStream(batches [][]Signal, start time.Time, at []Step) []string {
	type state struct {
		since, end time.Time
		resolved   bool
	}
	alerts, events := map[string]state{}, map[string]Signal{}
	var errs []string
	bad := func(i int, f string, a ...any) {
		errs = append(errs, fmt.Sprintf("request %d: ", i)+fmt.Sprintf(f, a...))
	}
	for i, b := range batches {
		if len(b) == 0 {
			bad(i, "empty")
			continue
		}
		if at != nil {
			now := start.Add(at[i].At)
			for _, s := range b {
				if s.StartsAt.After(now) || s.EndsAt.After(now) || (s.IsEvent() && s.Event.LastSeen.After(now)) {
					bad(i, "%s lies after the request at %s", s, now)
				}
			}
		}
		if b[0].IsEvent() {
			s := b[0]
			if len(b) != 1 {
				bad(i, "an Event with %d other signals", len(b)-1)
			}
			if p, ok := events[s.Key()]; ok && (p.Event.Shape != s.Event.Shape || !p.StartsAt.Equal(s.StartsAt) ||
				s.Event.Count < p.Event.Count || s.Event.LastSeen.Before(p.Event.LastSeen)) {
				bad(i, "event %s %+v after %+v", s.Key(), *s.Event, *p.Event)
			}
			events[s.Key()] = s
			continue
		}
		if len(b) > maxGroup {
			bad(i, "%d alerts", len(b))
		}
		seen := map[string]bool{}
		for _, s := range b {
			m := s.Member()
			switch {
			case s.IsEvent():
				bad(i, "an Event among alerts")
				continue
			case s.Name != b[0].Name || s.Namespace != b[0].Namespace:
				bad(i, "%s and %s in one group", b[0].Member(), m)
			case seen[m]:
				bad(i, "%s twice", m)
			}
			seen[m] = true
			p, ok := alerts[m]
			if !s.Resolved {
				switch {
				case !s.EndsAt.IsZero():
					bad(i, "firing %s with endsAt", s)
				case ok && !p.resolved && s.StartsAt.Before(p.since):
					bad(i, "%s after it fired since %s", s, p.since)
				case ok && p.resolved && !s.StartsAt.After(p.end):
					bad(i, "%s after it resolved at %s", s, p.end)
				}
				alerts[m] = state{since: s.StartsAt}
				continue
			}
			switch {
			case !ok:
				bad(i, "%s never fired", s)
			case s.EndsAt.Before(s.StartsAt):
				bad(i, "%s ends before it starts", s)
			case p.resolved && (!p.since.Equal(s.StartsAt) || !p.end.Equal(s.EndsAt)):
				bad(i, "%s after its resolution %s–%s", s, p.since, p.end)
			case !p.resolved && s.StartsAt.Before(p.since):
				bad(i, "%s resolves an older firing than %s", s, p.since)
			}
			alerts[m] = state{since: s.StartsAt, end: s.EndsAt, resolved: true}
		}
	}
	return errs
}

// coverage counts what a stream exercises.
type coverage struct {
	repeats, resolved, refires, refiresAfter, duplicateResolved, sharedKey, mixed int
	shapes                                                                        map[EventShape]int
	sizes                                                                         map[int]int
}

func cover(batches [][]Signal, window time.Duration) coverage {
	c := coverage{shapes: map[EventShape]int{}, sizes: map[int]int{}}
	last := map[string]Signal{}
	for _, b := range batches {
		if b[0].IsEvent() {
			c.shapes[b[0].Event.Shape]++
			continue
		}
		c.sizes[len(b)]++
		keys, st := map[string]int{}, map[bool]int{}
		for _, s := range b {
			keys[s.Key()]++
			st[s.Resolved]++
			p, ok := last[s.Member()]
			switch {
			case !ok:
			case s.Resolved && p.Resolved:
				c.duplicateResolved++
			case s.Resolved:
				c.resolved++
			case p.Resolved && s.StartsAt.Sub(p.EndsAt) > window:
				c.refiresAfter++
			case p.Resolved:
				c.refires++
			case s.StartsAt.Equal(p.StartsAt):
				c.repeats++
			}
			last[s.Member()] = s
		}
		for _, n := range keys {
			if n > 1 {
				c.sharedKey++
			}
		}
		if st[true] > 0 && st[false] > 0 {
			c.mixed++
		}
	}
	return c
}

func pods(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("pod-%d", i)
	}
	return out
}

func TestMixIsDeterministicAndConsistent(t *testing.T) {
	tm := Timing{Window: 2 * time.Second}
	mk := func(seed uint64) (Schedule, string) {
		s := Mix(seed, tm, "ns", pods(40), t0, 20*time.Second).Schedule()
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return s, string(b)
	}
	s, a := mk(7)
	if _, b := mk(7); a != b {
		t.Fatal("the same seed made two schedules")
	}
	if _, b := mk(8); a == b {
		t.Fatal("two seeds made one schedule")
	}
	if errs := checkStream(steps(s), s.Start, s.Steps); len(errs) > 0 {
		t.Fatalf("inconsistent:\n%s", strings.Join(errs, "\n"))
	}
	c := cover(steps(s), tm.Window)
	t.Logf("%d requests: %+v", len(s.Steps), c)
	if c.repeats == 0 || c.resolved == 0 || c.refires == 0 || c.refiresAfter == 0 || c.sharedKey == 0 || c.mixed == 0 ||
		len(c.shapes) != 3 || c.sizes[1] == 0 || len(c.sizes) < 3 {
		t.Errorf("the mix misses a lifecycle: %+v", c)
	}
	for i := 1; i < len(s.Steps); i++ {
		if s.Steps[i].At < s.Steps[i-1].At {
			t.Fatalf("steps out of order at %d", i)
		}
	}
	// Repeats past the window with the same startsAt.
	first := map[string]time.Duration{}
	past := false
	for _, st := range s.Steps {
		for _, sig := range st.Signals {
			if sig.IsEvent() || sig.Resolved {
				continue
			}
			k := sig.Member() + sig.StartsAt.String()
			if f, ok := first[k]; !ok {
				first[k] = st.At
			} else if st.At-f > tm.Window {
				past = true
			}
		}
	}
	if !past {
		t.Error("no alert is repeated with its startsAt past the window")
	}
}

func TestPoolIsDeterministicAndConsistent(t *testing.T) {
	run := func(seed uint64, n int) [][]Signal {
		now := t0
		p := NewPool("ns", func() time.Time { now = now.Add(137 * time.Millisecond); return now })
		r := rand.New(rand.NewPCG(seed, 1))
		out := make([][]Signal, n)
		for i := range out {
			out[i] = p.Next(r)
		}
		return out
	}
	enc := func(b [][]Signal) string { j, _ := json.Marshal(b); return string(j) }
	a := run(3, 3000)
	if enc(a) != enc(run(3, 3000)) {
		t.Fatal("the same seed and clock made two streams")
	}
	if enc(a) == enc(run(4, 3000)) {
		t.Fatal("two seeds made one stream")
	}
	if errs := checkStream(a, time.Time{}, nil); len(errs) > 0 {
		t.Fatalf("inconsistent:\n%s", strings.Join(errs[:min(len(errs), 20)], "\n"))
	}
	c := cover(a, 5*time.Second)
	t.Logf("%+v", c)
	if c.repeats == 0 || c.resolved == 0 || c.refires == 0 || c.refiresAfter == 0 || c.duplicateResolved == 0 || c.sharedKey == 0 ||
		c.mixed == 0 || len(c.shapes) != 3 || c.sizes[1] == 0 || c.sizes[5] == 0 {
		t.Errorf("the pool misses a kind of notification: %+v", c)
	}
}

// Records keep what was sent: the Pool must not change an Event it
// returned when it occurs again.
func TestPoolDoesNotMutateWhatItReturned(t *testing.T) {
	p := NewPool("ns", nil)
	r := rand.New(rand.NewPCG(1, 1))
	var evs []Signal
	var counts []int32
	for range 500 {
		for _, s := range p.Next(r) {
			if s.IsEvent() {
				evs, counts = append(evs, s), append(counts, s.Event.Count)
			}
		}
	}
	for i, e := range evs {
		if e.Event.Count != counts[i] {
			t.Fatalf("event %d changed from count %d to %d", i, counts[i], e.Event.Count)
		}
	}
	if len(p.Last()) == 0 {
		t.Error("Last is empty")
	}
}
