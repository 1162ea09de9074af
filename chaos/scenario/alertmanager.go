package scenario

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/chaos/check"
	"github.com/alertgate/gateway/internal/localdeps"
	"github.com/alertgate/gateway/testenv/load"
)

// What the scenarios with a real Alertmanager as the sender share: start
// it in front of the run's gateways, give it alerts as Prometheus does, and
// hold the API server against what it was given (check.AllGiven).

// amQuick is the route of the outage scenarios: a new group is notified
// 200 ms after its first alert, a change a second after the last flush,
// so a scenario takes seconds; nothing repeats within a run.
var amQuick = load.Timing{GroupWait: 200 * time.Millisecond, GroupInterval: time.Second, RepeatInterval: time.Hour}

// alertmanager is the run's Alertmanagers and what expectGiven judged.
type alertmanager struct {
	*load.Alertmanager
	// judged: alerts given before it were held to their bound by an
	// earlier expectGiven.
	judged time.Time
}

// startAlertmanager starts o.Instances real Alertmanagers (not clustered),
// instance i delivering to gateway i through its own recording Proxy, so
// every delivery is in the run's history. A missing binary fails the
// scenario: a skipped sender would prove nothing. stopAlertmanager ends
// them; t.Defer does if the timeline stopped early.
func startAlertmanager(t *T, o load.AlertmanagerOptions) *alertmanager {
	for _, g := range t.Gateways {
		o.Gateways = append(o.Gateways, g.URL)
	}
	start := time.Now()
	am, err := load.StartAlertmanager(t.Ctx, t.client, o)
	if errors.Is(err, localdeps.ErrNoAlertmanager) {
		t.Fatalf("%v (hack/alertmanager.sh builds it; `make test` and `make chaos` set it)", err)
	}
	if err != nil {
		t.Fatalf("start alertmanager: %v", err)
	}
	t.Defer(am.Stop)
	t.rec.mu.Lock()
	t.rec.ams = append(t.rec.ams, am)
	t.rec.mu.Unlock()
	t.Note("%d alertmanager(s) %s ready in %s, group_wait %s, group_interval %s", am.Instances(), o.Name,
		time.Since(start).Round(time.Millisecond), o.Timing.Route().GroupWait, o.Timing.Route().GroupInterval)
	return &alertmanager{Alertmanager: am}
}

// stopAlertmanager stops the Alertmanagers before the runner's final
// check, so that no delivery reaches a gateway being stopped, and expects
// each delivery to be one group with firing alerts at endsAt 0001-01-01,
// as Alertmanager sends them.
func stopAlertmanager(t *T, am *alertmanager) {
	am.Stop()
	names := senders(am)
	n := 0
	for _, r := range t.History() {
		if !names[r.Sender] {
			continue
		}
		n++
		for _, s := range r.Signals {
			t.expect(s.Name == r.Signals[0].Name && s.Namespace == r.Signals[0].Namespace, r,
				"delivery %d mixes groups: %s and %s", r.Seq, r.Signals[0], s)
			t.expect(s.Resolved || s.EndsAt.IsZero(), r, "delivery %d: firing %s has endsAt %s, Alertmanager sends 0001-01-01", r.Seq, s, s.EndsAt)
		}
	}
	t.Note("alertmanager deliveries: %d", n)
}

// fire gives sigs to every Alertmanager, failing unless all took them.
func fire(t *T, am *alertmanager, sigs []load.Signal) {
	if err := am.Fire(t.Ctx, sigs); err != nil {
		t.Fatalf("give alerts to alertmanager: %v", err)
	}
}

// resolve gives the resolution of sigs (ended now) to every Alertmanager.
func resolve(t *T, am *alertmanager, sigs []load.Signal) {
	if err := am.Resolve(t.Ctx, sigs); err != nil {
		t.Fatalf("resolve alerts in alertmanager: %v", err)
	}
}

