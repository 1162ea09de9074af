package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/chaos/check"
	"github.com/alertgate/gateway/chaos/model"
	"github.com/alertgate/gateway/chaos/run"
	"github.com/alertgate/gateway/chaos/scenario"
	"github.com/alertgate/gateway/internal/app"
	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/internal/dedup"
	"github.com/alertgate/gateway/internal/pipeline"
)

// clockName is a deliberately broken creator: it numbers episodes from the
// clock instead of the fingerprint's episodes, so that two requests racing
// to open one episode open two.
type clockName struct{ pipeline.Creator }

func (c clockName) Open(ctx context.Context, s *pipeline.Signal, m []pipeline.Member, seq int64) (pipeline.OpenResult, error) {
	return c.Creator.Open(ctx, s, m, seq+time.Now().UnixNano()%1_000_000)
}

// timeGrid is a deliberately broken creator: it numbers episodes by the
// firing time's 5-minute grid, as the gateway named its resources before
// episodes, so that two alerts of one fingerprint with other startsAt,
// first seen at once, open two episodes.
type timeGrid struct{ pipeline.Creator }

func (c timeGrid) Open(ctx context.Context, s *pipeline.Signal, m []pipeline.Member, _ int64) (pipeline.OpenResult, error) {
	return c.Creator.Open(ctx, s, m, max(1, s.Since().Unix()/300))
}

// absorbing is a deliberately broken episode view: it takes a
// fingerprint's last episode for open even when a controller ended it, so
// that every later occurrence is counted into a finished remediation.
type absorbing struct{ pipeline.Episodes }

func (a absorbing) View(fp string) pipeline.EpisodeView {
	v := a.Episodes.View(fp)
	if v.Open == 0 && v.Next > 1 {
		v.Open = v.Next - 1
	}
	return v
}

// perResource is a deliberately broken creator: resolution is per
// resource, as before members: any member's resolution resolves the
// episode, and a later firing never clears it.
type perResource struct{ pipeline.Creator }

func (c perResource) UpdateMembers(ctx context.Context, fp string, seq int64, ms []pipeline.Member, receivedAt time.Time) (bool, error) {
	resolving := slices.ContainsFunc(ms, func(m pipeline.Member) bool { return !m.ResolvedAt.IsZero() })
	rr := &v1alpha1.RemediationRequest{}
	key := client.ObjectKey{Namespace: c.Namespace(), Name: c.Name(fp, seq)}
	if !resolving && e.Kube.Get(ctx, key, rr) == nil && rr.Status.Resolution != nil {
		return true, nil // a firing again leaves it resolved
	}
	found, err := c.Creator.UpdateMembers(ctx, fp, seq, ms, receivedAt)
	if err != nil || !found || !resolving {
		return found, err
	}
	now := metav1.Now()
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{"resolution": v1alpha1.Resolution{ResolvedAt: now, ReceivedAt: now}}})
	rr.ObjectMeta = metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}
	return true, e.Kube.Status().Patch(ctx, rr, client.RawPatch(types.MergePatchType, patch))
}

// unguardedCommit is a deliberately broken store: it settles what its
// request reserved by committing it, whoever holds the record by then and
// whether or not it is still there (as the settle script did before
// episodes), and whatever the processor decided (which would have released
// an episode a controller ended meanwhile); a commit that comes late then
// names an episode that has ended.
type unguardedCommit struct {
	pipeline.Deduper
	mu       sync.Mutex
	reserved map[string]int64 // token/fingerprint → seq
}

func (u *unguardedCommit) Claim(ctx context.Context, token string, now time.Time, cs []pipeline.Claim) ([]pipeline.ClaimResult, error) {
	res, err := u.Deduper.Claim(ctx, token, now, cs)
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, r := range res {
		if r.State == pipeline.Reserved {
			u.reserved[token+"/"+cs[i].Fingerprint] = r.Seq
		}
	}
	return res, err
}

