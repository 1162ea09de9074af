// Package nemesis is a remediation controller that works against the
// gateway: it acts on the gateway's RemediationRequests through the API, as
// a downstream controller does — it ends episodes (a terminal phase),
// deletes them, holds them terminating with a finalizer, and writes its own
// status fields — and records each act in a history.Log with the time the
// API server accepted it, so that a checker can hold the gateway's episodes
// against what was done to them. Scenarios call its methods one by one;
// random mode runs its seeded loop (Run), usually as fault.Controller.
//
// It uses a direct client (never a proxy): its acts must not fail because
// of the gateway's faults.
package nemesis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/testenv/history"
	"github.com/alertgate/gateway/testenv/load"
)

const (
	// Finalizer is the finalizer a hold adds.
	Finalizer = "chaos.alertgate.io/nemesis"
	// PhaseRemediating is the non-terminal phase a controller sets while
	// it works; it ends nothing.
	PhaseRemediating v1alpha1.Phase = "Remediating"
	// ConditionRemediating is the condition type ActStatus writes.
	ConditionRemediating = "Remediating"
)

// Bounds of each act.
const (
	// callTimeout bounds one API call.
	callTimeout = 5 * time.Second
	// conflictRetries bounds the writes of one act that lose a race with
	// another writer (the gateway's status syncer).
	conflictRetries = 5
	// resolveFor bounds how long an act whose call failed in transport
	// reads the object back to learn whether it happened.
	resolveFor = 10 * time.Second
)

// Config of a Nemesis.
type Config struct {
	// Client reads and writes the API server directly. Required.
	Client client.Client
	// Namespace is the only namespace it acts in. Required.
	Namespace string
	// Terminal are the phases that end an episode, as the gateway is
	// configured. Default: v1alpha1.DefaultTerminalPhases.
	Terminal []v1alpha1.Phase
	// Log records every act. Default: a new Log (see Actions).
	Log *history.Log[history.Action]
}

// Nemesis acts on one namespace's RemediationRequests. Its methods are safe
// for concurrent use; each act is recorded once, in the order it returned.
type Nemesis struct {
	c        client.Client
	ns       string
	terminal []v1alpha1.Phase
	open     v1alpha1.PhaseSet
	log      *history.Log[history.Action]

	mu   sync.Mutex
	seq  int
	step int
	// held are the resources carrying Finalizer, by name, with when Run
	// releases them (zero: at the end).
	held map[string]time.Time
}

// New returns a Nemesis.
func New(cfg Config) (*Nemesis, error) {
	if cfg.Client == nil || cfg.Namespace == "" {
		return nil, errors.New("nemesis: a client and a namespace are required")
	}
	if len(cfg.Terminal) == 0 {
		cfg.Terminal = v1alpha1.DefaultTerminalPhases
	}
	if cfg.Log == nil {
		cfg.Log = &history.Log[history.Action]{}
	}
	return &Nemesis{c: cfg.Client, ns: cfg.Namespace, terminal: slices.Clone(cfg.Terminal),
		open: v1alpha1.NewPhaseSet(cfg.Terminal), log: cfg.Log, held: map[string]time.Time{}}, nil
}

// Namespace is the namespace it acts in.
func (n *Nemesis) Namespace() string { return n.ns }

// Actions returns what it recorded, in order.
func (n *Nemesis) Actions() []history.Action { return n.log.All() }

