package fault

import (
	"context"
	"strings"

	"github.com/alertgate/gateway/testenv"
)

// Together injects several faults at the same moment and undoes them
// together.
type Together []Fault

func (f Together) String() string {
	names := make([]string, len(f))
	for i, x := range f {
		names[i] = x.String()
	}
	return strings.Join(names, "+")
}

// Target is the first fault's target.
func (f Together) Target() testenv.Dependency { return f[0].Target() }

func (f Together) Inject(ctx context.Context, e *testenv.Env) (Undo, error) {
	var undos []Undo
	for _, x := range f {
		u, err := x.Inject(ctx, e)
		if err != nil {
			_ = undoAll(undos)(ctx)
			return nil, err
		}
		undos = append(undos, u)
	}
	return undoAll(undos), nil
}
