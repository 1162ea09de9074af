package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/alertgate/gateway/testenv"
)

// Latency delays every reply from the dependency by Latency ± Jitter.
type Latency struct {
	Dep     testenv.Dependency
	Latency time.Duration
	Jitter  time.Duration
}

func (f Latency) String() string {
	return fmt.Sprintf("%s-latency(%s±%s)", f.Dep, f.Latency, f.Jitter)
}
func (f Latency) Target() testenv.Dependency { return f.Dep }

func (f Latency) Inject(ctx context.Context, e *testenv.Env) (Undo, error) {
	return toxic(ctx, e, f.Dep, "latency", "downstream", 1, map[string]any{
		"latency": f.Latency.Milliseconds(), "jitter": f.Jitter.Milliseconds(),
	})
}

func init() {
	Register(Spec{Name: "latency", Description: "delay every reply (with jitter)", Targets: both,
		Random: func(r *rand.Rand, d testenv.Dependency) Fault {
			l := []time.Duration{50 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second, 10 * time.Second}[r.IntN(4)]
			return Latency{Dep: d, Latency: l, Jitter: l / 5}
		}})
}
