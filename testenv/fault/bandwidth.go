package fault

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/alertgate/gateway/testenv"
)

// Bandwidth limits replies to KBps kilobytes per second.
type Bandwidth struct {
	Dep  testenv.Dependency
	KBps int64
}

func (f Bandwidth) String() string             { return fmt.Sprintf("%s-bandwidth(%dKB/s)", f.Dep, f.KBps) }
func (f Bandwidth) Target() testenv.Dependency { return f.Dep }

func (f Bandwidth) Inject(ctx context.Context, e *testenv.Env) (Undo, error) {
	return toxic(ctx, e, f.Dep, "bandwidth", "downstream", 1, map[string]any{"rate": f.KBps})
}

func init() {
	Register(Spec{Name: "bandwidth", Description: "limit reply bandwidth", Targets: both,
		Random: func(r *rand.Rand, d testenv.Dependency) Fault {
			return Bandwidth{Dep: d, KBps: []int64{1, 16, 128}[r.IntN(3)]}
		}})
}
