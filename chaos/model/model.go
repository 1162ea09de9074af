// Package model holds a recorded history against the episode model: an
// episode of a fingerprint is one RemediationRequest, open while it exists,
// is not being deleted and its phase is not terminal; every occurrence
// attaches to the open episode or opens exactly one new one. It rebuilds
// each episode's life from the verifier's own watch and the nemesis'
// actions, and checks every acknowledgement, every Redis record and the
// final resolutions against it. Pure functions of a history: no I/O.
package model

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/testenv/history"
	"github.com/alertgate/gateway/testenv/load"
)

// Invariant names.
const (
	// OneOpen: at most one open episode per fingerprint (and per signal)
	// at every instant; no episode is opened while another is open.
	OneOpen = "M1 one open episode"
	// Attached: every acknowledged firing occurrence names an episode of
	// its signal that existed by its acknowledgement.
	Attached = "M2 acknowledged into an episode"
	// NoAbsorb: no occurrence attaches to an episode that had ended
	// (terminal phase, deleting, deleted) once the gateway could know.
	NoAbsorb = "M3 ended episodes absorb nothing"
	// Resolution: an open episode is resolved exactly when every member's
	// latest notification resolved it.
	Resolution = "M4 resolution follows the members"
	// RecordsOpen: every committed Redis record names an open episode of
	// its fingerprint, or stops within the bound of its episode's end.
	RecordsOpen = "M5 records name open episodes"
	// Given: every alert a real Alertmanager was given went out in a
	// delivery the gateway acknowledged, as given (firing since its
	// startsAt, or resolved at its endsAt), before the history ends. With
	// M2 and M4 it is then stored as given: a refusal Alertmanager does not
	// retry (a 4xx) shows here.
	Given = "M6 every alert given is acknowledged"
)

// Invariants lists them in report order.
var Invariants = []string{OneOpen, Attached, NoAbsorb, Resolution, RecordsOpen, Given}

// Options of a check.
type Options struct {
	// Bound is how long after an episode ended — or after the gateway
	// could first know it, once the faults that blinded it were healed —
	// an occurrence may still attach to it and a record still name it.
	// Default: 2s.
	Bound time.Duration
	// Slack absorbs the verifier's own watch delay when an
	// acknowledgement is placed against an episode's opening. Default: 1s.
	Slack time.Duration
}

func (o *Options) setDefaults() {
	if o.Bound <= 0 {
		o.Bound = 2 * time.Second
	}
	if o.Slack <= 0 {
		o.Slack = time.Second
	}
}