// stillFiring are the alerts given to am and not resolved since.
func stillFiring(am *alertmanager) []load.Signal {
	var out []load.Signal
	for _, g := range am.Given() {
		if g.ResolvedAt.IsZero() {
			out = append(out, g.Signal)
		}
	}
	return out
}

// withContainer is sig's alert for another container of the same pod: a
// second member of its fingerprint.
func withContainer(sig load.Signal, container string) load.Signal {
	sig.Container = container
	return sig
}

// overLabels are the labels an invalid alert adds to a valid one's:
// Signal.Labels has 7, so a gateway with --max-labels 8 rejects it alone.
// Alertmanager accepts any number of labels.
var overLabels = map[string]string{"team": "payments", "tier": "backend"}

// invalidMaxLabels is the --max-labels that rejects what pushInvalid
// pushes and keeps every load.Signal.
const invalidMaxLabels = 8

// pushInvalid gives every Alertmanager an alert the gateway must reject
// (more labels than invalidMaxLabels) in like's group: same alertname,
// namespace and pod, container "invalid". It shares like's identity
// (Signal.Key) so that a correct gateway, which stores like and rejects
// it, breaks no check that counts every alert of an acknowledged batch
// (I2); it is never given in the sense of am.Given: it must never be
// stored. It is pushed directly, as load.Signal cannot carry extra labels.
func pushInvalid(t *T, am *alertmanager, like load.Signal) {
	labels := withContainer(like, "invalid").Labels()
	for k, v := range overLabels {
		labels[k] = v
	}
	a := localdeps.PostableAlert{Labels: labels, StartsAt: like.StartsAt, Annotations: map[string]string{"summary": "an alert with too many labels"}}
	for i := range am.Instances() {
		if err := am.Process(i).Push(t.Ctx, []localdeps.PostableAlert{a}); err != nil {
			t.Fatalf("push the invalid alert to alertmanager %d: %v", i, err)
		}
	}
}

