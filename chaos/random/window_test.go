package random

import (
	"strings"
	"testing"
	"time"

	"github.com/alertgate/gateway/chaos/check"
	"github.com/alertgate/gateway/chaos/scenario"
	"github.com/alertgate/gateway/testenv/load"
)

// The window holds the requests a violation names, by its signals and
// request numbers, and the faults around them; not requests whose signal
// merely shares a prefix with one it names.
func TestWindowFindsTheRequestsOfAViolation(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	sig := func(pod string) load.Signal { return load.Signal{Name: "KubePodNotReady", Namespace: "ns", Pod: pod} }
	history := []load.Record{
		{Seq: 1, Start: t0, Signals: []load.Signal{sig("app-1")}, Status: 503},
		{Seq: 2, Start: t0.Add(time.Second), Signals: []load.Signal{sig("app-1"), sig("app-2")}, Status: 201},
		{Seq: 3, Start: t0.Add(2 * time.Second), Signals: []load.Signal{sig("app-12")}, Status: 201},
		{Seq: 4, Start: t0.Add(20 * time.Second), Signals: []load.Signal{sig("app-3")}, Status: 201},
	}
	timeline := []scenario.Event{
		{At: t0.Add(500 * time.Millisecond), Kind: "inject", Detail: "redis-down"},
		{At: t0.Add(15 * time.Second), Kind: "heal", Detail: "redis-down"},
	}
	v := check.Violation{Invariant: check.NoLoss, Detail: "lost", Signals: []string{sig("app-1").Key()}, Requests: []int{4}}
	w := Window(v, history, timeline)
	for _, want := range []string{"request 1 ", "request 2 ", "request 4 ", "inject redis-down", "heal redis-down"} {
		if !strings.Contains(w, want) {
			t.Errorf("window lacks %q:\n%s", want, w)
		}
	}
	if strings.Contains(w, "request 3 ") {
		t.Errorf("window holds request 3, whose signal the violation does not name:\n%s", w)
	}
	if w := Window(check.Violation{Invariant: check.NoOrphan, Detail: "fingerprint x"}, history, timeline); !strings.Contains(w, "no request names it") {
		t.Errorf("a violation naming no request: %s", w)
	}
}
