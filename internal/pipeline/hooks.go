package pipeline

import "context"

// HookPoint names a moment in the request path where a test can act, e.g.
// break a dependency at exactly that moment.
type HookPoint string

const (
	// AfterReserve: the claims are written; reservations are held.
	AfterReserve HookPoint = "after-reserve"
	// BeforeCreate: about to call the Kubernetes API.
	BeforeCreate HookPoint = "before-create"
	// AfterCreate: every create has returned.
	AfterCreate HookPoint = "after-create"
	// BeforeCommit: about to commit or release the reservations.
	BeforeCommit HookPoint = "before-commit"
)

// HookPoints lists every point, in request order.
var HookPoints = []HookPoint{AfterReserve, BeforeCreate, AfterCreate, BeforeCommit}

// Hook runs at a point with the fingerprints the request is handling. It is
// set only from Go code (Options.Hooks), never from the network; with no
// hooks set the request path pays one nil check per point.
type Hook func(ctx context.Context, point HookPoint, fingerprints []string)

// Hooks maps points to hooks.
type Hooks map[HookPoint]Hook

func (h Hooks) run(ctx context.Context, p HookPoint, fps []string) {
	if h == nil {
		return
	}
	if f := h[p]; f != nil {
		f(ctx, p, fps)
	}
}