// expectRejectedAlone expects some delivery of am to have been
// acknowledged with fewer outcomes than alerts: the invalid one rejected,
// the others stored. It waits (at most 3 s) for the record, which the
// Proxy adds once the gateway has answered, after the store.
func expectRejectedAlone(t *T, am *alertmanager) {
	names := senders(am)
	for range 30 {
		for _, r := range t.History() {
			if names[r.Sender] && r.Acknowledged() && len(r.Outcomes) < len(r.Signals) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Expect(false, "no delivery was acknowledged with an alert rejected alone")
}

// senders are the names am's deliveries are recorded with.
func senders(am *alertmanager) map[string]bool {
	names := map[string]bool{}
	for _, n := range am.Senders() {
		names[n] = true
	}
	return names
}

// expectGiven waits until the API server, read directly, holds every
// alert given to am as given (check.AllGiven): its signal has exactly one
// RemediationRequest, an open episode; the alert is one of its members,
// firing since its startsAt or resolved at its endsAt as its latest
// notification says; the episode has no member never given and is
// resolved exactly when every member is. And Alertmanager must have been
// told so: a delivery carrying the alert as given was answered 2xx with
// an outcome for it; a 4xx, which it does not retry, loses the alert for
// it even if the gateway stored it. Each alert must be so within
// bound of the later of its giving (its firing, or its resolution) and
// from, a heal before which it could not be stored (zero: none); the wait
// ends when all are, or at the last of those bounds, which stops the
// timeline. It returns how long after from (or after the last giving)
// everything was as given.
func expectGiven(t *T, am *alertmanager, from time.Time, bound time.Duration) time.Duration {
	t.MarkChecked(check.AllGiven)
	given := am.Given()
	if len(given) == 0 {
		t.Fatalf("no alert was given to alertmanager")
	}
	due := make([]time.Time, len(given))
	var last, deadline time.Time
	for i, g := range given {
		at := g.FiredAt
		if !g.ResolvedAt.IsZero() {
			at = g.ResolvedAt
		}
		last = later(last, at)
		due[i] = later(at, from).Add(bound)
		deadline = later(deadline, due[i])
	}
	first := make([]time.Time, len(given)) // when each was first as given
	var why []string
	var allAt time.Time
	for poll := 0; poll < 10000; poll++ {
		var list v1alpha1.RemediationRequestList
		err := t.Checks.stores.Kube.List(t.Ctx, &list, client.InNamespace(t.Namespace()))
		now := time.Now()
		if err != nil {
			why = slices.Repeat([]string{"the API server could not be read: " + err.Error()}, len(given))
		} else {
			why = givenProblems(given, list.Items)
			d := load.IndexDeliveries(t.History(), am.Senders())
			for i, g := range given {
				if why[i] == "" && !load.Superseded(given, i) && !d.Acked[g.Signal.Delivery()] {
					why[i] = "no delivery of it as given was acknowledged, alertmanager's deliveries of it were answered " + d.Answers(g.Signal)
				}
			}
		}
		done := true
		for i, w := range why {
			if w == "" && first[i].IsZero() {
				first[i] = now
			}
			done = done && w == ""
		}
		if done {
			allAt = now
			break
		}
		if now.After(deadline) {
			break
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-t.Ctx.Done():
			t.Fatalf("cancelled")
		}
	}
	var slowest time.Duration
	for i, g := range given {
		at := g.FiredAt
		if !g.ResolvedAt.IsZero() {
			at = g.ResolvedAt
		}
		switch {
		case why[i] != "":
			t.Violate(check.Violation{Invariant: check.AllGiven, Signals: []string{g.Signal.Key()},
				Detail: fmt.Sprintf("alert %s given at %s is not stored as given within %s: %s", g.Signal, clock(at), bound, why[i])})
		case at.Before(am.judged):
			// Held to its bound by an earlier call; here it must only
			// still be as given.
		case first[i].After(due[i]):
			t.Violate(check.Violation{Invariant: check.AllGiven, Signals: []string{g.Signal.Key()},
				Detail: fmt.Sprintf("alert %s given at %s was stored only at %s, over %s", g.Signal, clock(at), clock(first[i]), bound)})
		default:
			slowest = max(slowest, first[i].Sub(later(at, from)))
		}
	}
	am.judged = time.Now()
	if allAt.IsZero() {
		t.Fatalf("the alerts given to alertmanager are not stored as given; what follows builds on them")
	}
	since, what := last, "the last was given"
	if from.After(last) {
		since, what = from, "the heal"
	}
	t.Note("all %d alerts given are stored as given %s after %s; the slowest alert %s after it could be",
		len(given), allAt.Sub(since).Round(time.Millisecond), what, slowest.Round(time.Millisecond))
	return allAt.Sub(since)
}

// givenProblems says, for each alert given, why the resources do not hold
// it as given ("" when they do). Only the latest firing of a member is
// judged; an earlier one is as given when the latest is.
func givenProblems(given []load.GivenAlert, rrs []v1alpha1.RemediationRequest) []string {
	byKey := map[string][]v1alpha1.RemediationRequest{}
	for _, r := range rrs {
		k := load.SignalOf(&r).Key()
		byKey[k] = append(byKey[k], r)
	}
	latest := map[string]int{} // member → index of its latest firing
	keys := map[string][]int{} // key → latest firing of each of its members
	for i, g := range given {
		latest[g.Signal.Member()] = i
	}
	for _, i := range latest {
		k := given[i].Signal.Key()
		keys[k] = append(keys[k], i)
	}
	out := make([]string, len(given))
	for key, idx := range keys {
		sort.Ints(idx)
		problem := episodeProblem(given, idx, byKey[key])
		for _, i := range idx {
			out[i] = problem
		}
		if problem != "" {
			continue
		}
		members := byKey[key][0].Members()
		for _, i := range idx {
			out[i] = memberProblem(given[i].Signal, members)
		}
	}
	for i, g := range given {
		if j := latest[g.Signal.Member()]; j != i {
			out[i] = out[j]
		}
	}
	return out
}

// episodeProblem checks the episode of one signal against the latest
// firings idx of its members.
func episodeProblem(given []load.GivenAlert, idx []int, rrs []v1alpha1.RemediationRequest) string {
	switch {
	case len(rrs) == 0:
		return "it has no RemediationRequest"
	case len(rrs) > 1:
		names := make([]string, len(rrs))
		for i, r := range rrs {
			names[i] = r.Name
		}
		return fmt.Sprintf("it has %d RemediationRequests (%s), want one episode", len(rrs), strings.Join(names, ", "))
	case !check.Open(&rrs[0]):
		return fmt.Sprintf("its episode %s has ended (phase %q)", rrs[0].Name, rrs[0].Status.Phase)
	}
	rr := rrs[0]
	want := map[string]bool{}
	allResolved := true
	for _, i := range idx {
		want[memberID(given[i].Signal.Labels())] = true
		allResolved = allResolved && given[i].Signal.Resolved
	}
	for _, m := range rr.Members() {
		if !want[m.ID] {
			return fmt.Sprintf("its episode %s has member %s, which was never given", rr.Name, m.ID)
		}
	}
	switch got := rr.Status.Resolution != nil; {
	case got && !allResolved:
		return fmt.Sprintf("its episode %s is resolved, but a member still fires", rr.Name)
	case !got && allResolved:
		return fmt.Sprintf("its episode %s is not resolved, but every member was", rr.Name)
	}
	return ""
}

// memberProblem checks one alert's member in its episode's members.
func memberProblem(s load.Signal, members []v1alpha1.Member) string {
	id := memberID(s.Labels())
	i := slices.IndexFunc(members, func(m v1alpha1.Member) bool { return m.ID == id })
	if i < 0 {
		return fmt.Sprintf("member %s is not in its episode", id)
	}
	m := members[i]
	switch {
	case !m.FiringSince.Time.Equal(s.StartsAt):
		return fmt.Sprintf("member %s fires since %s, given since %s", id, clock(m.FiringSince.Time), clock(s.StartsAt))
	case s.Resolved && (!m.Resolved() || m.ResolvedAt == nil || !m.ResolvedAt.Time.Equal(s.EndsAt)):
		return fmt.Sprintf("member %s is not resolved at %s", id, clock(s.EndsAt))
	case !s.Resolved && m.Resolved():
		return fmt.Sprintf("member %s is resolved, but still fires", id)
	}
	return ""
}

// memberID is the README's member identity, computed here rather than by
// the gateway's code: the first 16 hex digits of the SHA-256 of the
// labels sorted by name, each name and value a netstring.
func memberID(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	var b []byte
	for _, k := range names {
		for _, s := range []string{k, labels[k]} {
			b = append(append(append(strconv.AppendInt(b, int64(len(s)), 10), ':'), s...), ',')
		}
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// expectOutage expects every delivery from am that started after from and
// ended before to, while a dependency was out, to be answered one of codes
// (503 with Retry-After among them), and some 503; it returns how many
// were refused.
func expectOutage(t *T, am *alertmanager, from, to time.Time, what string, codes ...int) int {
	names := senders(am)
	var rs []load.Record
	refused := 0
	for _, r := range t.History() {
		if names[r.Sender] && r.Start.After(from) && r.Start.Add(r.Duration).Before(to) {
			rs = append(rs, r)
			if r.Status == 503 {
				refused++
			}
		}
	}
	t.ExpectStatuses(rs, what, codes...)
	t.ExpectRetryAfter(rs)
	t.Expect(refused > 0, "%s: no delivery of alertmanager was refused 503 (%d deliveries)", what, len(rs))
	return refused
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func clock(t time.Time) string { return t.Format("15:04:05.000") }
