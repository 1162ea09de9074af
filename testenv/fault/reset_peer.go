package fault

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/alertgate/gateway/testenv"
)

// ResetPeer resets a connection (TCP RST) as soon as the gateway sends on
// it, for a Toxicity share of new connections (Toxiproxy draws once per
// connection): existing connections are closed, so the gateway's
// reconnections fail with that probability; a pooled connection that drew
// no toxic keeps working.
type ResetPeer struct {
	Dep      testenv.Dependency
	Toxicity float64
}

func (f ResetPeer) String() string             { return fmt.Sprintf("%s-reset-peer(p=%.2f)", f.Dep, f.Toxicity) }
func (f ResetPeer) Target() testenv.Dependency { return f.Dep }

func (f ResetPeer) Inject(ctx context.Context, e *testenv.Env) (Undo, error) {
	// Existing connections would keep working: close them so every
	// connection from now on rolls the dice.
	if _, err := (Reset{Dep: f.Dep}).Inject(ctx, e); err != nil {
		return nil, err
	}
	return toxic(ctx, e, f.Dep, "reset_peer", "upstream", f.Toxicity, map[string]any{"timeout": 0})
}

func init() {
	Register(Spec{Name: "reset-peer", Description: "reset a share of connections on first use (probabilistic)", Targets: both,
		Random: func(r *rand.Rand, d testenv.Dependency) Fault {
			return ResetPeer{Dep: d, Toxicity: 0.3 + 0.6*r.Float64()}
		}})
}
