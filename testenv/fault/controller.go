package fault

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/history"
	"github.com/alertgate/gateway/testenv/nemesis"
)

// Controller runs the remediation-controller nemesis (nemesis.Run) while
// injected: it ends, deletes, holds and writes the status of the gateway's
// episodes through the API server directly. It blinds no dependency. Undo
// stops the loop and releases every finalizer it still holds.
type Controller struct {
	// Namespace it acts in. Default: the namespace of the Env's running
	// gateways (testenv.Env.Gateways), which must all share one.
	Namespace string
	// Terminal are the phases that end an episode. Default: those of the
	// gateways of the namespace, else v1alpha1.DefaultTerminalPhases.
	Terminal []v1alpha1.Phase
	// Seed, Every, Jitter, Weights and HoldFor are nemesis.Options.
	Seed          int64
	Every, Jitter time.Duration
	Weights       map[string]int
	HoldFor       time.Duration
	// Log receives every act. Default: none kept.
	Log *history.Log[history.Action]
}

// String names it by its seed: two controllers injected at once need two
// seeds.
func (c Controller) String() string { return fmt.Sprintf("controller(seed=%d)", c.Seed) }

func (Controller) Target() testenv.Dependency { return testenv.Controller }

func (c Controller) Inject(_ context.Context, e *testenv.Env) (Undo, error) {
	ns := c.Namespace
	if ns == "" {
		for _, g := range e.Gateways() {
			switch n := g.Config.Kubernetes.Namespace; {
			case ns == "":
				ns = n
			case n != ns:
				return nil, fmt.Errorf("fault: %s: the gateways use namespaces %s and %s; set Namespace", c, ns, n)
			}
		}
		if ns == "" {
			return nil, fmt.Errorf("fault: %s: no gateway runs, so no namespace; set Namespace", c)
		}
	}
	terminal := c.Terminal
	for _, g := range e.Gateways() {
		if len(terminal) == 0 && g.Config.Kubernetes.Namespace == ns {
			for _, p := range g.Config.Kubernetes.TerminalPhases {
				terminal = append(terminal, v1alpha1.Phase(p))
			}
		}
	}
	n, err := nemesis.New(nemesis.Config{Client: e.Kube, Namespace: ns, Terminal: terminal, Log: c.Log})
	if err != nil {
		return nil, err
	}
	// The loop outlives Inject's context: it runs until Undo.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var result error
	go func() {
		defer close(done)
		result = n.Run(ctx, nemesis.Options{Seed: c.Seed, Every: c.Every, Jitter: c.Jitter, Weights: c.Weights, HoldFor: c.HoldFor})
	}()
	return func(ctx context.Context) error {
		cancel()
		select {
		case <-done:
			return result
		case <-ctx.Done():
			return errors.Join(ctx.Err(), errors.New("fault: controller: still releasing its finalizers"))
		}
	}, nil
}

// RandomWeights are the acts random mode's controller draws: phases
// (mostly terminal), status writes, deletions and deletions held by a
// finalizer; the checks read its actions, so a deletion is not a loss.
var RandomWeights = map[string]int{history.ActPhase: 3, history.ActStatus: 2, history.ActDelete: 1, history.ActHold: 1}

func init() {
	Register(Spec{Name: "controller", Description: "remediation-controller nemesis: ends episodes and writes their status through the API",
		Targets: []testenv.Dependency{testenv.Controller},
		Random: func(r *rand.Rand, _ testenv.Dependency) Fault {
			return Controller{Seed: r.Int64N(1 << 31), Weights: RandomWeights, Log: &history.Log[history.Action]{}}
		}})
}
