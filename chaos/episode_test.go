package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/internal/pipeline"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/fault"
)

// The episode model, end to end: one RemediationRequest is one episode of a
// fingerprint, open while it exists, is not being deleted and its phase is
// not terminal. Each test reproduces one of the defects of the time-grid
// design (issue 11) through the gateway's HTTP interface, a remediation
// controller's writes and direct reads of the API server, and fails if the
// defect comes back.

// amAlert is one alert as Alertmanager sends it.
type amAlert struct {
	labels   map[string]string
	startsAt time.Time
	endsAt   time.Time // zero: firing
}

func (a amAlert) resolved(at time.Time) amAlert { a.endsAt = at; return a }

func (a amAlert) with(k, v string) amAlert {
	l := make(map[string]string, len(a.labels)+1)
	for x, y := range a.labels {
		l[x] = y
	}
	l[k] = v
	a.labels = l
	return a
}

func podAlert(name, ns, pod string, startsAt time.Time) amAlert {
	return amAlert{labels: map[string]string{"alertname": name, "namespace": ns, "pod": pod, "container": "app",
		"severity": "critical", "job": "kube-state-metrics"}, startsAt: startsAt}
}

// webhook renders alerts as one Alertmanager webhook, payload version 4;
// firing alerts carry endsAt 0001-01-01 as Alertmanager's do.
func webhook(alerts ...amAlert) []byte {
	msg := struct {
		template.Data
		Version  string `json:"version"`
		GroupKey string `json:"groupKey"`
	}{Version: "4", GroupKey: "{}:{}"}
	msg.Receiver, msg.Status = "alertgate", "firing"
	msg.GroupLabels, msg.CommonLabels, msg.CommonAnnotations = template.KV{}, template.KV{}, template.KV{}
	for i, a := range alerts {
		st := "firing"
		if !a.endsAt.IsZero() {
			st = "resolved"
		}
		msg.Alerts = append(msg.Alerts, template.Alert{Status: st, Labels: a.labels,
			Annotations: template.KV{"summary": "test"}, StartsAt: a.startsAt, EndsAt: a.endsAt,
			GeneratorURL: "http://prometheus:9090/graph", Fingerprint: fmt.Sprintf("%016x", i)})
	}
	b, err := json.Marshal(msg)
	if err != nil {
		panic(err)
	}
	return b
}

func sendAlerts(t *testing.T, url string, alerts ...amAlert) answer {
	t.Helper()
	return post(t, url, "/api/v1/signals/prometheus", "application/json", webhook(alerts...))
}

// nameOf is the resource an answer names for its i-th signal.
func nameOf(t *testing.T, a answer, i int) string {
	t.Helper()
	s := signals(a)
	if i >= len(s) {
		t.Fatalf("answer %d has %d signals, want at least %d: %v", a.status, len(s), i+1, a.body)
	}
	n, _ := s[i]["name"].(string)
	return n
}

func getRR(t *testing.T, ns, name string) (*v1alpha1.RemediationRequest, bool) {
	t.Helper()
	var rr v1alpha1.RemediationRequest
	err := e.Kube.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &rr)
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return &rr, true
}

var terminal = map[v1alpha1.Phase]bool{"Completed": true, "Failed": true, "TimedOut": true, "Skipped": true, "Cancelled": true}

func isOpen(rr *v1alpha1.RemediationRequest) bool {
	return rr.DeletionTimestamp == nil && !terminal[rr.Status.Phase]
}

// openFor lists the open episodes whose signal is name on pod.
func openFor(t *testing.T, ns, name, pod string) []v1alpha1.RemediationRequest {
	t.Helper()
	var out []v1alpha1.RemediationRequest
	for _, rr := range list(t, ns) {
		if rr.Spec.SignalName == name && rr.Spec.TargetResource.Name == pod && isOpen(&rr) {
			out = append(out, rr)
		}
	}
	return out
}

