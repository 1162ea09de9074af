// Package scenario defines the resilience scenarios, one file each, and
// their registry. A Scenario is a timeline (its Run function: load, faults,
// heals) plus the expectations and invariant checks it makes on the way;
// chaos/run runs it on an Env, for `go test` and for the gateway-chaos CLI
// alike.
package scenario

import (
	"fmt"
	"sort"
	"sync"

	"github.com/alertgate/gateway/internal/config"
)

// Scenario is one resilience scenario.
type Scenario struct {
	// Name is short and unique, e.g. "redis-oom".
	Name string
	// Description is one line for the catalogue.
	Description string
	// Gateways is the number of replicas it needs. Default: 1.
	Gateways int
	// InProcess requires in-process gateways (timing hooks).
	InProcess bool
	// Configure changes the gateways' configuration from the shipped
	// defaults, e.g. a short deadline to keep the suite fast.
	Configure func(*config.Config)
	// Setup, when set, runs before the gateways start and returns a
	// configuration change for them (e.g. the address of a Redis the
	// scenario brings); it cleans up with t.Defer.
	Setup func(t *T) (func(*config.Config), error)
	// Run is the timeline; it reports through T.
	Run func(t *T)
	// Order sorts the catalogue.
	Order int
	// Slow scenarios are skipped by the quick profile.
	Slow bool
}

var (
	mu       sync.Mutex
	registry = map[string]*Scenario{}
)

// Register adds a scenario; it panics on a duplicate name.
func Register(s *Scenario) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[s.Name]; dup {
		panic(fmt.Sprintf("scenario %q registered twice", s.Name))
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
