package load_test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/normalize"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/load"
)

// A smoke test of the whole path the scenarios will use: a lifecycle
// driven through a real Alertmanager and a Proxy into a real gateway (Redis,
// kube-apiserver), its Events sent by the Client, both recorded in one
// list; then every alert given is a member of exactly one
// RemediationRequest, in the state it was last given.
func TestEndToEndThroughAlertmanager(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" || os.Getenv("ALERTMANAGER_BIN") == "" {
		t.Fatal("KUBEBUILDER_ASSETS or ALERTMANAGER_BIN is not set: KUBEBUILDER_ASSETS=$(./hack/test-binaries.sh) ALERTMANAGER_BIN=$(./hack/alertmanager.sh) go test ./testenv/load")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	env, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	const ns = "load-e2e"
	if err := env.CreateNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	g, err := env.StartGateway(ctx, testenv.GatewayOptions{Namespace: ns, KeyPrefix: "load-e2e:"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Stop() }()

	c := load.NewClient(10 * time.Second)
	defer c.Close()
	tm := load.Timing{GroupWait: 200 * time.Millisecond, GroupInterval: 600 * time.Millisecond, RepeatInterval: 1500 * time.Millisecond}
	am, err := load.StartAlertmanager(ctx, c, load.AlertmanagerOptions{Gateways: []string{g.URL}, Timing: tm, Output: t.Output()})
	if err != nil {
		t.Fatal(err)
	}
	defer am.Stop()

	start := time.Now().Add(300 * time.Millisecond).Truncate(time.Millisecond)
	a := func(name string) load.Signal {
		return load.Signal{Name: name, Namespace: ns, Pod: "api-0", StartsAt: start}
	}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	l := load.Merge(
		load.Escalation(tm, a("KubePodNotReady"), ms(1100)),
		load.PerContainer(tm, a("KubeContainerWaiting"), []string{"app", "sidecar"}, ms(600)),
		load.Refire(tm, a("KubePodCrashLooping"), ms(1100), ms(450)),
		load.EventSeries(load.Signal{Name: "BackOff", Namespace: ns, Pod: "web-0", StartsAt: start}, load.ShapeCount, 3, ms(500)),
	)
	events := make(chan error, 1)
	go func() {
		events <- l.Schedule().Play(ctx, func(st load.Step) {
			if st.Signals[0].IsEvent() {
				c.Send(ctx, g.URL, st.Signals)
			}
		})
	}()
	if err := l.Drive(ctx, am); err != nil {
		t.Fatal(err)
	}
	if err := <-events; err != nil {
		t.Fatal(err)
	}
	// The last notifications are due within a group interval of Until.
	time.Sleep(time.Until(start.Add(l.Until + time.Second)))

	rs := c.Records()
	senders := map[string]int{}
	for _, r := range rs {
		senders[r.Sender]++
		if !r.Acknowledged() {
			t.Errorf("request %d from %q answered %d: %s", r.Seq, r.Sender, r.Status, r.Err)
		}
	}
	if senders[""] != 3 || senders["alertmanager-0"] < 6 {
		t.Errorf("records by sender %v, want the 3 Events and the Alertmanager's notifications", senders)
	}
	var list v1alpha1.RemediationRequestList
	if err := env.Kube.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	byKey := map[string]v1alpha1.RemediationRequest{}
	for _, rr := range list.Items {
		k := load.Signal{Name: rr.Spec.SignalName, Namespace: rr.Spec.TargetResource.Namespace, Pod: rr.Spec.TargetResource.Name}.Key()
		if _, dup := byKey[k]; dup {
			t.Errorf("two resources for %s", k)
		}
		byKey[k] = rr
	}
	if len(byKey) != 4 {
		t.Errorf("%d resources, want one per fingerprint (4): %v", len(byKey), list.Items)
	}
	// Each member in the state it was last given.
	last := map[string]load.GivenAlert{}
	for _, ga := range am.Given() {
		last[ga.Signal.Member()] = ga
	}
	for m, ga := range last {
		s := ga.Signal
		var found []v1alpha1.Member
		for _, rr := range list.Items {
			if i := slices.IndexFunc(rr.Status.Members, func(x v1alpha1.Member) bool { return x.ID == normalize.MemberID(s.Labels()) }); i >= 0 {
				found = append(found, rr.Status.Members[i])
			}
		}
		if len(found) != 1 {
			t.Errorf("%s: a member of %d resources, want 1", m, len(found))
			continue
		}
		f := found[0]
		resolved := f.ResolvedSince != nil && !f.ResolvedSince.Before(&f.FiringSince)
		if !f.FiringSince.Time.Equal(s.StartsAt) || resolved != s.Resolved || (s.Resolved && !f.ResolvedAt.Time.Equal(s.EndsAt)) {
			t.Errorf("%s: member %+v, given %s", m, f, s)
		}
	}
	t.Logf("%d requests (%v by sender), %d resources, %d members checked, %d firings given", len(rs), senders, len(list.Items), len(last), len(am.Given()))
	for key, want := range map[string]bool{
		ns + "/api-0/KubeContainerWaiting": true, ns + "/api-0/KubePodNotReady": false,
		ns + "/api-0/KubePodCrashLooping": false, ns + "/web-0/BackOff": false,
	} {
		if rr, ok := byKey[key]; !ok || (rr.Status.Resolution != nil) != want {
			t.Errorf("%s: resource %v, resolution %v, want resolved %v", key, ok, rr.Status.Resolution, want)
		}
	}
}