// expectAttachedToOpen checks that an acknowledged firing occurrence names
// an existing open episode of its signal, and that it is the only one.
func expectAttachedToOpen(t *testing.T, ns string, a answer, name, pod string) string {
	t.Helper()
	if a.status != 201 && a.status != 202 {
		t.Fatalf("answered %d, want 201 or 202: %v", a.status, a.body)
	}
	n := nameOf(t, a, 0)
	rr, ok := getRR(t, ns, n)
	switch {
	case !ok:
		t.Errorf("answered %d naming %s, which does not exist", a.status, n)
	case !isOpen(rr):
		t.Errorf("answered %d naming %s, which has ended (phase %q, deleting %v)", a.status, n, rr.Status.Phase, rr.DeletionTimestamp != nil)
	}
	if open := openFor(t, ns, name, pod); len(open) != 1 {
		var names []string
		for _, o := range open {
			names = append(names, o.Name)
		}
		t.Errorf("%d open episodes of %s on %s, want 1: %v", len(open), name, pod, names)
	}
	return n
}

// setPhase is a remediation controller moving an episode on.
func setPhase(t *testing.T, ns, name string, p v1alpha1.Phase) {
	t.Helper()
	ctx := context.Background()
	for attempt := 0; ; attempt++ {
		rr, ok := getRR(t, ns, name)
		if !ok {
			t.Fatalf("set phase %s: %s does not exist", p, name)
		}
		rr.Status.Phase = p
		err := e.Kube.Status().Update(ctx, rr)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) || attempt > 5 {
			t.Fatal(err)
		}
	}
}

// episodeGateway starts an in-process gateway for the episode tests, with
// a short lease and deadline so that waiting out a record costs seconds.
func episodeGateway(t *testing.T, ns string, configure func(*config.Config), hooks pipeline.Hooks) *testenv.Gateway {
	t.Helper()
	ctx := context.Background()
	if err := e.CreateNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	g, err := e.StartGateway(ctx, envOptions(ns, func(c *config.Config) {
		c.Request.Deadline = config.D(2 * time.Second)
		c.Dedup.Lease = config.D(3 * time.Second)
		if configure != nil {
			configure(c)
		}
	}, hooks))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Errorf("stop gateway: %v", err)
		}
	})
	return g
}

// watchLag is how long the tests give the gateway to learn of a
// controller's write: well inside the episode model's 2 s bound, and
// long enough for a watch event on a loaded 2-core machine.
const watchLag = 1200 * time.Millisecond

