package chaos_test

import (
	"context"
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
	}{
		{"acknowledge before create", "kubernetes-api-failure", check.NoLoss, func(c pipeline.Creator) pipeline.Creator { return ackFirst{c} }, nil},
		{"no request deadline", "latency-short-deadline", check.Expectations, nil, noDeadline},
		{"resource name from the clock", "two-replicas", check.NoDuplicate, func(c pipeline.Creator) pipeline.Creator { return clockName{c} }, nil},
	} {
		t.Run(c.bug, func(t *testing.T) {
			s, ok := scenario.Get(c.scenario)
			if !ok {
				t.Fatalf("no scenario %s", c.scenario)
			}
			if c.change != nil {
				s = c.change(s)
			}
			res := run.Run(context.Background(), e, s, run.Options{Wrap: app.Wrappers{Creator: c.wrap}})
			var named []check.Violation
			for _, v := range res.Violations {
				if v.Invariant == c.invariant {
					named = append(named, v)
				}
			}
			if res.Passed || len(named) == 0 {
				t.Fatalf("%s passed %s with no %s violation: %v", c.scenario, c.bug, c.invariant, res.Violations)
			}
			t.Logf("%s: %d violation(s), e.g. %s", c.scenario, len(res.Violations), named[0])
		})
	}
}
