package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/alertgate/gateway/testenv"
)

// Slicer cuts replies into small packets with a delay between them, which
// exercises partial reads in the clients' protocol parsers.
type Slicer struct {
	Dep   testenv.Dependency
	Bytes int
	Delay time.Duration
}

func (f Slicer) String() string {
	return fmt.Sprintf("%s-slicer(%dB/%s)", f.Dep, f.Bytes, f.Delay)
}
func (f Slicer) Target() testenv.Dependency { return f.Dep }

func (f Slicer) Inject(ctx context.Context, e *testenv.Env) (Undo, error) {
	return toxic(ctx, e, f.Dep, "slicer", "downstream", 1, map[string]any{
		"average_size": f.Bytes, "size_variation": f.Bytes / 2, "delay": f.Delay.Microseconds(),
	})
}

func init() {
	Register(Spec{Name: "slicer", Description: "cut replies into small delayed packets", Targets: both,
		Random: func(r *rand.Rand, d testenv.Dependency) Fault {
			return Slicer{Dep: d, Bytes: 1 + r.IntN(16), Delay: time.Duration(r.IntN(2000)) * time.Microsecond}
		}})
}