// Violation is one broken rule of the model, with what it concerns.
type Violation struct {
	Invariant   string `json:"invariant"`
	Detail      string `json:"detail"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Key is the signal's identity (load.Signal.Key).
	Key string `json:"key,omitempty"`
	// Requests and Actions are the sequence numbers of the requests and
	// of the nemesis' actions around it.
	Requests []int `json:"requests,omitempty"`
	Actions  []int `json:"actions,omitempty"`
	Seed     int64 `json:"seed,omitempty"`
}

func (v Violation) String() string { return v.Invariant + ": " + v.Detail }

// Stats are the history's figures.
type Stats struct {
	Requests     int `json:"requests"`
	Acknowledged int `json:"acknowledged"`
	// Occurrences are the firing alerts acknowledged.
	Occurrences int `json:"occurrences"`
	Resolutions int `json:"resolutions"`
	Episodes    int `json:"episodes"`
	Ended       int `json:"ended"`
	Actions     int `json:"actions"`
	Faults      int `json:"faults"`
}

// Result of a check.
type Result struct {
	Violations []Violation `json:"violations"`
	Stats      Stats       `json:"stats"`
}

// episode is one object's life: a name taken again after a deletion is
// another episode.
type episode struct {
	name, uid, fp, key string
	seq                int64
	created            time.Time
	// ended is zero while the episode is open at the end of the history.
	ended   time.Time
	endedBy string
	// action is the nemesis action that ended it (0: none seen).
	action int
	// unseen: known only from the controller's actions, not the watch.
	unseen bool
}

func (e *episode) openAt(t time.Time, slack time.Duration) bool {
	return !e.created.After(t.Add(slack)) && (e.ended.IsZero() || !e.ended.Before(t.Add(-slack)))
}

type checker struct {
	h        *history.History
	o        Options
	terminal map[string]bool
	byName   map[string][]*episode // in creation order
	all      []*episode
	out      []Violation
}

// Check holds h against the model.
func Check(h *history.History, o Options) Result {
	o.setDefaults()
	c := &checker{h: h, o: o, terminal: h.TerminalSet(), byName: map[string][]*episode{}}
	if len(c.terminal) == 0 {
		for _, p := range v1alpha1.DefaultTerminalPhases {
			c.terminal[string(p)] = true
		}
	}
	c.episodes()
	c.oneOpen()
	st := c.acknowledgements()
	c.resolutions()
	c.records()
	c.given()
	for i := range c.out {
		c.out[i].Seed = h.Seed
	}
	sort.SliceStable(c.out, func(i, j int) bool {
		if c.out[i].Invariant != c.out[j].Invariant {
			return c.out[i].Invariant < c.out[j].Invariant
		}
		return c.out[i].Detail < c.out[j].Detail
	})
	st.Episodes = len(c.all)
	for _, e := range c.all {
		if !e.ended.IsZero() {
			st.Ended++
		}
	}
	st.Actions, st.Faults, st.Requests = len(h.Actions), len(h.Faults), len(h.Requests)
	return Result{Violations: c.out, Stats: st}
}

func (c *checker) violate(v Violation) { c.out = append(c.out, v) }

// given holds every alert given to a real Alertmanager against its
// deliveries; only a member's latest firing is judged (load.Superseded).
func (c *checker) given() {
	for _, am := range c.h.Alertmanagers {
		d := load.IndexDeliveries(c.h.Requests, am.Senders)
		for i, g := range am.Given {
			if load.Superseded(am.Given, i) || d.Acked[g.Signal.Delivery()] {
				continue
			}
			state, at := "firing", g.FiredAt
			if g.Signal.Resolved {
				state, at = "resolved", g.ResolvedAt
			}
			carried := d.Carried[g.Signal.Delivery()]
			seqs := make([]int, len(carried))
			for j, r := range carried {
				seqs[j] = r.Seq
			}
			c.violate(Violation{Invariant: Given, Key: g.Signal.Key(), Requests: seqs,
				Detail: fmt.Sprintf("alert %s given to %s %s at %s: no delivery of it as given was acknowledged, its %d deliveries were answered %s",
					g.Signal.Member(), am.Name, state, at.Format("15:04:05.000"), len(carried), d.Answers(g.Signal))})
		}
	}
}

// episodes rebuilds every episode's life from the watch, its end
// sharpened by the action that caused it.
func (c *checker) episodes() {
	byUID := map[string]*episode{}
	for _, ev := range c.h.Resources {
		id := ev.UID
		if id == "" {
			id = ev.Name
		}
		e := byUID[id]
		if e == nil {
			// A watch that was resuming (after an API server restart) sees
			// an object late: its creationTimestamp (to the second) then
			// tells when it was created.
			created := ev.At
			if !ev.Created.IsZero() && ev.Created.Add(time.Second).Before(created) {
				created = ev.Created
			}
			e = &episode{name: ev.Name, uid: ev.UID, fp: ev.Fingerprint, key: ev.Key, seq: ev.Episode, created: created}
			byUID[id] = e
			c.byName[ev.Name] = append(c.byName[ev.Name], e)
			c.all = append(c.all, e)
		}
		if e.ended.IsZero() && !ev.Open(c.terminal) {
			e.ended = ev.At
			switch {
			case ev.Type == "DELETED":
				e.endedBy = "deleted"
			case ev.Deleting:
				e.endedBy = "deleting"
			default:
				e.endedBy = "phase " + ev.Phase
			}
		}
	}
	// An object the controller acted on but the watch never delivered
	// (created and deleted while the watch resynced after an API server
	// restart) is an episode all the same: the controller read it.
	for _, a := range c.h.Actions {
		if a.Err != "" || a.UID == "" || a.Created.IsZero() || byUID[a.UID] != nil {
			continue
		}
		e := &episode{name: a.Resource, uid: a.UID, fp: a.Fingerprint, key: a.Key, seq: a.Episode, created: a.Created, unseen: true}
		byUID[a.UID] = e
		c.byName[a.Resource] = append(c.byName[a.Resource], e)
		slices.SortStableFunc(c.byName[a.Resource], func(x, y *episode) int { return x.created.Compare(y.created) })
		c.all = append(c.all, e)
	}
	for _, a := range c.h.Actions {
		if !a.Ends(c.terminal) {
			continue
		}
		// The object acted on, by UID: its name may be taken again by the
		// next episode within moments of its deletion.
		e := byUID[a.UID]
		if a.UID == "" {
			e = c.at(a.Resource, a.At)
		}
		if e == nil {
			continue
		}
		if e.ended.IsZero() || a.At.Before(e.ended) {
			e.ended = a.At
		}
		if e.action == 0 {
			e.action = a.Seq
		}
	}
}

// at returns the episode of that name an answer at t named: the one open
// at t; else one created just after t (the verifier's watch delivers a
// creation a moment after the answer that made it); else the latest
// created before t.
func (c *checker) at(name string, t time.Time) *episode {
	var before *episode
	for _, e := range c.byName[name] {
		if !e.created.After(t) {
			before = e
		}
	}
	if before != nil && (before.ended.IsZero() || !before.ended.Before(t)) {
		return before
	}
	for _, e := range c.byName[name] {
		if e.created.After(t) && !e.created.After(t.Add(c.o.Slack)) {
			return e
		}
	}
	return before
}

// oneOpen (M1) replays the watch in its order: the API server's order of
// commits, so no two opens can be confused by clocks.
func (c *checker) oneOpen() {
	type state struct{ open map[string]string } // uid → name
	byFP, byKey := map[string]*state{}, map[string]*state{}
	get := func(m map[string]*state, k string) *state {
		if m[k] == nil {
			m[k] = &state{open: map[string]string{}}
		}
		return m[k]
	}
	reported := map[string]bool{}
	for _, ev := range c.h.Resources {
		id := ev.UID
		if id == "" {
			id = ev.Name
		}
		for _, s := range []*state{get(byFP, ev.Fingerprint), get(byKey, ev.Key)} {
			_, was := s.open[id]
			open := ev.Open(c.terminal)
			switch {
			case open && !was:
				for other, name := range s.open {
					if k := id + "/" + other; !reported[k] {
						reported[k] = true
						c.violate(Violation{Invariant: OneOpen, Fingerprint: ev.Fingerprint, Key: ev.Key,
							Detail:   fmt.Sprintf("episode %s of %s opened at %s while %s was open", ev.Name, ev.Key, clock(ev.At), name),
							Requests: c.requestsAround(ev.Key, ev.At), Actions: c.actionsAround(ev.Fingerprint, ev.At)})
					}
				}
				s.open[id] = ev.Name
			case !open && was:
				delete(s.open, id)
			}
		}
	}
	// The watch's order does not hold the episodes it never delivered:
	// those are held against the others by time.
	for _, u := range c.all {
		from, to := u.created.Add(c.o.Slack), u.ended.Add(-c.o.Slack)
		if u.ended.IsZero() {
			to = c.h.End
		}
		if !u.unseen || !from.Before(to) {
			continue
		}
		for _, o := range c.all {
			if o == u || o.fp != u.fp && o.key != u.key || o.unseen && reported[o.uid+"/"+u.uid] {
				continue
			}
			if o.openAt(from, 0) || o.openAt(to, 0) || (o.created.After(from) && o.created.Before(to)) {
				reported[u.uid+"/"+o.uid] = true
				c.violate(Violation{Invariant: OneOpen, Fingerprint: u.fp, Key: u.key,
					Detail:   fmt.Sprintf("episode %s of %s (seen by the controller only) was open from %s while %s was open", u.name, u.key, clock(u.created), o.name),
					Requests: c.requestsAround(u.key, u.created), Actions: c.actionsAround(u.fp, u.created)})
			}
		}
	}
}

// acknowledgements (M2, M3) checks every acknowledged firing occurrence
// against the episode it names.
func (c *checker) acknowledgements() Stats {
	var st Stats
	for _, r := range c.h.Requests {
		if !r.Acknowledged() {
			continue
		}
		st.Acknowledged++
		end := r.Start.Add(r.Duration)
		for _, o := range r.Outcomes {
			if o.Index < 0 || o.Index >= len(r.Signals) {
				c.violate(Violation{Invariant: Attached, Requests: []int{r.Seq},
					Detail: fmt.Sprintf("request %d answered for alert %d of %d", r.Seq, o.Index, len(r.Signals))})
				continue
			}
			sig := r.Signals[o.Index]
			switch o.Status {
			case "resolved":
				st.Resolutions++
				continue
			case "created", "duplicate":
			default:
				continue
			}
			if resolvedSignal(sig) {
				continue
			}
			st.Occurrences++
			key := sig.Key()
			if o.Name == "" {
				c.violate(Violation{Invariant: Attached, Key: key, Requests: []int{r.Seq},
					Detail: fmt.Sprintf("request %d acknowledged %s without naming an episode", r.Seq, key)})
				continue
			}
			e := c.at(o.Name, end)
			if e == nil {
				when := "never"
				if later := c.byName[o.Name]; len(later) > 0 {
					when = "only at " + clock(later[0].created)
				}
				c.violate(Violation{Invariant: Attached, Fingerprint: o.Fingerprint, Key: key, Requests: c.with(r.Seq, c.requestsAround(key, r.Start)),
					Detail: fmt.Sprintf("request %d (%s–%s) acknowledged %s into %s, which existed %s", r.Seq, clock(r.Start), clock(end), key, o.Name, when)})
				continue
			}
			if e.key != key {
				c.violate(Violation{Invariant: Attached, Fingerprint: e.fp, Key: key, Requests: []int{r.Seq},
					Detail: fmt.Sprintf("request %d acknowledged %s into %s, which is for %s", r.Seq, key, o.Name, e.key)})
				continue
			}
			if e.openAt(r.Start, c.o.Slack) || e.openAt(end, c.o.Slack) {
				continue
			}
			know := c.know(e.ended, r.Gateway, history.BlindKubernetes)
			if r.Start.After(know.Add(c.o.Bound)) {
				v := Violation{Invariant: NoAbsorb, Fingerprint: e.fp, Key: key, Requests: c.with(r.Seq, c.requestsAround(key, r.Start)),
					Actions: c.actionsAround(e.fp, e.ended),
					Detail: fmt.Sprintf("request %d at %s attached %s to %s, which ended (%s) at %s; the gateway could know by %s",
						r.Seq, clock(r.Start), key, e.name, e.endedBy, clock(e.ended), clock(know.Add(c.o.Bound)))}
				c.violate(v)
			}
		}
	}
	return st
}

// records (M5) checks every committed record read against the episodes.
func (c *checker) records() {
	snaps := append(append([]history.RecordSnapshot(nil), c.h.Records...), c.h.Final.Records...)
	reported := map[string]bool{}
	for _, s := range snaps {
		if s.State != "c" {
			continue
		}
		name := v1alpha1.EpisodeName(s.Fingerprint, s.Seq)
		e := c.at(name, s.At)
		switch {
		case e != nil && e.fp != s.Fingerprint:
			// another fingerprint sharing the 32-digit prefix: not ours
		case e != nil && e.openAt(s.At, c.o.Slack):
		case e != nil:
			// The bound counts from when the gateways could know of the
			// end, however late a commit rewrote the record.
			know := c.know(e.ended, "", history.BlindKubernetes, history.BlindRedis, history.BlindGateway)
			if s.At.After(know.Add(c.o.Bound)) && !reported[name] {
				reported[name] = true
				c.violate(Violation{Invariant: RecordsOpen, Fingerprint: s.Fingerprint, Key: e.key, Actions: c.actionsAround(e.fp, e.ended),
					Detail: fmt.Sprintf("at %s Redis names %s, which ended (%s) at %s; the record should be gone by %s",
						clock(s.At), name, e.endedBy, clock(e.ended), clock(know.Add(c.o.Bound)))})
			}
		default:
			if w := s.Written.Add(time.Second); s.At.After(c.know(w, "", history.BlindRedis, history.BlindGateway).Add(c.o.Bound)) && !reported[name] {
				reported[name] = true
				c.violate(Violation{Invariant: RecordsOpen, Fingerprint: s.Fingerprint,
					Detail: fmt.Sprintf("at %s Redis names %s, which never existed", clock(s.At), name)})
			}
		}
	}
}

// know returns the first moment from t on at which the gateway was not
// blinded by a fault of the given kinds (for one gateway, or for any).
func (c *checker) know(t time.Time, gateway string, blinds ...string) time.Time {
	for changed := true; changed; {
		changed = false
		for _, f := range c.h.Faults {
			if !blinding(f, gateway, blinds) {
				continue
			}
			heal := f.Heal
			if heal.IsZero() {
				heal = c.h.End
			}
			if !t.Before(f.Inject) && t.Before(heal) {
				t, changed = heal, true
			}
		}
	}
	return t
}

func blinding(f history.Fault, gateway string, blinds []string) bool {
	if gateway != "" && len(f.Gateways) > 0 && !contains(f.Gateways, gateway) {
		return false
	}
	for _, b := range f.Blinds {
		if contains(blinds, b) {
			return true
		}
	}
	return false
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// requestsAround are the requests that carried key within 5 s of t.
func (c *checker) requestsAround(key string, t time.Time) []int {
	var out []int
	for _, r := range c.h.Requests {
		if d := r.Start.Sub(t); d < -5*time.Second || d > 5*time.Second {
			continue
		}
		for _, s := range r.Signals {
			if s.Key() == key {
				out = append(out, r.Seq)
				break
			}
		}
	}
	return out
}

// actionsAround are the nemesis' actions on fp's episodes within 5 s of t.
func (c *checker) actionsAround(fp string, t time.Time) []int {
	var out []int
	for _, a := range c.h.Actions {
		if d := a.At.Sub(t); a.Fingerprint == fp && d >= -5*time.Second && d <= 5*time.Second {
			out = append(out, a.Seq)
		}
	}
	return out
}

func (c *checker) with(seq int, seqs []int) []int {
	for _, s := range seqs {
		if s == seq {
			return seqs
		}
	}
	return append([]int{seq}, seqs...)
}

func clock(t time.Time) string { return t.Format("15:04:05.000") }

// resolvedSignal reports whether a sent signal was a resolution.
func resolvedSignal(s load.Signal) bool { return s.Resolved }

// member is what the model knows of one alert of an episode: the startsAt
// of its latest firing and of the firing its latest resolution ended.
type member struct{ firing, resolved time.Time }

func (m member) isResolved() bool { return !m.resolved.IsZero() && !m.resolved.Before(m.firing) }

// resolutions (M4): an episode still open at the end is resolved exactly
// when every member's latest notification resolved it. The notifications
// that count are those acknowledged into it; an unanswered one (a 5xx, no
// answer) may have been applied or not, so an episode whose verdict such a
// notification could change is not judged.
func (c *checker) resolutions() {
	for _, f := range c.h.Final.Resources {
		if f.Deleting || c.terminal[f.Phase] {
			continue
		}
		e := c.at(f.Name, c.h.End)
		if e == nil {
			continue
		}
		certain, all := map[string]member{}, map[string]member{}
		apply := func(ms map[string]member, s load.Signal) {
			m := ms[s.Member()]
			if s.StartsAt.After(m.firing) {
				m.firing = s.StartsAt
			}
			if s.Resolved && s.StartsAt.After(m.resolved) {
				m.resolved = s.StartsAt
			}
			ms[s.Member()] = m
		}
		var seqs []int
		for _, r := range c.h.Requests {
			end := r.Start.Add(r.Duration)
			if r.Acknowledged() {
				for _, o := range r.Outcomes {
					if o.Name != f.Name || o.Index < 0 || o.Index >= len(r.Signals) || r.Signals[o.Index].Member() == "" || c.at(o.Name, end) != e {
						continue
					}
					apply(certain, r.Signals[o.Index])
					apply(all, r.Signals[o.Index])
					seqs = append(seqs, r.Seq)
				}
				continue
			}
			if c.at(f.Name, r.Start) != e && c.at(f.Name, end) != e {
				continue
			}
			for _, sig := range r.Signals {
				if sig.Key() == e.key && sig.Member() != "" {
					apply(all, sig)
				}
			}
		}
		want, sure := allResolved(certain), allResolved(all)
		if want != sure || want == f.Resolved {
			continue
		}
		c.violate(Violation{Invariant: Resolution, Fingerprint: e.fp, Key: e.key, Requests: seqs,
			Detail: fmt.Sprintf("episode %s is %s at the end, but its members' last notifications say %s (%s)",
				f.Name, resolvedWord(f.Resolved), resolvedWord(want), describeMembers(certain))})
	}
}

func allResolved(ms map[string]member) bool {
	if len(ms) == 0 {
		return false
	}
	for _, m := range ms {
		if !m.isResolved() {
			return false
		}
	}
	return true
}

func resolvedWord(b bool) string {
	if b {
		return "resolved"
	}
	return "not resolved"
}

func describeMembers(ms map[string]member) string {
	ids := make([]string, 0, len(ms))
	for id := range ms {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []string
	for _, id := range ids {
		state := "firing"
		if ms[id].isResolved() {
			state = "resolved"
		}
		out = append(out, id+" "+state)
	}
	return strings.Join(out, ", ")
}
