// Package scenario defines the resilience scenarios, one file each, and
// their registry. A Scenario is a timeline (its Run function: load, faults,
// heals) plus the expectations and invariant checks it makes on the way;
// chaos/run runs it on a testenv.Env, for `go test` and for the
// gateway-chaos CLI alike. A scenario file uses only T (t.go) and its
// parts — timeline.go, send.go, expect.go — and what this file holds,
// never another scenario file.
package scenario

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/testenv"
)

// Scenario is one resilience scenario.
type Scenario struct {
	// Name is short and unique, e.g. "redis-oom".
	Name string
	// Description is one line for the catalogue.
	Description string
	// Gateways is the number of replicas it needs. Default: 1.
	Gateways int
	// Processes requires gateway processes (built from ./cmd/gateway unless
	// the run names a binary): a process can be paused. Default: false.
	Processes bool
	// InProcess requires in-process gateways (timing hooks). Default:
	// false, processes when the runner is given a gateway binary.
	InProcess bool
	// Configure changes the gateways' configuration from the shipped
	// defaults, e.g. a short deadline to keep the suite fast. Default: the
	// shipped defaults.
	Configure func(*config.Config)
	// Setup, when set, runs before the gateways start, for a scenario that
	// brings a dependency of its own (cleaned up with t.Defer). What it
	// returns configures the gateways and the checks for that dependency
	// and holds the timeline, which reaches what Setup started through its
	// closure. Run is then nil.
	Setup func(t *T) (Prepared, error)
	// Run is the timeline; it reports through T. Nil when Setup or
	// Phases is set.
	Run func(t *T)
	// Phases, instead of Run, is a timeline of independent phases, run in
	// order; Only narrows a scenario to some of them.
	Phases []Phase
	// Replica changes the options of replica i before it starts (its
	// clock, its configuration): replicas that differ, as during a
	// rolling change. Default: all alike.
	Replica func(i int, o *testenv.GatewayOptions)
	// Seed of a random run, kept in its history and its violations.
	// Default: 0.
	Seed int64
	// Order sorts the catalogue, then Name. Default: 0.
	Order int
	// Slow scenarios are skipped by the quick profile. Default: false.
	Slow bool
}

// Phase is one part of a timeline that needs nothing of the others.
type Phase struct {
	Name string
	Run  func(t *T)
}

// Only returns a copy of s that runs only the named phases (a broken
// gateway is shown caught by the phase that exposes it, in seconds).
func (s *Scenario) Only(names ...string) *Scenario {
	c := *s
	c.Phases = nil
	for _, p := range s.Phases {
		for _, n := range names {
			if p.Name == n {
				c.Phases = append(c.Phases, p)
			}
		}
	}
	return &c
}

// timeline is s's Run, or its phases in order.
func (s *Scenario) timeline() func(*T) {
	if s.Phases == nil {
		return s.Run
	}
	return func(t *T) {
		for _, p := range s.Phases {
			t.Phase(p.Name)
			p.Run(t)
		}
	}
}

// Prepared is what a Setup brought for one run.
type Prepared struct {
	// Configure changes the gateways' configuration for it, after the
	// Scenario's Configure. Default: no change.
	Configure func(*config.Config)
	// Redis is what the checks read instead of the environment's Redis.
	// Default: the environment's.
	Redis redis.Cmdable
	// Run is the timeline. Required.
	Run func(t *T)
}

// Prepare runs the scenario's Setup, if any, for the run of t and returns
// how its gateways are configured and its timeline.
func (s *Scenario) Prepare(t *T) (configure func(*config.Config), run func(*T), err error) {
	if s.Setup == nil {
		return s.Configure, s.timeline(), nil
	}
	p, err := s.Setup(t)
	if err != nil {
		return nil, nil, err
	}
	if p.Redis != nil {
		t.readRedis(p.Redis)
	}
	configure = func(c *config.Config) {
		if s.Configure != nil {
			s.Configure(c)
		}
		if p.Configure != nil {
			p.Configure(c)
		}
	}
	return configure, p.Run, nil
}

// shortLease keeps the lease (and so the deadline under it) short, so that
// waiting out a lease costs seconds, not the default 20: a Configure for
// the scenarios that wait one out.
func shortLease(c *config.Config) {
	c.Request.Deadline = config.D(2 * time.Second)
	c.Dedup.Lease = config.D(3 * time.Second)
}

var (
	mu       sync.Mutex
	registry = map[string]*Scenario{}
)

// Register adds a scenario; it panics on a duplicate name, or unless
// exactly one of Run and Setup is set.
func Register(s *Scenario) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[s.Name]; dup {
		panic(fmt.Sprintf("scenario %q registered twice", s.Name))
	}
	set := 0
	for _, ok := range []bool{s.Run != nil, s.Setup != nil, s.Phases != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		panic(fmt.Sprintf("scenario %q: set one of Run, Setup and Phases", s.Name))
	}
	if s.Gateways == 0 {
		s.Gateways = 1
	}
	registry[s.Name] = s
}

// All returns every scenario in catalogue order.
func All() []*Scenario {
	mu.Lock()
	defer mu.Unlock()
	out := make([]*Scenario, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Order != out[j].Order {
			return out[i].Order < out[j].Order
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Get returns a scenario by name.
func Get(name string) (*Scenario, bool) {
	mu.Lock()
	defer mu.Unlock()
	s, ok := registry[name]
	return s, ok
}