func redisDataLoss(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	undo, err := fault.RedisKill{}.Inject(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if err := undo(ctx); err != nil {
		t.Fatal(err)
	}
}

func injectFault(t *testing.T, f fault.Fault) func() {
	t.Helper()
	undo, err := f.Inject(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	heal := func() {
		once.Do(func() {
			if err := undo(context.Background()); err != nil {
				t.Errorf("heal %s: %v", f, err)
			}
		})
	}
	t.Cleanup(heal)
	return heal
}

// gates blocks the request path at hook points, by order of arrival, so a
// test can build an exact interleaving of concurrent requests. A gate that
// is never reached blocks nothing; one that is reached waits for its
// release, or at most 20 s.
type gates struct {
	mu       sync.Mutex
	arrivals map[pipeline.HookPoint]int
	blocks   map[string]*gateState
}

type gateState struct {
	reached, release chan struct{}
	once             sync.Once
}

func newGates() *gates {
	return &gates{arrivals: map[pipeline.HookPoint]int{}, blocks: map[string]*gateState{}}
}

func gateKey(p pipeline.HookPoint, n int) string { return fmt.Sprintf("%s#%d", p, n) }

// at registers a gate at the n-th arrival at p.
func (g *gates) at(p pipeline.HookPoint, n int) *gateState {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := &gateState{reached: make(chan struct{}), release: make(chan struct{})}
	g.blocks[gateKey(p, n)] = s
	return s
}

func (s *gateState) open() { s.once.Do(func() { close(s.release) }) }

func (g *gates) hooks() pipeline.Hooks {
	h := pipeline.Hooks{}
	for _, p := range pipeline.HookPoints {
		h[p] = func(ctx context.Context, p pipeline.HookPoint, _ []string) {
			g.mu.Lock()
			g.arrivals[p]++
			s := g.blocks[gateKey(p, g.arrivals[p])]
			g.mu.Unlock()
			if s == nil {
				return
			}
			close(s.reached)
			select {
			case <-s.release:
			case <-time.After(20 * time.Second):
			}
		}
	}
	return h
}

// async sends in the background; the answer arrives on the channel.
func async(t *testing.T, url string, alerts ...amAlert) chan answer {
	ch := make(chan answer, 1)
	go func() { ch <- sendAlerts(t, url, alerts...) }()
	return ch
}

// reachedOrDone waits until the gate is reached or the request answered.
func reachedOrDone(t *testing.T, s *gateState, ch chan answer, what string) (answer, bool) {
	t.Helper()
	select {
	case <-s.reached:
		return answer{}, false
	case a := <-ch:
		return a, true
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: neither reached its gate nor answered within 10 s", what)
	}
	return answer{}, false
}

func await(t *testing.T, ch chan answer, what string) answer {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no answer within 30 s", what)
	}
	return answer{}
}

// Defect 1: a commit landed on another request's reservation. A reserves
// and blocks before its create; B, the same alert, finds A in flight and
// creates; A's create fails and A releases; C, the same fingerprint with
// another startsAt, finds no record and reserves; B's commit must not mark
// C's reservation as its own, and C's failed create must not leave Redis
// naming a resource that does not exist.
func TestEpisodeCommitNeverAdoptsAnotherReservation(t *testing.T) {
	const ns = "e2e-episode-foreign-commit"
	gs := newGates()
	g := episodeGateway(t, ns, func(c *config.Config) {
		c.Request.Deadline = config.D(10 * time.Second)
		c.Dedup.Lease = config.D(20 * time.Second)
	}, gs.hooks())
	now := time.Now().Truncate(time.Second)
	a1 := podAlert("KubePodCrashLooping", ns, "api-0", now.Add(-20*time.Minute))
	// Another firing of the same fingerprint, in another naming bucket of
	// the time-grid design.
	a2 := a1
	a2.startsAt = now.Add(-4 * time.Minute)

	gateA := gs.at(pipeline.BeforeCreate, 1)
	ansA := async(t, g.URL, a1)
	if _, done := reachedOrDone(t, gateA, ansA, "A"); done {
		t.Fatal("A answered before it reached its create")
	}
	gateB := gs.at(pipeline.BeforeCommit, 1)
	ansB := async(t, g.URL, a1)
	_, bDone := reachedOrDone(t, gateB, ansB, "B")

	heal := injectFault(t, fault.Down{Dep: testenv.Kubernetes})
	gateA.open()
	if a := await(t, ansA, "A"); a.status < 500 {
		t.Fatalf("A's create could not reach the API, yet A was answered %d: %v", a.status, a.body)
	}
	heal()

	gateC := gs.at(pipeline.BeforeCreate, 3)
	ansC := async(t, g.URL, a2)
	_, cDone := reachedOrDone(t, gateC, ansC, "C")
	gateB.open()
	if !bDone {
		if a := await(t, ansB, "B"); a.status != 201 && a.status != 202 {
			t.Fatalf("B answered %d: %v", a.status, a.body)
		}
	}
	if !cDone {
		heal = injectFault(t, fault.Down{Dep: testenv.Kubernetes})
		gateC.open()
		await(t, ansC, "C")
		heal()
	}
	time.Sleep(watchLag)
	d := sendAlerts(t, g.URL, a1)
	expectAttachedToOpen(t, ns, d, "KubePodCrashLooping", "api-0")
}

// Defect 2: a finished, deleted or terminating episode never absorbs an
// occurrence: the next one opens a new episode.
func TestEpisodeEndedNeverAbsorbs(t *testing.T) {
	const ns = "e2e-episode-ended"
	g := episodeGateway(t, ns, nil, nil)
	ctx := context.Background()
	a := podAlert("KubePodCrashLooping", ns, "api-0", time.Now().Add(-time.Minute).Truncate(time.Second))

	first := sendAlerts(t, g.URL, a)
	if first.status != 201 {
		t.Fatalf("first occurrence answered %d: %v", first.status, first.body)
	}
	n1 := nameOf(t, first, 0)
	setPhase(t, ns, n1, "Completed")
	time.Sleep(watchLag)
	second := sendAlerts(t, g.URL, a)
	n2 := expectAttachedToOpen(t, ns, second, "KubePodCrashLooping", "api-0")
	if second.status != 201 || n2 == n1 {
		t.Errorf("after the controller completed %s the occurrence was answered %d naming %s, want 201 and a new episode", n1, second.status, n2)
	}

	rr, ok := getRR(t, ns, n2)
	if !ok {
		t.Fatalf("%s does not exist", n2)
	}
	if err := e.Kube.Delete(ctx, rr); err != nil {
		t.Fatal(err)
	}
	time.Sleep(watchLag)
	third := sendAlerts(t, g.URL, a)
	n3 := expectAttachedToOpen(t, ns, third, "KubePodCrashLooping", "api-0")
	if third.status != 201 {
		t.Errorf("after the controller deleted %s the occurrence was answered %d naming %s, want 201", n2, third.status, n3)
	}

	// Deleted, but held by a controller's finalizer: terminating.
	rr, ok = getRR(t, ns, n3)
	if !ok {
		t.Fatalf("%s does not exist", n3)
	}
	rr.Finalizers = append(rr.Finalizers, "remediation.example.com/cleanup")
	if err := e.Kube.Update(ctx, rr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if rr, ok := getRR(t, ns, n3); ok {
			rr.Finalizers = nil
			_ = e.Kube.Update(ctx, rr)
		}
	})
	if err := e.Kube.Delete(ctx, rr); err != nil {
		t.Fatal(err)
	}
	time.Sleep(watchLag)
	fourth := sendAlerts(t, g.URL, a)
	n4 := expectAttachedToOpen(t, ns, fourth, "KubePodCrashLooping", "api-0")
	if fourth.status != 201 || n4 == n3 {
		t.Errorf("after %s started terminating the occurrence was answered %d naming %s, want 201 and a new episode", n3, fourth.status, n4)
	}
}

