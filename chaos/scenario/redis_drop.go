package scenario

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/internal/pipeline"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/fault"
	"github.com/alertgate/gateway/testenv/load"
)

func init() {
	Register(&Scenario{
		Name:        "redis-drop-mid-request",
		Description: "Redis connection dropped right after the reservation, then right before the commit: 503 within 5 s, no partial state, one logged failure",
		Order:       2,
		InProcess:   true,
		Configure:   shortLease,
		Run: func(t *T) {
			t.Phase("drop Redis right after the reservation")
			sig := t.Signals("KubePodOOMKilled", 1)
			f := fault.Down{Dep: testenv.Redis}
			t.injectAt(pipeline.AfterReserve, f)
			r := t.Send(0, sig)
			t.ClearHooks()
			t.ExpectStatuses([]load.Record{r}, "Redis dropped after reservation", 503)
			t.ExpectFast([]load.Record{r}, "Redis dropped after reservation", 5*time.Second)
			t.ExpectRetryAfter([]load.Record{r})
			t.ExpectFailureLogged(r, "redis", "renew", "")
			st := t.Check(true)
			t.Expect(len(st.ResourcesFor(sig[0])) == 0, "a resource was created although Redis was lost before the create")
			healed := t.Heal(f)
			t.MeasureRecovery(f.String(), healed)
			t.WaitLease()
			r = t.Retry(0, sig)
			t.ExpectStatuses([]load.Record{r}, "retry", 201)

			t.Phase("drop Redis right before the commit")
			sig = t.Signals("KubePodOOMKilled", 1)
			t.injectAt(pipeline.BeforeCommit, f)
			r = t.Send(0, sig)
			t.ClearHooks()
			t.ExpectStatuses([]load.Record{r}, "Redis dropped before commit", 503)
			t.ExpectFast([]load.Record{r}, "Redis dropped before commit", 5*time.Second)
			t.ExpectFailureLogged(r, "redis", "settle", "")
			// The resource exists but its record could not be written: the
			// answer is 503, the reservation expires, and the retry finds
			// the resource by its name.
			st = t.Check(false)
			t.Expect(len(st.ResourcesFor(sig[0])) == 1, "want the created resource to exist once, found %d", len(st.ResourcesFor(sig[0])))
			t.Heal(f)
			r = t.Retry(0, sig)
			t.ExpectStatuses([]load.Record{r}, "retry after the lost commit", 202)
			t.Check(true)
		},
	})
}

// shortLease keeps the lease (and so the deadline under it) short, so that
// waiting out a lease costs seconds, not the default 20.
func shortLease(c *config.Config) {
	c.Request.Deadline = config.D(2 * time.Second)
	c.Dedup.Lease = config.D(3 * time.Second)
}

// injectAt injects f the first time a request reaches point, in the
// request's own goroutine, and lets the request go on.
func (t *T) injectAt(point pipeline.HookPoint, f fault.Fault) {
	var once sync.Once
	t.SetHook(point, func(context.Context, pipeline.HookPoint, []string) {
		once.Do(func() { t.Inject(f) })
	})
}

// ExpectFailureLogged checks that the gateway wrote one JSON error line
// for the request, with its id, fingerprints, the dependency, the
// operation (if op is set), the error and the duration.
func (t *T) ExpectFailureLogged(r load.Record, dependency, op, kind string) {
	var found []map[string]any
	for _, g := range t.Gateways {
		for _, l := range g.Logs.Lines() {
			if l["msg"] == "signals not stored" && l["request_id"] == r.RequestID {
				found = append(found, l)
			}
		}
	}
	if !t.Expect(len(found) == 1, "request %s (%d): %d failure log lines, want 1", r.RequestID, r.Seq, len(found)) {
		return
	}
	l := found[0]
	fps, _ := l["fingerprints"].([]any)
	msg, _ := l["error"].(string)
	t.Expect(l["level"] == "ERROR" && len(fps) == len(r.Signals) && msg != "" && l["duration_ms"] != nil,
		"failure line lacks level, fingerprints, error or duration: %v", l)
	t.Expect(l["dependency"] == dependency, "failure line names dependency %v, want %s", l["dependency"], dependency)
	if op != "" {
		t.Expect(l["operation"] == op, "failure line names operation %v, want %s", l["operation"], op)
	}
	if kind != "" {
		t.Expect(l["kind"] == kind, "failure line names kind %v, want %s", l["kind"], kind)
	}
}

// statuses lists the status of each record.
func statuses(rs []load.Record) string {
	var out []int
	for _, r := range rs {
		out = append(out, r.Status)
	}
	slices.Sort(out)
	return fmt.Sprint(out)
}
