package scenario

import (
	"sync"
	"time"

	"github.com/alertgate/gateway/chaos/check"
	"github.com/alertgate/gateway/testenv/fault"
	"github.com/alertgate/gateway/testenv/history"
	"github.com/alertgate/gateway/testenv/load"
	"github.com/alertgate/gateway/testenv/nemesis"
)

// recorder keeps what a run's history needs beyond its requests: every
// fault with what it blinds, the remediation controller's actions, and the
// Redis records each check read.
type recorder struct {
	mu      sync.Mutex
	faults  []history.Fault
	open    map[string]int // injected fault name → index in faults
	records []history.RecordSnapshot
	actions history.Log[history.Action]
	nemesis *nemesis.Nemesis
	ams     []*load.Alertmanager
}

func (r *recorder) injected(f fault.Fault, at time.Time) {
	blinds, gateways := fault.Blinds(f)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open == nil {
		r.open = map[string]int{}
	}
	r.open[f.String()] = len(r.faults)
	r.faults = append(r.faults, history.Fault{Name: f.String(), Blinds: blinds, Gateways: gateways, Inject: at})
}

func (r *recorder) healed(name string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i, ok := r.open[name]; ok {
		r.faults[i].Heal = at
		delete(r.open, name)
	}
}

// read keeps the Redis records of a state read at a check.
func (r *recorder) read(st *check.State, at time.Time) {
	snaps := Snapshots(st, at)
	r.mu.Lock()
	r.records = append(r.records, snaps...)
	r.mu.Unlock()
}

// Snapshots are a state's Redis records as a history keeps them.
func Snapshots(st *check.State, at time.Time) []history.RecordSnapshot {
	out := make([]history.RecordSnapshot, 0, len(st.Keys))
	for _, k := range st.Keys {
		out = append(out, history.RecordSnapshot{At: at, Fingerprint: k.Fingerprint, State: k.State, Seq: k.Seq, Count: k.Count, Written: k.Written})
	}
	return out
}

// Alertmanagers are the run's real Alertmanagers, with what each was
// given so far.
func (t *T) Alertmanagers() []history.Alertmanager {
	t.rec.mu.Lock()
	defer t.rec.mu.Unlock()
	var out []history.Alertmanager
	for _, am := range t.rec.ams {
		out = append(out, history.Alertmanager{Name: am.Name(), Senders: am.Senders(), Given: am.Given()})
	}
	return out
}

// Faults are the faults injected so far, with their heal times.
func (t *T) Faults() []history.Fault {
	t.rec.mu.Lock()
	defer t.rec.mu.Unlock()
	return append([]history.Fault(nil), t.rec.faults...)
}

// RecordsRead are the Redis records every check read.
func (t *T) RecordsRead() []history.RecordSnapshot {
	t.rec.mu.Lock()
	defer t.rec.mu.Unlock()
	return append([]history.RecordSnapshot(nil), t.rec.records...)
}

// Actions is where the run's remediation controller records what it does:
// the directed one of Controller and the random one of a fault.Controller
// given it as its Log.
func (t *T) Actions() *history.Log[history.Action] { return &t.rec.actions }

// Controller is a remediation controller acting on the run's resources
// through the API server directly, as a downstream controller does; what
// it does goes into the run's history.
func (t *T) Controller() *nemesis.Nemesis {
	t.rec.mu.Lock()
	defer t.rec.mu.Unlock()
	if t.rec.nemesis == nil {
		n, err := nemesis.New(nemesis.Config{Client: t.Env.Kube, Namespace: t.Namespace(), Log: &t.rec.actions})
		if err != nil {
			t.rec.mu.Unlock()
			t.Fatalf("controller: %v", err)
		}
		t.rec.nemesis = n
	}
	return t.rec.nemesis
}

// deleted are the resources the run's controller deleted.
func (t *T) deleted() map[string]bool {
	out := map[string]bool{}
	for _, a := range t.rec.actions.All() {
		if a.Kind == history.ActDelete && a.Err == "" {
			out[a.Resource] = true
		}
	}
	return out
}
