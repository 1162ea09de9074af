package fault

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/alertgate/gateway/testenv"
)

// Blackhole accepts connections and silently drops every byte both ways
// (Toxiproxy's timeout toxic with no timeout), as a partition does: the
// gateway sees no error, only silence, until its own timeouts fire.
type Blackhole struct{ Dep testenv.Dependency }

func (f Blackhole) String() string             { return fmt.Sprintf("%s-blackhole", f.Dep) }
func (f Blackhole) Target() testenv.Dependency { return f.Dep }

func (f Blackhole) Inject(ctx context.Context, e *testenv.Env) (Undo, error) {
	up, err := toxic(ctx, e, f.Dep, "timeout", "upstream", 1, map[string]any{"timeout": 0})
	if err != nil {
		return nil, err
	}
	down, err := toxic(ctx, e, f.Dep, "timeout", "downstream", 1, map[string]any{"timeout": 0})
	if err != nil {
		_ = up(ctx)
		return nil, err
	}
	return undoAll([]Undo{up, down}), nil
}

func init() {
	Register(Spec{Name: "blackhole", Description: "drop every byte silently (partition)", Targets: both,
		Random: func(_ *rand.Rand, d testenv.Dependency) Fault { return Blackhole{Dep: d} }})
}