// Defect 3: an alert that keeps firing past the dedup window. The repeat
// notification of a finished episode opens a new one; a re-fire while the
// episode is open attaches to it whichever side of a window boundary its
// startsAt falls.
func TestEpisodeKeepsFiringPastTheWindow(t *testing.T) {
	const ns = "e2e-episode-window"
	const window = time.Second
	g := episodeGateway(t, ns, func(c *config.Config) { c.Dedup.Window = config.D(window) }, nil)

	a := podAlert("KubePodCrashLooping", ns, "api-0", time.Now().Add(-time.Minute).Truncate(time.Second))
	first := sendAlerts(t, g.URL, a)
	if first.status != 201 {
		t.Fatalf("answered %d: %v", first.status, first.body)
	}
	setPhase(t, ns, nameOf(t, first, 0), "Completed")
	time.Sleep(window + watchLag)
	repeat := sendAlerts(t, g.URL, a)
	if n := expectAttachedToOpen(t, ns, repeat, "KubePodCrashLooping", "api-0"); repeat.status != 201 || n == nameOf(t, first, 0) {
		t.Errorf("the repeat notification after the window answered %d naming %s; want a new episode", repeat.status, n)
	}

	// Another alert, open all along; re-fired on both sides of a 1 s grid
	// line, each after the window expired its record.
	base := time.Now().Add(-time.Minute).Truncate(window)
	b := podAlert("KubePodNotReady", ns, "api-1", base)
	opened := sendAlerts(t, g.URL, b)
	if opened.status != 201 {
		t.Fatalf("answered %d: %v", opened.status, opened.body)
	}
	for _, shift := range []time.Duration{window / 2, window} {
		time.Sleep(window + 500*time.Millisecond)
		re := b
		re.startsAt = base.Add(shift)
		ans := sendAlerts(t, g.URL, re)
		n := expectAttachedToOpen(t, ns, ans, "KubePodNotReady", "api-1")
		if ans.status != 202 || n != nameOf(t, opened, 0) {
			t.Errorf("re-fire with startsAt +%s while %s is open answered %d naming %s, want 202 attached to it",
				shift, nameOf(t, opened, 0), ans.status, n)
		}
	}
}

