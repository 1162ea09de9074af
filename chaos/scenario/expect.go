package scenario

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/chaos/check"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/load"
)

// Checks are the expectations scenarios share: the invariant suite held
// against both stores, read directly, and the history; the answers'
// statuses, speed and Retry-After; the failure log line; the recovery
// after a heal. A failed expectation is recorded on the Timeline.
type Checks struct {
	t         *T
	stores    check.Stores
	namespace string
	prefix    string
	lease     time.Duration
}

// Lease is the gateways' reservation lease.
func (c *Checks) Lease() time.Duration { return c.lease }

// Verify reads both stores and holds them and the history against suite,
// recording every violation and which invariants were checked. It takes
// its own ctx so that the runner's final word comes even after the
// scenario's context has ended.
func (c *Checks) Verify(ctx context.Context, suite check.Suite) (*check.State, []check.Violation, error) {
	st, err := check.Read(ctx, c.stores, c.namespace, c.prefix)
	if err != nil {
		return nil, nil, err
	}
	c.t.rec.read(st, time.Now())
	if suite.Deleted == nil {
		suite.Deleted = c.t.deleted()
	}
	vs := suite.Check(st, c.t.History())
	c.t.MarkChecked(suite.Invariants()...)
	for _, v := range vs {
		c.t.Violate(v)
	}
	return st, vs, nil
}

// Check holds the state against the suite (I1–I3; I4 too if settled) and
// returns it.
func (c *Checks) Check(settled bool) *check.State {
	if settled {
		c.waitSettles()
	}
	st, _, err := c.Verify(c.t.Ctx, check.Suite{Lease: c.lease, Settled: settled})
	if err != nil {
		c.t.Fatalf("read state: %v", err)
	}
	return st
}

// settleBound is how long a settle may take after its answer: the
// gateway settles asynchronously, so a state read the moment the last
// answer arrived may still show its reservation.
const settleBound = time.Second

