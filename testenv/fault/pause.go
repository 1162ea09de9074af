package fault

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"

	"github.com/alertgate/gateway/internal/localdeps"
	"github.com/alertgate/gateway/testenv"
)

// Pause stops a gateway process with SIGSTOP, as a long GC pause, a
// throttled container or a frozen VM does: its connections stay open and
// its dependencies see nothing, but it answers nothing (requests wait in
// its listen backlog) and its leases run out. Undo sends SIGCONT. An
// in-process gateway cannot be paused: Inject refuses it.
type Pause struct{ Gateway *testenv.Gateway }

// String names the gateway by its port, which stays the same while it runs.
func (f Pause) String() string {
	port := "?"
	if f.Gateway != nil {
		if u, err := url.Parse(f.Gateway.URL); err == nil {
			port = u.Port()
		}
	}
	return "gateway-pause(" + port + ")"
}

func (Pause) Target() testenv.Dependency { return testenv.GatewayProcess }

func (f Pause) Inject(context.Context, *testenv.Env) (Undo, error) {
	if f.Gateway == nil {
		return nil, errors.New("fault: gateway-pause: no gateway")
	}
	pid := f.Gateway.PID()
	if pid == 0 {
		return nil, fmt.Errorf("fault: %s: an in-process gateway cannot be paused; run gateways as processes (GatewayOptions.Bin)", f)
	}
	if err := localdeps.Freeze(pid); err != nil {
		return nil, fmt.Errorf("fault: %s: %w", f, err)
	}
	return func(context.Context) error {
		if err := localdeps.Thaw(pid); err != nil {
			return fmt.Errorf("fault: %s: %w", f, err)
		}
		return nil
	}, nil
}

// PauseSpec is the catalogue entry of Pause for a run whose gateways are
// processes: its Random draws one of them (the Dependency is ignored). It
// is not registered, because random mode runs in-process gateways by
// default, which cannot be paused; a random run of process gateways adds it
// to fault.Catalog()'s entries itself. It returns false when none of
// gateways is a process.
func PauseSpec(gateways []*testenv.Gateway) (Spec, bool) {
	var procs []*testenv.Gateway
	for _, g := range gateways {
		if g.PID() != 0 {
			procs = append(procs, g)
		}
	}
	if len(procs) == 0 {
		return Spec{}, false
	}
	return Spec{Name: "gateway-pause", Description: "SIGSTOP a gateway process; SIGCONT it",
		Targets: []testenv.Dependency{testenv.GatewayProcess},
		Random: func(r *rand.Rand, _ testenv.Dependency) Fault {
			return Pause{Gateway: procs[r.IntN(len(procs))]}
		}}, true
}