// Held returns the names of the resources it holds with its finalizer,
// sorted.
func (n *Nemesis) Held() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.held))
	for name := range n.held {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// refused is an act the nemesis declined before any write, because the
// resource is not in a state a controller would act on: recorded with its
// error, nothing happened.
type refused struct{ msg string }

func (r *refused) Error() string { return r.msg }

func refuse(format string, args ...any) error { return &refused{fmt.Sprintf(format, args...)} }

// Finish moves an open episode to phase (a terminal one ends it; another,
// such as PhaseRemediating, does not). An episode that is not open is
// refused: a controller does not reopen what has ended.
func (n *Nemesis) Finish(ctx context.Context, name string, phase v1alpha1.Phase) history.Action {
	a, _ := n.write(ctx, history.Action{Kind: history.ActPhase, Phase: string(phase), Resource: name}, true,
		func(rr *v1alpha1.RemediationRequest) error {
			if !n.open.Open(rr) {
				return refuse("nemesis: %s is not open (phase %q, deleting %t)", name, rr.Status.Phase, rr.DeletionTimestamp != nil)
			}
			rr.Status.Phase = phase
			return nil
		}, func(rr *v1alpha1.RemediationRequest) bool { return rr != nil && rr.Status.Phase == phase })
	return a
}

// WriteStatus writes the controller's own status field: condition
// ConditionRemediating, with a message that changes at every call, so that
// the write is a real change the gateway's status writer races with. It
// ends nothing.
func (n *Nemesis) WriteStatus(ctx context.Context, name string) history.Action {
	n.mu.Lock()
	n.step++
	msg := fmt.Sprintf("nemesis step %d", n.step)
	n.mu.Unlock()
	a, _ := n.write(ctx, history.Action{Kind: history.ActStatus, Resource: name}, true,
		func(rr *v1alpha1.RemediationRequest) error {
			meta.SetStatusCondition(&rr.Status.Conditions, metav1.Condition{Type: ConditionRemediating, Status: metav1.ConditionTrue,
				Reason: "NemesisProgress", Message: msg, ObservedGeneration: rr.Generation})
			return nil
		}, func(rr *v1alpha1.RemediationRequest) bool {
			if rr == nil {
				return false
			}
			c := meta.FindStatusCondition(rr.Status.Conditions, ConditionRemediating)
			return c != nil && c.Message == msg
		})
	return a
}

// Hold adds Finalizer, so that a deletion leaves the resource terminating
// until Release. A resource being deleted is refused (the API server allows
// no new finalizer on it).
func (n *Nemesis) Hold(ctx context.Context, name string) history.Action {
	a, err := n.write(ctx, history.Action{Kind: history.ActHold, Resource: name}, false,
		func(rr *v1alpha1.RemediationRequest) error {
			if rr.DeletionTimestamp != nil {
				return refuse("nemesis: %s is being deleted", name)
			}
			if !controllerutil.AddFinalizer(rr, Finalizer) {
				return refuse("nemesis: %s is held already", name)
			}
			return nil
		}, func(rr *v1alpha1.RemediationRequest) bool {
			return rr != nil && controllerutil.ContainsFinalizer(rr, Finalizer)
		})
	if err == nil || errors.Is(err, errIndeterminate) {
		// When the outcome is unknown, Release finds out: nothing may
		// stay stuck.
		n.mu.Lock()
		n.held[name] = time.Time{}
		n.mu.Unlock()
	}
	return a
}

// Delete deletes the resource (the one read, by UID); one being deleted
// already is refused. Held, it stays terminating until Release.
func (n *Nemesis) Delete(ctx context.Context, name string) history.Action {
	a := history.Action{Kind: history.ActDelete, Resource: name}
	rr, err := n.get(ctx, name)
	if err != nil {
		return n.record(a, err)
	}
	describe(&a, rr)
	if rr.DeletionTimestamp != nil {
		return n.record(a, refuse("nemesis: %s is being deleted already", name))
	}
	uid := rr.UID
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	err = n.c.Delete(cctx, rr, client.Preconditions{UID: &uid})
	cancel()
	if ambiguous(err) {
		err = n.resolve(ctx, name, err, func(cur *v1alpha1.RemediationRequest) bool {
			return cur == nil || cur.UID != uid || cur.DeletionTimestamp != nil
		})
	}
	return n.record(a, err)
}

// HoldAndDelete holds the resource, then deletes it: it stays terminating,
// with a deletionTimestamp, until Release. The delete is not tried when the
// hold failed (del is then the zero Action).
func (n *Nemesis) HoldAndDelete(ctx context.Context, name string) (hold, del history.Action) {
	hold = n.Hold(ctx, name)
	if hold.Err != "" {
		return hold, history.Action{}
	}
	return hold, n.Delete(ctx, name)
}

// Release removes Finalizer; a resource being deleted then disappears.
// One that does not carry it is refused.
func (n *Nemesis) Release(ctx context.Context, name string) history.Action {
	a, _ := n.release(ctx, name)
	return a
}

func (n *Nemesis) release(ctx context.Context, name string) (history.Action, error) {
	a, err := n.write(ctx, history.Action{Kind: history.ActRelease, Resource: name}, false,
		func(rr *v1alpha1.RemediationRequest) error {
			if !controllerutil.RemoveFinalizer(rr, Finalizer) {
				return refuse("nemesis: %s is not held", name)
			}
			return nil
		}, func(rr *v1alpha1.RemediationRequest) bool {
			return rr == nil || !controllerutil.ContainsFinalizer(rr, Finalizer)
		})
	var rf *refused
	if err == nil || errors.As(err, &rf) || apierrors.IsNotFound(err) {
		n.mu.Lock()
		delete(n.held, name)
		n.mu.Unlock()
		err = nil
	}
	return a, err
}

// ReleaseAll releases every resource it holds, retrying while the API
// server does not answer (it may be stopped by a fault), for at most 30 s
// in all: no resource may be left stuck terminating.
func (n *Nemesis) ReleaseAll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	backoff := 100 * time.Millisecond
	for {
		var failed []string
		for _, name := range n.Held() {
			if _, err := n.release(ctx, name); err != nil {
				failed = append(failed, name+": "+err.Error())
			}
		}
		if len(failed) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nemesis: still held: %v", failed)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// write applies mutate to the resource as read and writes it with its
// resourceVersion (status: through the status subresource), reading again
// and retrying when another writer came first. happened tells from a read
// (nil: the resource is gone) whether a write whose answer was lost took
// effect. It returns the recorded action and the error behind a.Err.
func (n *Nemesis) write(ctx context.Context, a history.Action, status bool, mutate func(*v1alpha1.RemediationRequest) error,
	happened func(*v1alpha1.RemediationRequest) bool) (history.Action, error) {
	var err error
	for range conflictRetries {
		rr, gerr := n.get(ctx, a.Resource)
		if gerr != nil {
			return n.record(a, gerr), gerr
		}
		describe(&a, rr)
		if merr := mutate(rr); merr != nil {
			return n.record(a, merr), merr
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		if status {
			err = n.c.Status().Update(cctx, rr)
		} else {
			err = n.c.Update(cctx, rr)
		}
		cancel()
		if !apierrors.IsConflict(err) {
			break
		}
	}
	if ambiguous(err) {
		err = n.resolve(ctx, a.Resource, err, happened)
	}
	return n.record(a, err), err
}

func (n *Nemesis) get(ctx context.Context, name string) (*v1alpha1.RemediationRequest, error) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	rr := &v1alpha1.RemediationRequest{}
	if err := n.c.Get(cctx, client.ObjectKey{Namespace: n.ns, Name: name}, rr); err != nil {
		return nil, err
	}
	return rr, nil
}

// ambiguous reports whether a write's error leaves open whether the API
// server did it: not an answer of the API server, nor a refused connection
// (then nothing was sent).
func ambiguous(err error) bool {
	var st apierrors.APIStatus
	return err != nil && !errors.As(err, &st) && !errors.Is(err, syscall.ECONNREFUSED)
}

// errIndeterminate marks an act whose outcome stayed unknown: its call
// failed in transport and the API server did not answer a read within
// resolveFor. It is recorded as not done (a.Err is set).
var errIndeterminate = errors.New("indeterminate")

// resolve reads the resource back until the API server answers (at most
// resolveFor) and returns nil when happened says the lost write took
// effect, the call's error otherwise.
func (n *Nemesis) resolve(ctx context.Context, name string, callErr error, happened func(*v1alpha1.RemediationRequest) bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resolveFor)
	defer cancel()
	for {
		rr, err := n.get(ctx, name)
		if apierrors.IsNotFound(err) {
			rr, err = nil, nil
		}
		if err == nil {
			if happened(rr) {
				return nil
			}
			return callErr
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", errIndeterminate, callErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func describe(a *history.Action, rr *v1alpha1.RemediationRequest) {
	a.Fingerprint, a.Episode, a.UID = rr.Spec.Fingerprint, rr.Spec.Episode, string(rr.UID)
	a.Key, a.Created = load.SignalOf(rr).Key(), rr.CreationTimestamp.Time
}

// record stamps a with the time its call returned and its sequence number,
// and logs it.
func (n *Nemesis) record(a history.Action, err error) history.Action {
	a.At = time.Now()
	if err != nil {
		a.Err = err.Error()
	}
	n.mu.Lock()
	n.seq++
	a.Seq = n.seq
	n.log.Add(a)
	n.mu.Unlock()
	return a
}
