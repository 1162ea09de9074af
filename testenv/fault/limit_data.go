package fault

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/alertgate/gateway/testenv"
)

// LimitData closes a Toxicity share of connections after Bytes bytes sent
// to the dependency: a command is cut in the middle.
type LimitData struct {
	Dep      testenv.Dependency
	Bytes    int64
	Toxicity float64
}

func (f LimitData) String() string {
	return fmt.Sprintf("%s-limit-data(%dB,p=%.2f)", f.Dep, f.Bytes, f.Toxicity)
}
func (f LimitData) Target() testenv.Dependency { return f.Dep }

func (f LimitData) Inject(ctx context.Context, e *testenv.Env) (Undo, error) {
	if _, err := (Reset{Dep: f.Dep}).Inject(ctx, e); err != nil {
		return nil, err
	}
	return toxic(ctx, e, f.Dep, "limit_data", "upstream", f.Toxicity, map[string]any{"bytes": f.Bytes})
}

func init() {
	Register(Spec{Name: "limit-data", Description: "close a share of connections after N bytes", Targets: both,
		Random: func(r *rand.Rand, d testenv.Dependency) Fault {
			return LimitData{Dep: d, Bytes: int64(200 + r.IntN(4000)), Toxicity: 0.3 + 0.6*r.Float64()}
		}})
}
