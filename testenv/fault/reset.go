package fault

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/alertgate/gateway/testenv"
)

// Reset closes every existing connection once; new ones work.
type Reset struct{ Dep testenv.Dependency }

func (f Reset) String() string             { return fmt.Sprintf("%s-reset", f.Dep) }
func (f Reset) Target() testenv.Dependency { return f.Dep }

func (f Reset) Inject(_ context.Context, e *testenv.Env) (Undo, error) {
	p := e.Proxy(f.Dep)
	p.Stop()
	if err := p.Start(); err != nil {
		return nil, err
	}
	return func(context.Context) error { return nil }, nil
}

func init() {
	Register(Spec{Name: "reset", Description: "close every existing connection once", Targets: both,
		Random: func(_ *rand.Rand, d testenv.Dependency) Fault { return Reset{Dep: d} }})
}
