package nemesis

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/testenv/history"
)

// Options of the random loop.
type Options struct {
	// Seed draws the acts: the same seed and the same lists give the same
	// acts. Default: 0.
	Seed int64
	// Every is the mean interval between two acts. Default: 300ms.
	Every time.Duration
	// Jitter: each interval is drawn in Every ± Jitter. Default: Every/3.
	Jitter time.Duration
	// Weights of the kinds drawn: history.ActPhase, ActStatus, ActDelete
	// and ActHold (a hold then a delete, released after HoldFor); a kind
	// absent or 0 is never drawn. Default: DefaultWeights.
	Weights map[string]int
	// HoldFor is how long a held resource stays terminating. Default: 2s.
	HoldFor time.Duration
	// Phases are what ActPhase moves episodes to, in turn, so that even a
	// short run sees each. Default: the terminal phases, then
	// PhaseRemediating.
	Phases []v1alpha1.Phase
	// MaxActs bounds the acts drawn (releases are not counted), and ten
	// times as many the ticks, so that a namespace that stays empty does
	// not keep it forever. Default: 10000.
	MaxActs int
}

// DefaultWeights mostly end episodes, as controllers do, and sometimes
// delete them or hold them terminating.
var DefaultWeights = map[string]int{history.ActPhase: 4, history.ActStatus: 2, history.ActDelete: 1, history.ActHold: 1}

// drawn are the kinds Run draws, in the order their weights are laid out.
var drawn = []string{history.ActPhase, history.ActStatus, history.ActDelete, history.ActHold}

// Run acts on a random open episode every interval until ctx ends or
// MaxActs acts were drawn; before it returns it releases every resource it
// holds (ReleaseAll), and returns what that could not release. Each tick it
// lists the namespace, keeps the open episodes sorted by name and draws the
// act and the episode from the seed, so a run is replayed by its seed given
// the same lists. A tick whose list fails does nothing.
func (n *Nemesis) Run(ctx context.Context, o Options) error {
	if o.Every <= 0 {
		o.Every = 300 * time.Millisecond
	}
	if o.Jitter <= 0 {
		o.Jitter = o.Every / 3
	}
	o.Jitter = min(o.Jitter, o.Every)
	if o.Weights == nil {
		o.Weights = DefaultWeights
	}
	if o.HoldFor <= 0 {
		o.HoldFor = 2 * time.Second
	}
	if len(o.Phases) == 0 {
		o.Phases = append(slices.Clone(n.terminal), PhaseRemediating)
	}
	if o.MaxActs <= 0 {
		o.MaxActs = 10000
	}
	total := 0
	for _, k := range drawn {
		total += max(o.Weights[k], 0)
	}
	if total == 0 {
		return errors.New("nemesis: no kind of act has a weight")
	}
	r := rand.New(rand.NewPCG(uint64(o.Seed), 0x6e656d65736973))
	phase := 0
	for acts, ticks := 0, 0; acts < o.MaxActs && ticks < 10*o.MaxActs; ticks++ {
		wait := o.Every + time.Duration((2*r.Float64()-1)*float64(o.Jitter))
		select {
		case <-ctx.Done():
			return n.ReleaseAll(context.WithoutCancel(ctx))
		case <-time.After(wait):
		}
		n.releaseDue(ctx)
		open, err := n.listOpen(ctx)
		if err != nil || len(open) == 0 {
			continue
		}
		kind := pick(r.IntN(total), o.Weights)
		name := open[r.IntN(len(open))]
		switch kind {
		case history.ActPhase:
			n.Finish(ctx, name, o.Phases[phase%len(o.Phases)])
			phase++
		case history.ActStatus:
			n.WriteStatus(ctx, name)
		case history.ActDelete:
			n.Delete(ctx, name)
		case history.ActHold:
			if hold, _ := n.HoldAndDelete(ctx, name); hold.Err == "" {
				n.mu.Lock()
				n.held[name] = time.Now().Add(o.HoldFor)
				n.mu.Unlock()
			}
		}
		acts++
	}
	return n.ReleaseAll(context.WithoutCancel(ctx))
}

// pick returns the kind whose share of the weights holds x.
func pick(x int, weights map[string]int) string {
	for _, k := range drawn {
		w := max(weights[k], 0)
		if x < w {
			return k
		}
		x -= w
	}
	return drawn[len(drawn)-1]
}

// releaseDue releases the resources Run held whose time is up.
func (n *Nemesis) releaseDue(ctx context.Context) {
	now := time.Now()
	var due []string
	n.mu.Lock()
	for name, at := range n.held {
		if !at.IsZero() && !at.After(now) {
			due = append(due, name)
		}
	}
	n.mu.Unlock()
	slices.Sort(due)
	for _, name := range due {
		n.Release(ctx, name)
	}
}

// listOpen returns the names of the namespace's open episodes, sorted.
func (n *Nemesis) listOpen(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var l v1alpha1.RemediationRequestList
	if err := n.c.List(ctx, &l, client.InNamespace(n.ns)); err != nil {
		return nil, err
	}
	var out []string
	for i := range l.Items {
		if n.open.Open(&l.Items[i]) {
			out = append(out, l.Items[i].Name)
		}
	}
	slices.SortFunc(out, strings.Compare)
	return out, nil
}
