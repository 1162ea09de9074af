// Package fault holds the faults that break a testenv.Env, one file each,
// and their catalogue, which random mode draws from and gateway-chaos
// lists (the scenarios and the benchmarks name faults directly). A Fault
// is applied by Inject, which returns the Undo that removes it; a new fault
// is one file with an init that registers it.
package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"

	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/history"
)

// Undo removes an injected fault.
type Undo func(ctx context.Context) error

// Fault is one way to break a dependency.
type Fault interface {
	// String names the fault and its parameters, for timelines and logs.
	String() string
	// Target is the dependency the fault breaks.
	Target() testenv.Dependency
	// Inject applies the fault.
	Inject(ctx context.Context, e *testenv.Env) (Undo, error)
}

// Spec is a catalogue entry.
type Spec struct {
	Name        string
	Description string
	// Targets are the dependencies the fault applies to.
	Targets []testenv.Dependency
	// Random returns an instance with parameters drawn from r, for random
	// schedules.
	Random func(r *rand.Rand, dep testenv.Dependency) Fault
}

var (
	mu      sync.Mutex
	catalog = map[string]Spec{}
)

// Register adds a fault to the catalogue; it panics on a duplicate name.
func Register(s Spec) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := catalog[s.Name]; dup {
		panic(fmt.Sprintf("fault %q registered twice", s.Name))
	}
	catalog[s.Name] = s
}

// Catalog returns every registered fault, sorted by name.
func Catalog() []Spec {
	mu.Lock()
	defer mu.Unlock()
	out := make([]Spec, 0, len(catalog))
	for _, s := range catalog {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

var both = []testenv.Dependency{testenv.Redis, testenv.Kubernetes}

// Blinds says what f takes from the gateways, for a history (history.Blind*
// values), and which gateways it applies to (none: all of them).
func Blinds(f Fault) (blinds, gateways []string) {
	switch f := f.(type) {
	case Together:
		for _, x := range f {
			b, g := Blinds(x)
			blinds, gateways = append(blinds, b...), append(gateways, g...)
		}
		return blinds, gateways
	case Pause:
		if f.Gateway != nil {
			gateways = []string{f.Gateway.URL}
		}
		return []string{history.BlindGateway}, gateways
	}
	switch f.Target() {
	case testenv.Redis:
		return []string{history.BlindRedis}, nil
	case testenv.Kubernetes:
		return []string{history.BlindKubernetes}, nil
	}
	return nil, nil
}
