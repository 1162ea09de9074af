package load

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Pool makes random mode's requests one at a time: notifications of
// Alertmanager groups (one per alertname, in one namespace, 1–5 alerts
// each) and Kubernetes Events, whose state it keeps so that each is
// consistent with the ones before it. A new alert fires (a new pod,
// another container of a pod, or the other severity of a pod: members of
// one fingerprint with their own startsAt); a group is notified again
// unchanged (a repeat: same startsAt); some of a group's alerts resolve
// (the notification carries them resolved and the rest firing); a
// resolved alert fires again, only with a startsAt after its endsAt; a
// resolved notification is delivered again (the second Alertmanager of an
// HA pair, a retry); an Event occurs for the first time or again, its
// count rising. Pool is safe for concurrent use; with a clock that does
// not depend on the calls' timing and one *rand.Rand it is deterministic.
type Pool struct {
	mu      sync.Mutex
	ns      string
	now     func() time.Time
	groups  []*poolGroup
	byName  map[string]*poolGroup
	retired []Signal // the resolved notification of each member out of its group
	events  []Signal // each Event's last occurrence
	pods    int
}

type poolGroup struct {
	name    string
	members []Signal // firing
}

// Bounds of the state the Pool keeps.
const (
	poolRetired = 64
	poolEvents  = 24
)

// NewPool returns a Pool for namespace; now is its clock (nil:
// time.Now), which gives startsAt, endsAt and an Event's timestamps.
func NewPool(namespace string, now func() time.Time) *Pool {
	if now == nil {
		now = time.Now
	}
	return &Pool{ns: namespace, now: now, byName: map[string]*poolGroup{}}
}

// Next returns the signals of the next request: a group's alerts, or one
// Event.
func (p *Pool) Next(r *rand.Rand) []Signal {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	var b []Signal
	switch x := r.IntN(100); {
	case x < 30:
		b = p.newAlert(r, now)
	case x < 55:
		b = p.repeat(r)
	case x < 70:
		b = p.resolve(r, now)
	case x < 80:
		b = p.refire(r, now)
	case x < 85:
		b = p.duplicateResolved(r)
	default:
		return p.event(r, now)
	}
	if b == nil {
		b = p.newAlert(r, now)
	}
	if b == nil {
		b = p.event(r, now)
	}
	return b
}

// Last is the state each alert member and Event was last notified in.
func (p *Pool) Last() []Signal {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Signal
	for _, g := range p.groups {
		out = append(out, g.members...)
	}
	out = append(out, p.retired...)
	sortByMember(out)
	return append(out, p.events...)
}

func (p *Pool) group(name string) *poolGroup {
	g := p.byName[name]
	if g == nil {
		g = &poolGroup{name: name}
		p.byName[name] = g
		p.groups = append(p.groups, g)
	}
	return g
}

func (g *poolGroup) has(member string) bool {
	return slices.ContainsFunc(g.members, func(s Signal) bool { return s.Member() == member })
}

// batch is the group's notification: its firing alerts and those just
// resolved, in a new slice.
func (g *poolGroup) batch(resolved []Signal) []Signal {
	out := append(append([]Signal(nil), g.members...), resolved...)
	sortByMember(out)
	return out
}

func (p *Pool) nonEmpty(r *rand.Rand) *poolGroup {
	var gs []*poolGroup
	for _, g := range p.groups {
		if len(g.members) > 0 {
			gs = append(gs, g)
		}
	}
	if len(gs) == 0 {
		return nil
	}
	return gs[r.IntN(len(gs))]
}

func (p *Pool) retiredIndex(member string) int {
	return slices.IndexFunc(p.retired, func(s Signal) bool { return s.Member() == member })
}