func (u *unguardedCommit) Settle(ctx context.Context, token string, now time.Time, st []pipeline.Settlement) error {
	key := u.Deduper.(*dedup.Store).Key
	for _, s := range st {
		u.mu.Lock()
		seq := u.reserved[token+"/"+s.Fingerprint]
		u.mu.Unlock()
		if seq == 0 {
			continue
		}
		k := key(s.Fingerprint)
		if err := e.RDB.HSet(ctx, k, "s", "c", "q", seq, "n", max(s.Count, 1), "w", time.Now().Unix()).Err(); err != nil {
			return err
		}
		e.RDB.HDel(ctx, k, "t")
		e.RDB.Expire(ctx, k, time.Minute)
	}
	return nil
}

// heldAnswer is a gateway's answer, held back so that a broken HTTP layer can
// rewrite it.
type heldAnswer struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (a *heldAnswer) Header() http.Header { return a.header }

func (a *heldAnswer) WriteHeader(code int) {
	if a.code == 0 {
		a.code = code
	}
}

func (a *heldAnswer) Write(p []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	return a.body.Write(p)
}

// rewrite is a deliberately broken HTTP layer: each answer for which
// change says so is sent with its code and body instead.
func rewrite(change func(code int, body []byte) (int, []byte, bool)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a := &heldAnswer{header: http.Header{}}
			next.ServeHTTP(a, r)
			code, body := max(a.code, http.StatusOK), a.body.Bytes()
			if c, b, ok := change(code, body); ok {
				code, body = c, b
				a.header.Set("Content-Type", "application/problem+json")
			}
			for k, vs := range a.header {
				w.Header()[k] = vs
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(code)
			_, _ = w.Write(body)
		})
	}
}

// overloaded429 answers overload with 429, as the gateway did before
// episodes: Alertmanager does not retry it.
var overloaded429 = rewrite(func(code int, body []byte) (int, []byte, bool) {
	var p struct {
		Type string `json:"type"`
	}
	if code != http.StatusServiceUnavailable || json.Unmarshal(body, &p) != nil || p.Type != "https://alertgate.io/problems/overloaded" {
		return 0, nil, false
	}
	return http.StatusTooManyRequests, body, true
})

// rejectBatch refuses a whole batch with 400 when one alert of it was
// rejected, as the gateway did before episodes: Alertmanager drops it.
var rejectBatch = rewrite(func(code int, body []byte) (int, []byte, bool) {
	var b struct {
		Rejected []json.RawMessage `json:"rejected"`
	}
	if code < 200 || code > 299 || json.Unmarshal(body, &b) != nil || len(b.Rejected) == 0 {
		return 0, nil, false
	}
	p, _ := json.Marshal(map[string]any{"type": "https://alertgate.io/problems/invalid-payload", "title": "Invalid payload",
		"status": http.StatusBadRequest, "detail": "an alert of the batch is invalid", "rejected": b.Rejected})
	return http.StatusBadRequest, p, true
})