// Defect 4: identity depends neither on the firing time, nor on the
// replica's clock, nor on its configuration, even when Redis lost its data.
func TestEpisodeIdentityIgnoresTimeClockAndConfiguration(t *testing.T) {
	const ns = "e2e-episode-identity"
	g := episodeGateway(t, ns, nil, nil)
	now := time.Now().Truncate(time.Second)

	// Escalation: warning then critical, merged into one fingerprint, with
	// their own startsAt; Redis loses its data in between.
	warn := podAlert("KubePodCrashLooping", ns, "api-0", now.Add(-30*time.Minute)).with("severity", "warning")
	if a := sendAlerts(t, g.URL, warn); a.status != 201 {
		t.Fatalf("warning answered %d: %v", a.status, a.body)
	}
	redisDataLoss(t)
	crit := podAlert("KubePodCrashLooping", ns, "api-0", now.Add(-2*time.Minute))
	expectAttachedToOpen(t, ns, retryUntilStored(t, g.URL, crit), "KubePodCrashLooping", "api-0")

	// A Kubernetes Event without any timestamp, replayed after the window
	// of a replica with a 1 s window.
	short := episodeGateway(t, ns+"-ev", func(c *config.Config) { c.Dedup.Window = config.D(time.Second) }, nil)
	ev := []byte(`{"apiVersion":"v1","kind":"Event","metadata":{"name":"x","namespace":"` + ns + `-ev"},"type":"Warning","reason":"BackOff",` +
		`"message":"Back-off restarting failed container","involvedObject":{"kind":"Pod","name":"web-0","namespace":"` + ns + `-ev"},"source":{"component":"kubelet"}}`)
	if a := post(t, short.URL, "/api/v1/signals/kubernetes-event", "application/json", ev); a.status != 201 {
		t.Fatalf("event answered %d: %v", a.status, a.body)
	}
	time.Sleep(1500 * time.Millisecond)
	replay := post(t, short.URL, "/api/v1/signals/kubernetes-event", "application/json", ev)
	expectAttachedToOpen(t, ns+"-ev", replay, "BackOff", "web-0")

	// A rolling configuration change: replicas with 5m and 10m windows.
	five := episodeGateway(t, ns+"-cfg", func(c *config.Config) { c.Dedup.Window = config.D(5 * time.Minute) }, nil)
	ten := episodeGateway(t, ns+"-cfg", func(c *config.Config) { c.Dedup.Window = config.D(10 * time.Minute) }, nil)
	// 5m and 10m grids disagree for this startsAt.
	c := podAlert("KubeContainerWaiting", ns+"-cfg", "db-0", now.Add(-7*time.Minute).Truncate(10*time.Minute).Add(6*time.Minute))
	if a := sendAlerts(t, five.URL, c); a.status != 201 {
		t.Fatalf("answered %d: %v", a.status, a.body)
	}
	redisDataLoss(t)
	expectAttachedToOpen(t, ns+"-cfg", retryUntilStored(t, ten.URL, c), "KubeContainerWaiting", "db-0")
}

// retryUntilStored sends as Alertmanager does: again after a 5xx (here:
// the moments after a Redis restart), at most 40 times.
func retryUntilStored(t *testing.T, url string, alerts ...amAlert) answer {
	t.Helper()
	var a answer
	for i := 0; i < 40; i++ {
		if a = sendAlerts(t, url, alerts...); a.status < 500 {
			return a
		}
		time.Sleep(250 * time.Millisecond)
	}
	return a
}