// join adds a firing to its group unless the group is full, the member
// already fires, or the member's last firing did not end before start.
func (p *Pool) join(s Signal) []Signal {
	g := p.group(s.Name)
	if len(g.members) >= maxGroup || g.has(s.Member()) {
		return nil
	}
	if i := p.retiredIndex(s.Member()); i >= 0 {
		if !s.StartsAt.After(p.retired[i].EndsAt) {
			return nil
		}
		p.retired = slices.Delete(p.retired, i, i+1)
	}
	g.members = append(g.members, s)
	return g.batch(nil)
}

func (p *Pool) newAlert(r *rand.Rand, now time.Time) []Signal {
	g := p.group(MixAlertNames[r.IntN(len(MixAlertNames))])
	var s Signal
	switch v := r.IntN(4); {
	case v == 2 && len(g.members) > 0:
		s = g.members[r.IntN(len(g.members))]
		s.Container = []string{"app", "sidecar", "init"}[r.IntN(3)]
	case v == 3 && len(g.members) > 0:
		s = g.members[r.IntN(len(g.members))]
		if s.severity() == "warning" {
			s.Severity = "critical"
		} else {
			s.Severity = "warning"
		}
	default:
		p.pods++
		s = Signal{Name: g.name, Namespace: p.ns, Pod: fmt.Sprintf("app-%d", p.pods)}
		if r.IntN(3) == 0 {
			s.Severity = "warning"
		}
	}
	return p.join(s.Refire(now.Truncate(time.Millisecond)))
}

func (p *Pool) repeat(r *rand.Rand) []Signal {
	if g := p.nonEmpty(r); g != nil {
		return g.batch(nil)
	}
	return nil
}

func (p *Pool) resolve(r *rand.Rand, now time.Time) []Signal {
	g := p.nonEmpty(r)
	if g == nil {
		return nil
	}
	end := now.Truncate(time.Millisecond)
	pick := r.Perm(len(g.members))[:1+r.IntN(len(g.members))]
	var resolved []Signal
	var keep []Signal
	for i, s := range g.members {
		if slices.Contains(pick, i) && !end.Before(s.StartsAt) {
			resolved = append(resolved, s.Resolve(end))
		} else {
			keep = append(keep, s)
		}
	}
	if len(resolved) == 0 {
		return nil
	}
	g.members = keep
	p.retired = append(p.retired, resolved...)
	if over := len(p.retired) - poolRetired; over > 0 {
		p.retired = slices.Delete(p.retired, 0, over)
	}
	return g.batch(resolved)
}

func (p *Pool) refire(r *rand.Rand, now time.Time) []Signal {
	if len(p.retired) == 0 {
		return nil
	}
	return p.join(p.retired[r.IntN(len(p.retired))].Refire(now.Truncate(time.Millisecond)))
}

func (p *Pool) duplicateResolved(r *rand.Rand) []Signal {
	if len(p.retired) == 0 {
		return nil
	}
	return []Signal{p.retired[r.IntN(len(p.retired))]}
}

func (p *Pool) event(r *rand.Rand, now time.Time) []Signal {
	t := now.Truncate(time.Second)
	if len(p.events) == 0 || (len(p.events) < poolEvents && r.IntN(3) == 0) {
		p.pods++
		shape := []EventShape{ShapeCount, ShapeSeries, ShapeBare}[r.IntN(3)]
		s := Signal{Name: MixReasons[r.IntN(len(MixReasons))], Namespace: p.ns, Pod: fmt.Sprintf("job-%d", p.pods), Event: &Event{Shape: shape}}
		switch shape {
		case ShapeCount:
			s.StartsAt, s.Event.Count, s.Event.LastSeen = t, 1, t
		case ShapeSeries:
			s.StartsAt, s.Event.Count = t, 1
		}
		p.events = append(p.events, s)
		return []Signal{s}
	}
	i := r.IntN(len(p.events))
	s := p.events[i]
	// A new Event value: the previous one is in records already.
	ev := *s.Event
	if ev.Shape != ShapeBare {
		ev.Count++
		ev.LastSeen = t
	}
	s.Event = &ev
	p.events[i] = s
	return []Signal{s}
}