// The scenarios catch deliberately broken gateways, as the README's table
// says: each bug fails the scenario (or its phases) it names, with the
// invariant it names.
func TestScenariosCatchBrokenGateways(t *testing.T) {
	noDeadline := func(s *scenario.Scenario) *scenario.Scenario {
		b := *s
		b.Configure = func(c *config.Config) {
			s.Configure(c)
			// As good as none: the dependency timeouts (5 s) end requests.
			c.Request.Deadline = config.D(25 * time.Second)
			c.Dedup.Lease = config.D(30 * time.Second)
		}
		return &b
	}
	creator := func(w func(pipeline.Creator) pipeline.Creator) app.Wrappers { return app.Wrappers{Creator: w} }
	for _, c := range []struct {
		bug, scenario string
		phases        []string
		invariant     string
		wrap          app.Wrappers
		change        func(*scenario.Scenario) *scenario.Scenario
	}{
		{bug: "no request deadline", scenario: "latency-short-deadline", phases: []string{scenario.PhaseRedisLatency}, invariant: check.Expectations, change: noDeadline},
		{bug: "resource name from the clock", scenario: "two-replicas", phases: []string{scenario.PhaseConcurrentIdentical}, invariant: check.NoDuplicate,
			wrap: creator(func(c pipeline.Creator) pipeline.Creator { return clockName{c} })},
		{bug: "time-grid names", scenario: "controller-lifecycle", phases: []string{scenario.PhaseRacingMembers}, invariant: model.OneOpen,
			wrap: creator(func(c pipeline.Creator) pipeline.Creator { return timeGrid{c} })},
		{bug: "terminal absorption", scenario: "controller-lifecycle", phases: []string{scenario.PhaseTerminal}, invariant: model.NoAbsorb,
			wrap: app.Wrappers{Episodes: func(e pipeline.Episodes) pipeline.Episodes { return absorbing{e} }}},
		{bug: "foreign commit", scenario: "controller-lifecycle", phases: []string{scenario.PhaseLateCommit}, invariant: check.Consistent,
			wrap: app.Wrappers{Deduper: func(d pipeline.Deduper) pipeline.Deduper {
				return &unguardedCommit{Deduper: d, reserved: map[string]int64{}}
			}}},
		{bug: "resolution per resource", scenario: "controller-lifecycle", phases: []string{scenario.PhaseRefire}, invariant: model.Resolution,
			wrap: creator(func(c pipeline.Creator) pipeline.Creator { return perResource{c} })},
		{bug: "429 under overload", scenario: "alertmanager-overload", invariant: check.AllGiven, wrap: app.Wrappers{Handler: overloaded429}},
		{bug: "one bad alert fails the batch", scenario: "alertmanager-api-outage", invariant: check.AllGiven, wrap: app.Wrappers{Handler: rejectBatch}},
		// Last: its creates come 2 s after the answers, some after its
		// gateways stopped, and their connections would count as the next
		// run's leaks.
		{bug: "acknowledge before create", scenario: "kubernetes-api-failure", phases: []string{scenario.PhaseAPIDownAtCreate}, invariant: check.NoLoss,
			wrap: creator(func(c pipeline.Creator) pipeline.Creator { return ackFirst{c} })},
	} {
		t.Run(c.bug, func(t *testing.T) {
			s, ok := scenario.Get(c.scenario)
			if !ok {
				t.Fatalf("no scenario %s", c.scenario)
			}
			if c.phases != nil {
				s = s.Only(c.phases...)
			}
			if c.change != nil {
				s = c.change(s)
			}
			res := run.Run(context.Background(), e, s, run.Options{Wrap: c.wrap, HistoryDir: historyDir})
			var named []check.Violation
			for _, v := range res.Violations {
				if v.Invariant == c.invariant {
					named = append(named, v)
				}
			}
			if res.Passed || len(named) == 0 {
				t.Fatalf("%s passed %s with no %s violation: %v", c.scenario, c.bug, c.invariant, res.Violations)
			}
			t.Logf("%s in %s: %d violation(s) (%s), e.g. %s", c.scenario, res.Duration.Round(time.Millisecond), len(res.Violations), countByInvariant(res.Violations), named[0])
			for _, v := range res.Violations {
				if v.Invariant == check.NoLeak {
					t.Logf("also: %s", v)
				}
			}
		})
	}
}

// countByInvariant says how many violations each invariant had, in order
// of first appearance: "M1 one open episode ×3, I3 no duplicate ×1".
func countByInvariant(vs []check.Violation) string {
	var order []string
	n := map[string]int{}
	for _, v := range vs {
		if n[v.Invariant] == 0 {
			order = append(order, v.Invariant)
		}
		n[v.Invariant]++
	}
	parts := make([]string, len(order))
	for i, inv := range order {
		parts[i] = fmt.Sprintf("%s ×%d", inv, n[inv])
	}
	return strings.Join(parts, ", ")
}