// Defect 5: overload is never answered 4xx (Alertmanager drops a batch it
// was refused with 429 for good): 503 with Retry-After.
func TestEpisodeOverloadIsRetryable(t *testing.T) {
	const ns = "e2e-episode-overload"
	slow := pipeline.Hooks{pipeline.AfterReserve: func(context.Context, pipeline.HookPoint, []string) { time.Sleep(300 * time.Millisecond) }}
	g := episodeGateway(t, ns, func(c *config.Config) { c.Request.MaxInFlight = 2 }, slow)
	now := time.Now().Truncate(time.Second)
	var wg sync.WaitGroup
	answers := make([]answer, 12)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = sendAlerts(t, g.URL, podAlert("KubePodCrashLooping", ns, fmt.Sprintf("api-%d", i), now))
		}()
	}
	wg.Wait()
	refused := 0
	for _, a := range answers {
		if a.status == 429 || a.status == 503 {
			refused++
		}
		switch {
		case a.status >= 400 && a.status < 500:
			t.Errorf("overload answered %d (Alertmanager drops 4xx for good): %v", a.status, a.body)
		case a.status == 503:
			if a.header.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After: %v", a.body)
			}
		}
	}
	if refused == 0 {
		t.Errorf("12 concurrent requests against --max-in-flight 2 were all admitted: the bound was not reached")
	}
}

// Defect 6: one bad alert never costs the others of its batch, and a name
// the API cannot hold never makes a batch fail forever.
func TestEpisodeBadAlertKeepsTheBatch(t *testing.T) {
	const ns = "e2e-episode-bad-alert"
	g := episodeGateway(t, ns, nil, nil)
	now := time.Now().Truncate(time.Second)
	good := podAlert("KubePodCrashLooping", ns, "good-0", now)
	future := podAlert("KubePodCrashLooping", ns, "skewed-0", now.Add(11*time.Minute)) // a Prometheus with a fast clock
	longName := podAlert(strings.Repeat("A", 300), ns, "long-0", now)
	badLabel := podAlert("KubePodCrashLooping", ns, "bad-label-0", now).with(strings.Repeat("l", 300), "x")
	many := podAlert("KubePodCrashLooping", ns, "many-0", now)
	for i := 0; i < 70; i++ {
		many = many.with(fmt.Sprintf("extra_%d", i), "x")
	}
	a := sendAlerts(t, g.URL, good, future, longName, badLabel, many)
	if a.status != 201 {
		t.Fatalf("a batch with two invalid alerts answered %d, want 201 for the valid ones: %v", a.status, a.body)
	}
	rejected, _ := a.body["rejected"].([]any)
	fields := map[float64]string{}
	for _, r := range rejected {
		m, _ := r.(map[string]any)
		idx, _ := m["index"].(float64)
		field, _ := m["field"].(string)
		reason, _ := m["reason"].(string)
		if field == "" || reason == "" {
			t.Errorf("a rejected alert without field or reason: %v", m)
		}
		fields[idx] = field
	}
	if len(rejected) != 2 || !strings.Contains(fields[3], "labels") || !strings.Contains(fields[4], "labels") {
		t.Errorf("rejected %v, want alerts 3 (label name) and 4 (too many labels) with their fields", rejected)
	}
	for _, pod := range []string{"good-0", "skewed-0", "long-0"} {
		found := 0
		for _, rr := range list(t, ns) {
			if rr.Spec.TargetResource.Name == pod {
				found++
				if pod == "skewed-0" && rr.Spec.FiringTime.Time.After(time.Now().Add(time.Minute)) {
					t.Errorf("the future startsAt was stored as is (%s), want it clamped to the receive time", rr.Spec.FiringTime)
				}
				if pod == "long-0" && len([]rune(rr.Spec.SignalName)) > 253 {
					t.Errorf("signal name of %d characters stored", len(rr.Spec.SignalName))
				}
			}
		}
		if found != 1 {
			t.Errorf("%d resources for %s, want 1", found, pod)
		}
	}
	// The long name again: the same episode, never a 500.
	again := sendAlerts(t, g.URL, longName)
	if again.status != 202 {
		t.Errorf("the long-named alert again answered %d, want 202: %v", again.status, again.body)
	}
}

