// Package history is what a chaos run records for the model checker: every
// request with its alerts and its answer, every fault with the gateways it
// blinds, every action of the remediation-controller nemesis, every change
// of the gateway's resources as the verifier's own watch saw it, and the
// Redis records read directly. A History is saved as JSON when a run fails
// and re-checked from testdata, as etcd's robustness tests keep theirs, so
// that a change to the model is tested against real histories.
package history

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/alertgate/gateway/testenv/load"
)

// History of one run.
type History struct {
	Scenario string `json:"scenario"`
	// Seed of a random run; 0 otherwise.
	Seed      int64     `json:"seed,omitempty"`
	Namespace string    `json:"namespace"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	// Lease is the gateways' reservation lease.
	Lease time.Duration `json:"lease"`
	// Terminal are the phases that end an episode.
	Terminal []string `json:"terminal"`
	// Gateways are the base URLs of the replicas.
	Gateways []string `json:"gateways"`
	// Requests, in start order; each carries its alerts and answer.
	Requests []load.Record `json:"requests"`
	// Faults, in inject order.
	Faults []Fault `json:"faults"`
	// Actions of the remediation-controller nemesis, in order.
	Actions []Action `json:"actions"`
	// Resources are the changes of the gateway's resources, in the order
	// the verifier's watch delivered them (resourceVersion order).
	Resources []ResourceEvent `json:"resources"`
	// Records are the Redis records read at checkpoints.
	Records []RecordSnapshot `json:"records"`
	// Final is the state read directly at the end, after quiescence.
	Final Final `json:"final"`
	// Alertmanagers are the real Alertmanagers that sent, with every alert
	// they were given.
	Alertmanagers []Alertmanager `json:"alertmanagers,omitempty"`
}

// Alertmanager is one real Alertmanager (or HA pair) of a run.
type Alertmanager struct {
	Name string `json:"name"`
	// Senders are the Sender names of its deliveries (load.Record.Sender).
	Senders []string `json:"senders"`
	// Given are the alerts it was given, each firing with its resolution.
	Given []load.GivenAlert `json:"given"`
}

// Fault is one injected fault, from inject to heal.
type Fault struct {
	Name string `json:"name"`
	// Blinds says what the fault takes from the gateways: "redis",
	// "kubernetes", or "gateway" (the gateway process itself, paused).
	Blinds []string `json:"blinds"`
	// Gateways are the URLs of the gateways it applies to; empty: all.
	Gateways []string  `json:"gateways,omitempty"`
	Inject   time.Time `json:"inject"`
	// Heal is zero when the fault was never healed in the run.
	Heal time.Time `json:"heal,omitzero"`
}

// Blind values.
const (
	BlindRedis      = "redis"
	BlindKubernetes = "kubernetes"
	BlindGateway    = "gateway"
)

// Action is one act of the remediation-controller nemesis on a resource.
type Action struct {
	Seq int `json:"seq"`
	// At is when the API server accepted it (the call returned).
	At   time.Time `json:"at"`
	Kind string    `json:"kind"`
	// Phase set by a "phase" action.
	Phase    string `json:"phase,omitempty"`
	Resource string `json:"resource"`
	// UID of the object acted on: a name is taken again by the next
	// episode once its object is deleted.
	UID string `json:"uid,omitempty"`
	// Fingerprint and Episode of the resource, Key the identity of its
	// signal (load.SignalOf) and Created its creationTimestamp: the
	// controller read the object before it acted, so an episode the
	// verifier's watch missed (created and deleted while the watch
	// resynced after an API server restart) is still known.
	Fingerprint string    `json:"fingerprint"`
	Episode     int64     `json:"episode"`
	Key         string    `json:"key,omitempty"`
	Created     time.Time `json:"created,omitzero"`
	// Err is set when the API server refused the action (it then did
	// nothing).
	Err string `json:"error,omitempty"`
}

// Action kinds.
const (
	// ActPhase moves the episode to Phase (a terminal one ends it).
	ActPhase = "phase"
	// ActDelete deletes the resource.
	ActDelete = "delete"
	// ActHold adds a finalizer; ActDelete then leaves it terminating until
	// ActRelease removes the finalizer.
	ActHold    = "hold"
	ActRelease = "release"
	// ActStatus writes another status field, as a controller reporting
	// progress does; it ends nothing.
	ActStatus = "status"
)

// Ends reports whether the action ends the episode (given the terminal
// phases): a terminal phase or a deletion.
func (a Action) Ends(terminal map[string]bool) bool {
	if a.Err != "" {
		return false
	}
	return a.Kind == ActDelete || (a.Kind == ActPhase && terminal[a.Phase])
}

// ResourceEvent is one change of a RemediationRequest as a watch of the
// verifier delivered it.
type ResourceEvent struct {
	// At is when the watch delivered it.
	At time.Time `json:"at"`
	// Type is ADDED, MODIFIED or DELETED.
	Type string `json:"type"`
	Name string `json:"name"`
	// UID tells apart two objects of one name: a deleted episode's name is
	// taken again by the next one.
	UID             string `json:"uid"`
	ResourceVersion string `json:"resourceVersion"`
	// Created is the object's creationTimestamp (the API server's clock, to
	// the second): when a watch that was resuming saw an object only later,
	// it still tells when it was created.
	Created     time.Time `json:"created,omitzero"`
	Fingerprint string    `json:"fingerprint"`
	Episode     int64     `json:"episode"`
	// Key is the identity of the signal the resource is for
	// (load.Signal.Key of spec.signalName and spec.targetResource).
	Key      string `json:"key"`
	Phase    string `json:"phase,omitempty"`
	Deleting bool   `json:"deleting,omitempty"`
	Resolved bool   `json:"resolved,omitempty"`
	Count    int64  `json:"count,omitempty"`
}

// Open reports whether the event shows an open episode.
func (e ResourceEvent) Open(terminal map[string]bool) bool {
	return e.Type != "DELETED" && !e.Deleting && !terminal[e.Phase]
}

// RecordSnapshot is one Redis record, read directly.
type RecordSnapshot struct {
	At          time.Time `json:"at"`
	Fingerprint string    `json:"fingerprint"`
	// State is "r" (reserved) or "c" (committed).
	State string `json:"state"`
	Seq   int64  `json:"seq"`
	Count int64  `json:"count"`
	// Written is when the record was last written, by Redis' clock.
	Written time.Time `json:"written,omitzero"`
}

// Final is the state read directly at the end of a run.
type Final struct {
	At        time.Time        `json:"at"`
	Resources []FinalResource  `json:"resources"`
	Records   []RecordSnapshot `json:"records"`
}

// FinalResource is a resource as it was at the end.
type FinalResource struct {
	Name        string `json:"name"`
	UID         string `json:"uid"`
	Fingerprint string `json:"fingerprint"`
	Episode     int64  `json:"episode"`
	Key         string `json:"key"`
	Phase       string `json:"phase,omitempty"`
	Deleting    bool   `json:"deleting,omitempty"`
	Resolved    bool   `json:"resolved,omitempty"`
	Count       int64  `json:"count,omitempty"`
}

// TerminalSet is the set of h.Terminal.
func (h *History) TerminalSet() map[string]bool {
	m := make(map[string]bool, len(h.Terminal))
	for _, p := range h.Terminal {
		m[p] = true
	}
	return m
}

// Sort puts every list in its order (requests by start, the rest by time;
// resource events keep the watch's order).
func (h *History) Sort() {
	sort.SliceStable(h.Requests, func(i, j int) bool { return h.Requests[i].Start.Before(h.Requests[j].Start) })
	sort.SliceStable(h.Faults, func(i, j int) bool { return h.Faults[i].Inject.Before(h.Faults[j].Inject) })
	sort.SliceStable(h.Actions, func(i, j int) bool { return h.Actions[i].At.Before(h.Actions[j].At) })
	sort.SliceStable(h.Records, func(i, j int) bool { return h.Records[i].At.Before(h.Records[j].At) })
}

// Save writes h as indented JSON.
func (h *History) Save(path string) error {
	b, err := json.MarshalIndent(h, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Load reads a history saved by Save.
func Load(path string) (*History, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var h History
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("history: %s: %w", path, err)
	}
	return &h, nil
}

// Log is a concurrency-safe list of one kind of entry, for the producers
// of a history (the nemesis, the resource watch).
type Log[T any] struct {
	mu      sync.Mutex
	entries []T
}

// Add appends e.
func (l *Log[T]) Add(e T) {
	l.mu.Lock()
	l.entries = append(l.entries, e)
	l.mu.Unlock()
}

// All returns a copy of the entries, in the order they were added.
func (l *Log[T]) All() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]T(nil), l.entries...)
}
