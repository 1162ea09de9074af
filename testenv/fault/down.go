package fault

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/alertgate/gateway/testenv"
)

// Down disables the proxy: existing connections close and new ones are
// refused, as when the dependency's host goes away.
type Down struct{ Dep testenv.Dependency }

func (f Down) String() string             { return fmt.Sprintf("%s-down", f.Dep) }
func (f Down) Target() testenv.Dependency { return f.Dep }

func (f Down) Inject(_ context.Context, e *testenv.Env) (Undo, error) {
	p := e.Proxy(f.Dep)
	p.Stop()
	return func(context.Context) error { return p.Start() }, nil
}

func init() {
	Register(Spec{Name: "down", Description: "network down: connections closed, new ones refused", Targets: both,
		Random: func(_ *rand.Rand, d testenv.Dependency) Fault { return Down{Dep: d} }})
}