// Defect 7: resolution is per member. Two alerts (one per container of a
// pod) share a fingerprint: the episode is resolved only once both have
// resolved, and a later firing of one clears it. A resolution that
// overtakes its firing occurrence's create is not lost.
func TestEpisodeResolutionIsPerMember(t *testing.T) {
	const ns = "e2e-episode-members"
	gs := newGates()
	g := episodeGateway(t, ns, func(c *config.Config) { c.StatusInterval = config.D(200 * time.Millisecond) }, gs.hooks())
	now := time.Now().Truncate(time.Second)
	app := podAlert("KubePodCrashLooping", ns, "api-0", now.Add(-3*time.Minute)).with("container", "app")
	side := podAlert("KubePodCrashLooping", ns, "api-0", now.Add(-2*time.Minute)).with("container", "sidecar")

	if a := sendAlerts(t, g.URL, app); a.status != 201 {
		t.Fatalf("answered %d: %v", a.status, a.body)
	}
	if a := sendAlerts(t, g.URL, side); a.status != 202 {
		t.Fatalf("the second container's alert answered %d, want 202 (same fingerprint): %v", a.status, a.body)
	}
	resolvedState := func() (bool, string) {
		open := openFor(t, ns, "KubePodCrashLooping", "api-0")
		if len(open) != 1 {
			t.Fatalf("%d open episodes, want 1", len(open))
		}
		return open[0].Status.Resolution != nil, open[0].Name
	}
	if a := sendAlerts(t, g.URL, app.resolved(now)); a.status != 200 {
		t.Fatalf("resolution answered %d: %v", a.status, a.body)
	}
	time.Sleep(time.Second)
	if r, n := resolvedState(); r {
		t.Errorf("%s is marked resolved while the sidecar's alert still fires", n)
	}
	if a := sendAlerts(t, g.URL, side.resolved(now)); a.status != 200 {
		t.Fatalf("resolution answered %d: %v", a.status, a.body)
	}
	time.Sleep(time.Second)
	if r, n := resolvedState(); !r {
		t.Errorf("%s is not resolved after both its alerts resolved", n)
	}
	refire := app
	refire.startsAt = now.Add(-10 * time.Second)
	if a := sendAlerts(t, g.URL, refire); a.status != 202 {
		t.Fatalf("re-fire answered %d: %v", a.status, a.body)
	}
	waitFor(t, "the re-fire clears the resolution", func() bool { r, _ := resolvedState(); return !r })

	// The resolution overtakes the create of its firing occurrence (two
	// Alertmanagers of an HA pair): it is kept or refused for a retry.
	other := podAlert("KubePodNotReady", ns, "web-0", now.Add(-time.Minute))
	gate := gs.at(pipeline.BeforeCreate, 2)
	firing := async(t, g.URL, other)
	if _, done := reachedOrDone(t, gate, firing, "the firing occurrence"); done {
		t.Fatal("the firing occurrence answered before its create")
	}
	res := sendAlerts(t, g.URL, other.resolved(now))
	gate.open()
	if a := await(t, firing, "the firing occurrence"); a.status != 201 {
		t.Fatalf("the firing occurrence answered %d: %v", a.status, a.body)
	}
	if res.status >= 500 {
		res = retryUntilStored(t, g.URL, other.resolved(now))
	}
	if res.status != 200 {
		t.Fatalf("the resolution answered %d: %v", res.status, res.body)
	}
	waitFor(t, "the early resolution recorded", func() bool {
		open := openFor(t, ns, "KubePodNotReady", "web-0")
		return len(open) == 1 && open[0].Status.Resolution != nil
	})
}