// waitSettles waits, at most settleBound, until Redis holds no
// reservation; one a fault left behind is the invariants' to judge.
func (c *Checks) waitSettles() {
	deadline := time.Now().Add(settleBound)
	for time.Now().Before(deadline) && c.t.Ctx.Err() == nil {
		st, err := check.ReadRedis(c.t.Ctx, c.stores.Redis, c.prefix)
		if err != nil || len(st.Reserved()) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ReadRedis returns the gateway keys alone, for when the API server is
// down.
func (c *Checks) ReadRedis() *check.State {
	st, err := check.ReadRedis(c.t.Ctx, c.stores.Redis, c.prefix)
	if err != nil {
		c.t.Fatalf("read Redis: %v", err)
	}
	return st
}

// WaitLease waits out the reservation lease, then holds the state against
// the suite with the lease over: no reservation may be left.
func (c *Checks) WaitLease() {
	c.t.Note("waiting out the %s lease", c.lease)
	select {
	case <-time.After(c.lease + 200*time.Millisecond):
	case <-c.t.Ctx.Done():
		c.t.Fatalf("cancelled")
	}
	if _, _, err := c.Verify(c.t.Ctx, check.Suite{Lease: c.lease, LeaseOver: true}); err != nil {
		c.t.Fatalf("read state: %v", err)
	}
}

// MeasureRecovery sends a new signal every 100 ms from healedAt until one
// is answered 201 (at most 30 s) and records the time to it.
func (c *Checks) MeasureRecovery(faultName string, healedAt time.Time) time.Duration {
	deadline := healedAt.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r := c.t.Send(0, c.t.Signals("RecoveryProbe", 1))
		if r.Status == 201 {
			after := r.Start.Add(r.Duration).Sub(healedAt)
			c.t.recovered(Recovery{Fault: faultName, HealedAt: healedAt, After: after, OK: true})
			c.t.event("recovered", fmt.Sprintf("%s: first 201 after %s", faultName, after.Round(time.Millisecond)))
			return after
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-c.t.Ctx.Done():
			c.t.Fatalf("cancelled")
		}
	}
	c.t.recovered(Recovery{Fault: faultName, HealedAt: healedAt, After: 30 * time.Second})
	c.t.Fatalf("no 201 within 30s of healing %s", faultName)
	return 0
}

// expect records a violation of an expectation about record r unless ok.
func (c *Checks) expect(ok bool, r load.Record, format string, args ...any) bool {
	if !ok {
		keys := make([]string, len(r.Signals))
		for i, s := range r.Signals {
			keys[i] = s.Key()
		}
		c.t.Violate(check.Violation{Invariant: check.Expectations, Detail: fmt.Sprintf(format, args...), Signals: keys, Requests: []int{r.Seq}})
	}
	return ok
}

// ExpectStatuses checks that every record's status is one of codes.
func (c *Checks) ExpectStatuses(rs []load.Record, what string, codes ...int) {
	for _, r := range rs {
		ok := false
		for _, code := range codes {
			ok = ok || r.Status == code
		}
		c.expect(ok, r, "%s: request %d answered %d (%s), want one of %v", what, r.Seq, r.Status, trim(r.Err), codes)
	}
}

// ExpectFast checks that every record was answered within limit.
func (c *Checks) ExpectFast(rs []load.Record, what string, limit time.Duration) {
	for _, r := range rs {
		c.expect(r.Duration <= limit, r, "%s: request %d took %s, over %s", what, r.Seq, r.Duration.Round(time.Millisecond), limit)
	}
}

// ExpectRetryAfter checks that every 503/504 carries Retry-After.
func (c *Checks) ExpectRetryAfter(rs []load.Record) {
	for _, r := range rs {
		if r.Status == 503 || r.Status == 504 {
			c.expect(r.RetryAfter != "", r, "request %d answered %d without Retry-After", r.Seq, r.Status)
		}
	}
}

// ExpectFailureLogged checks that the gateways wrote one JSON error line
// for the request, with its id, fingerprints, the dependency, the
// operation (if op is set), the kind (if kind is set), the error and the
// duration.
func (c *Checks) ExpectFailureLogged(r load.Record, dependency, op, kind string) {
	var found []map[string]any
	for _, g := range c.t.Gateways {
		for _, l := range g.Logs.Lines() {
			if l["msg"] == "signals not stored" && l["request_id"] == r.RequestID {
				found = append(found, l)
			}
		}
	}
	if !c.expect(len(found) == 1, r, "request %s (%d): %d failure log lines, want 1", r.RequestID, r.Seq, len(found)) {
		return
	}
	l := found[0]
	fps, _ := l["fingerprints"].([]any)
	msg, _ := l["error"].(string)
	c.expect(l["level"] == "ERROR" && len(fps) == len(r.Signals) && msg != "" && l["duration_ms"] != nil, r,
		"failure line lacks level, fingerprints, error or duration: %v", l)
	c.expect(l["dependency"] == dependency, r, "failure line names dependency %v, want %s", l["dependency"], dependency)
	if op != "" {
		c.expect(l["operation"] == op, r, "failure line names operation %v, want %s", l["operation"], op)
	}
	if kind != "" {
		c.expect(l["kind"] == kind, r, "failure line names kind %v, want %s", l["kind"], kind)
	}
}

// ExpectSettleFailureLogged checks that the gateway wrote one warning for
// the request's reservations it could not settle after its answer, with
// its id, fingerprints, the dependency, the operation and the error.
func (c *Checks) ExpectSettleFailureLogged(r load.Record) {
	var found []map[string]any
	deadline := time.Now().Add(3 * time.Second) // the settlement runs after the answer
	for len(found) == 0 && time.Now().Before(deadline) {
		for _, g := range c.t.Gateways {
			for _, l := range g.Logs.Lines() {
				if l["msg"] == settleFailure && l["request_id"] == r.RequestID {
					found = append(found, l)
				}
			}
		}
		if len(found) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !c.expect(len(found) == 1, r, "request %s (%d): %d unsettled-reservation lines, want 1", r.RequestID, r.Seq, len(found)) {
		return
	}
	l := found[0]
	fps, _ := l["fingerprints"].([]any)
	msg, _ := l["error"].(string)
	c.expect(l["level"] == "WARN" && len(fps) == len(r.Signals) && msg != "" && l["dependency"] == "redis" && l["operation"] == "settle", r,
		"unsettled-reservation line lacks level, fingerprints, error, dependency redis or operation settle: %v", l)
}

// settleFailure is the gateway's message for a settlement that failed.
const settleFailure = "reservations not settled; they expire with their lease"

// ExpectOneResourceEach expects exactly one resource for each signal in st.
func (c *Checks) ExpectOneResourceEach(st *check.State, sigs []load.Signal, when string) {
	for _, s := range sigs {
		n := len(st.ResourcesFor(s))
		if n != 1 {
			c.t.Violate(check.Violation{Invariant: check.Expectations, Detail: fmt.Sprintf("%s: signal %s has %d resources, want exactly 1", when, s.Key(), n),
				Signals: []string{s.Key()}})
		}
	}
}

// ExpectStatusCount waits (up to 25 s: a scenario that uses it sets a
// status interval of a few seconds) for the resource status of sig to show
// the occurrence count projected from Redis.
func (c *Checks) ExpectStatusCount(sig load.Signal, want int64) {
	var got int64
	err := testenv.Wait(c.t.Ctx, 25*time.Second, 200*time.Millisecond, "occurrence count", func() (bool, error) {
		var list v1alpha1.RemediationRequestList
		if err := c.stores.Kube.List(c.t.Ctx, &list, client.InNamespace(c.namespace)); err == nil {
			st := &check.State{Resources: list.Items}
			for _, r := range st.ResourcesFor(sig) {
				if d := r.Status.Deduplication; d != nil {
					got = d.OccurrenceCount
				}
			}
		}
		return got == want, nil
	})
	if err != nil {
		c.t.Violate(check.Violation{Invariant: check.Expectations, Detail: fmt.Sprintf("status.deduplication.occurrenceCount of %s is %d, want %d", sig.Key(), got, want),
			Signals: []string{sig.Key()}})
	}
}

func trim(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}

// EpisodeOf is the episode an answer names for its i-th signal ("" when
// none).
func EpisodeOf(r load.Record, i int) string {
	for _, o := range r.Outcomes {
		if o.Index == i {
			return o.Name
		}
	}
	return ""
}

// ExpectOpened checks that r opened an episode (201) other than those in
// not, and returns its name.
func (c *Checks) ExpectOpened(r load.Record, what string, not ...string) string {
	name := EpisodeOf(r, 0)
	ok := r.Status == 201 && name != ""
	for _, n := range not {
		ok = ok && name != n
	}
	c.expect(ok, r, "%s: request %d answered %d naming %q, want 201 opening a new episode (not %v)", what, r.Seq, r.Status, name, not)
	return name
}

// ExpectAttached checks that r attached to episode name (202).
func (c *Checks) ExpectAttached(r load.Record, name, what string) {
	got := EpisodeOf(r, 0)
	c.expect(r.Status == 202 && got == name, r, "%s: request %d answered %d naming %q, want 202 attached to %s", what, r.Seq, r.Status, got, name)
}

// ExpectResolved waits (at most 5 s) until episode name is resolved, or
// not, as want says.
func (c *Checks) ExpectResolved(name string, want bool, what string) {
	var rr v1alpha1.RemediationRequest
	err := testenv.Wait(c.t.Ctx, 5*time.Second, 100*time.Millisecond, what, func() (bool, error) {
		if err := c.t.Env.Kube.Get(c.t.Ctx, client.ObjectKey{Namespace: c.namespace, Name: name}, &rr); err != nil {
			return false, nil
		}
		return (rr.Status.Resolution != nil) == want, nil
	})
	c.t.Expect(err == nil, "%s: %s resolved %v, want %v", what, name, rr.Status.Resolution != nil, want)
}

// expectCondition checks that the controller's own status field of
// episode name survived the gateway's status writes, and that those
// happened (the count is projected).
func (c *Checks) expectCondition(name string) {
	var rr v1alpha1.RemediationRequest
	if err := c.t.Env.Kube.Get(c.t.Ctx, client.ObjectKey{Namespace: c.namespace, Name: name}, &rr); err != nil {
		c.t.Expect(false, "read %s: %v", name, err)
		return
	}
	found := false
	for _, cond := range rr.Status.Conditions {
		found = found || cond.Type == "Remediating"
	}
	c.t.Expect(found, "%s lost the controller's condition: %+v", name, rr.Status.Conditions)
	d := rr.Status.Deduplication
	c.t.Expect(d != nil && d.OccurrenceCount >= 4, "%s: occurrence count %v not projected", name, d)
}
