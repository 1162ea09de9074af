package testenv

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/app"
	"github.com/alertgate/gateway/testenv/load"
)

func TestMain(m *testing.M) {
	app.RouteLibraryLogs(slog.New(slog.DiscardHandler))
	code := m.Run()
	StopShared()
	os.Exit(code)
}

func TestSkewedClock(t *testing.T) {
	for _, d := range []time.Duration{-20 * time.Minute, 0, time.Hour} {
		before := time.Now()
		got := SkewedClock(d)()
		if got.Before(before.Add(d)) || got.After(time.Now().Add(d)) {
			t.Errorf("SkewedClock(%s)() = %s, want now%+v", d, got, d)
		}
	}
}

// A gateway whose clock is 20 minutes behind receives an alert that
// started now as one 20 minutes in its future, beyond the allowed skew: it
// stores it with the start clamped to its receive time and says so in a
// warning. The same alert to a gateway on time has no warning.
func TestGatewayClockBehind(t *testing.T) {
	e := Shared(t)
	ctx := context.Background()
	const ns = "testenv-clock"
	if err := e.CreateNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if _, err := e.StartGateway(ctx, GatewayOptions{Namespace: ns, Bin: "/bin/true", Clock: time.Now}); err == nil {
		t.Fatal("a process gateway was started with a clock")
	}
	prefix := "testenv:clock:" + time.Now().Format("150405.000") + ":"
	behind, err := e.StartGateway(ctx, GatewayOptions{Namespace: ns, KeyPrefix: prefix + "behind:", Clock: SkewedClock(-20 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = behind.Stop() }()
	onTime, err := e.StartGateway(ctx, GatewayOptions{Namespace: ns, KeyPrefix: prefix + "on-time:"})
	if err != nil {
		t.Fatal(err)
	}
	if gs := e.Gateways(); !slices.Contains(gs, behind) || !slices.Contains(gs, onTime) {
		t.Fatalf("Env.Gateways() = %v: want both", gs)
	}

	c := load.NewClient(10 * time.Second)
	defer c.Close()
	pod := "clock-" + time.Now().Format("150405.000")
	now := time.Now()
	r := c.Send(ctx, behind.URL, []load.Signal{{Name: "KubePodCrashLooping", Namespace: ns, Pod: pod + "-behind", StartsAt: now}})
	if r.Status != 201 || len(r.Outcomes) != 1 || len(r.Outcomes[0].Warnings) == 0 {
		t.Fatalf("gateway 20 min behind: %d %+v %s; want 201 with a warning", r.Status, r.Outcomes, r.Err)
	}
	t.Logf("warning: %s", r.Outcomes[0].Warnings[0])
	var rr v1alpha1.RemediationRequest
	if err := e.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: r.Outcomes[0].Name}, &rr); err != nil {
		t.Fatal(err)
	}
	received := rr.Spec.ReceivedTime.Time
	if d := now.Add(-20 * time.Minute).Sub(received); d > 5*time.Second || d < -5*time.Second {
		t.Fatalf("receivedTime %s: want about 20 minutes before %s", received, now)
	}
	if !rr.Spec.FiringTime.Equal(&rr.Spec.ReceivedTime) {
		t.Fatalf("firingTime %s: want it clamped to receivedTime %s", rr.Spec.FiringTime, rr.Spec.ReceivedTime)
	}

	r = c.Send(ctx, onTime.URL, []load.Signal{{Name: "KubePodCrashLooping", Namespace: ns, Pod: pod + "-on-time", StartsAt: now}})
	if r.Status != 201 || len(r.Outcomes) != 1 || len(r.Outcomes[0].Warnings) != 0 {
		t.Fatalf("gateway on time: %d %+v %s; want 201 without a warning", r.Status, r.Outcomes, r.Err)
	}
	if err := onTime.Stop(); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(e.Gateways(), onTime) {
		t.Fatal("a stopped gateway is still in Env.Gateways()")
	}
}
