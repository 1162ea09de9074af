package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/alertgate/gateway/chaos/check"
	"github.com/alertgate/gateway/chaos/run"
	"github.com/alertgate/gateway/chaos/scenario"
	"github.com/alertgate/gateway/internal/app"
	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/internal/pipeline"
)

// clockName is a deliberately broken creator: it numbers episodes from the
// clock instead of the fingerprint's episodes, so that two requests racing
// to open one episode open two.
type clockName struct{ pipeline.Creator }

func (c clockName) Open(ctx context.Context, s *pipeline.Signal, m []pipeline.Member, seq int64) (pipeline.OpenResult, error) {
	return c.Creator.Open(ctx, s, m, seq+time.Now().UnixNano()%1_000_000)
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
// says: each bug fails the scenario it names, with the invariant it names.
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
	for _, c := range []struct {
		bug, scenario, invariant string
		wrap                     func(pipeline.Creator) pipeline.Creator
		change                   func(*scenario.Scenario) *scenario.Scenario
		handler                  func(http.Handler) http.Handler
	}{
		{"acknowledge before create", "kubernetes-api-failure", check.NoLoss, func(c pipeline.Creator) pipeline.Creator { return ackFirst{c} }, nil, nil},
		{"no request deadline", "latency-short-deadline", check.Expectations, nil, noDeadline, nil},
		{"resource name from the clock", "two-replicas", check.NoDuplicate, func(c pipeline.Creator) pipeline.Creator { return clockName{c} }, nil, nil},
		{"429 under overload", "alertmanager-overload", check.AllGiven, nil, nil, overloaded429},
		{"one bad alert fails the batch", "alertmanager-api-outage", check.AllGiven, nil, nil, rejectBatch},
	} {
		t.Run(c.bug, func(t *testing.T) {
			s, ok := scenario.Get(c.scenario)
			if !ok {
				t.Fatalf("no scenario %s", c.scenario)
			}
			if c.change != nil {
				s = c.change(s)
			}
			res := run.Run(context.Background(), e, s, run.Options{Wrap: app.Wrappers{Creator: c.wrap, Handler: c.handler}})
			var named []check.Violation
			for _, v := range res.Violations {
				if v.Invariant == c.invariant {
					named = append(named, v)
				}
			}
			if res.Passed || len(named) == 0 {
				t.Fatalf("%s passed %s with no %s violation: %v", c.scenario, c.bug, c.invariant, res.Violations)
			}
			t.Logf("%s in %s: %d violation(s), %d of %s, e.g. %s", c.scenario, res.Duration.Round(time.Millisecond), len(res.Violations), len(named), c.invariant, named[0])
		})
	}
}
