package fault

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/alertgate/gateway/chaos/env"
)

// Blackhole accepts connections and silently drops every byte both ways
// (Toxiproxy's timeout toxic with no timeout), as a partition does: the
// gateway sees no error, only silence, until its own timeouts fire.
type Blackhole struct{ Dep env.Dependency }

func (f Blackhole) String() string         { return fmt.Sprintf("%s-blackhole", f.Dep) }
func (f Blackhole) Target() env.Dependency { return f.Dep }

func (f Blackhole) Inject(ctx context.Context, e *env.Env) (Undo, error) {
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
		Random: func(_ *rand.Rand, d env.Dependency) Fault { return Blackhole{Dep: d} }})
}
