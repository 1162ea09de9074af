package fault_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/chaos/random"
	"github.com/alertgate/gateway/internal/app"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/fault"
	"github.com/alertgate/gateway/testenv/history"
	"github.com/alertgate/gateway/testenv/load"
)

var gatewayBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// binary builds ./cmd/gateway once for the test binary.
func binary(t *testing.T) string {
	t.Helper()
	gatewayBin.once.Do(func() {
		gatewayBin.dir, gatewayBin.err = os.MkdirTemp("", "fault-test-")
		if gatewayBin.err == nil {
			gatewayBin.path, gatewayBin.err = testenv.BuildGateway(gatewayBin.dir, io.Discard)
		}
	})
	if gatewayBin.err != nil {
		t.Fatal(gatewayBin.err)
	}
	return gatewayBin.path
}

func TestMain(m *testing.M) {
	app.RouteLibraryLogs(slog.New(slog.DiscardHandler))
	code := m.Run()
	testenv.StopShared()
	if gatewayBin.dir != "" {
		_ = os.RemoveAll(gatewayBin.dir)
	}
	os.Exit(code)
}

var nsSeq atomic.Int64

func namespace(t *testing.T, e *testenv.Env) string {
	t.Helper()
	ns := fmt.Sprintf("fault-%d-%d", time.Now().Unix()%100000, nsSeq.Add(1))
	if err := e.CreateNamespace(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns
}

func episodes(t *testing.T, c client.Client, ns string, n int) {
	t.Helper()
	for i := range n {
		fp := fmt.Sprintf("%08x%056x", i+1, 0)
		now := metav1.Now()
		rr := &v1alpha1.RemediationRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.EpisodeName(fp, 1)},
			Spec: v1alpha1.RemediationRequestSpec{Fingerprint: fp, SignalName: "KubePodCrashLooping", Severity: "critical", Source: "prometheus",
				TargetResource: v1alpha1.TargetResource{Kind: "Pod", Name: fmt.Sprintf("app-%d", i), Namespace: ns},
				FiringTime:     now, ReceivedTime: now, Episode: 1},
		}
		if err := c.Create(context.Background(), rr); err != nil {
			t.Fatal(err)
		}
	}
}

// Random mode draws from the catalogue: every entry makes a fault for each
// of its targets, the controller is among them and Pause is not (it needs
// process gateways), and schedules over many seeds still come out, each
// step on a known target.
func TestCatalogue(t *testing.T) {
	names := map[string]bool{}
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range fault.Catalog() {
		names[s.Name] = true
		for _, dep := range s.Targets {
			if f := s.Random(r, dep); f == nil || f.String() == "" || f.Target() != dep {
				t.Errorf("%s for %s: %v", s.Name, dep, f)
			}
		}
	}
	if !names["controller"] || names["gateway-pause"] {
		t.Fatalf("catalogue %v: want controller and no gateway-pause", names)
	}
	known := []testenv.Dependency{testenv.Redis, testenv.Kubernetes, testenv.Controller}
	controllers := 0
	for seed := int64(1); seed <= 300; seed++ {
		for _, st := range random.Schedule(seed, 2*time.Minute) {
			fs := []fault.Fault{st.Fault}
			if tg, ok := st.Fault.(fault.Together); ok {
				fs = tg
			}
			for _, f := range fs {
				if !slices.Contains(known, f.Target()) {
					t.Fatalf("seed %d: %s on unknown target %q", seed, f, f.Target())
				}
				if c, ok := f.(fault.Controller); ok {
					controllers++
					// Namespace "" is the gateways'; the acts are random
					// mode's, deletions and held deletions included.
					if c.Log == nil || c.Namespace != "" || !maps.Equal(c.Weights, fault.RandomWeights) {
						t.Fatalf("seed %d: random controller %+v: want a log, the gateways' namespace, RandomWeights", seed, c)
					}
				}
			}
		}
	}
	if controllers == 0 {
		t.Fatal("no schedule of 300 seeds draws the controller")
	}
	t.Logf("300 two-minute schedules draw the controller %d times", controllers)
}

// The controller fault runs the nemesis from Inject to Undo: it acts,
// stops acting at Undo, and leaves no finalizer behind. Without a
// namespace it takes the running gateways'.
func TestController(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	if _, err := (fault.Controller{}).Inject(ctx, e); err == nil {
		t.Fatal("a controller without a namespace and without gateways was injected")
	}
	ns := namespace(t, e)
	episodes(t, e.Kube, ns, 30)
	g, err := e.StartGateway(ctx, testenv.GatewayOptions{Namespace: ns, KeyPrefix: "fault-test:" + ns + ":"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Stop() }()

	log := &history.Log[history.Action]{}
	f := fault.Controller{Seed: 5, Every: 40 * time.Millisecond, HoldFor: 150 * time.Millisecond, Log: log}
	if f.String() != "controller(seed=5)" || f.Target() != testenv.Controller {
		t.Fatalf("name %s, target %s", f, f.Target())
	}
	undo, err := f.Inject(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := undo(ctx); err != nil {
		t.Fatal(err)
	}
	acts := log.All()
	time.Sleep(200 * time.Millisecond)
	if n := len(log.All()); n != len(acts) {
		t.Fatalf("%d acts after Undo", n-len(acts))
	}
	kinds := map[string]int{}
	for _, a := range acts {
		kinds[a.Kind]++
	}
	t.Logf("%d acts: %v", len(acts), kinds)
	if len(acts) < 10 || kinds[history.ActHold] == 0 {
		t.Fatalf("acts %v: want at least 10, holds among them", kinds)
	}
	var l v1alpha1.RemediationRequestList
	if err := e.Kube.List(ctx, &l, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, rr := range l.Items {
		if len(rr.Finalizers) > 0 || rr.DeletionTimestamp != nil {
			t.Errorf("%s left with finalizers %v, deleting %t", rr.Name, rr.Finalizers, rr.DeletionTimestamp != nil)
		}
	}
	if len(l.Items) == 30 {
		t.Error("nothing was deleted")
	}
}

// probe is a client that keeps no connection, with a short timeout.
var probe = &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}

func healthy(url string) bool {
	resp, err := probe.Get(url + "/healthz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// A paused gateway process answers nothing, not even /healthz, and
// answers the request that came in during the pause once it continues.
func TestPause(t *testing.T) {
	e := testenv.Shared(t)
	bin := binary(t)
	ctx := context.Background()
	ns := namespace(t, e)

	in, err := e.StartGateway(ctx, testenv.GatewayOptions{Namespace: ns, KeyPrefix: "fault-test:" + ns + ":in:"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (fault.Pause{Gateway: in}).Inject(ctx, e); err == nil {
		t.Error("an in-process gateway was paused")
	}
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}

	g, err := e.StartGateway(ctx, testenv.GatewayOptions{Namespace: ns, KeyPrefix: "fault-test:" + ns + ":", Bin: bin})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Stop() }()
	f := fault.Pause{Gateway: g}
	if f.String() != "gateway-pause("+g.URL[len("http://127.0.0.1:"):]+")" || f.Target() != testenv.GatewayProcess {
		t.Fatalf("name %s, target %s", f, f.Target())
	}
	if spec, ok := fault.PauseSpec([]*testenv.Gateway{g}); !ok || spec.Random(rand.New(rand.NewPCG(1, 1)), testenv.GatewayProcess).String() != f.String() {
		t.Fatalf("PauseSpec of one process gateway: %v %v", spec, ok)
	}
	if _, ok := fault.PauseSpec(nil); ok {
		t.Fatal("PauseSpec without process gateways")
	}
	if !healthy(g.URL) {
		t.Fatal("/healthz does not answer before the pause")
	}

	lc := load.NewClient(30 * time.Second)
	defer lc.Close()
	undo, err := f.Inject(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	answered := make(chan load.Record, 1)
	go func() {
		answered <- lc.Send(ctx, g.URL, []load.Signal{{Name: "KubePodCrashLooping", Namespace: ns, Pod: "paused-0", StartsAt: time.Now()}})
	}()
	if healthy(g.URL) {
		t.Error("/healthz answered during the pause")
	}
	select {
	case r := <-answered:
		t.Fatalf("the request was answered during the pause: %d %s", r.Status, r.Err)
	case <-time.After(time.Until(paused.Add(2 * time.Second))):
	}
	if err := undo(ctx); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	select {
	case r := <-answered:
		t.Logf("paused %s; the request took %s, answered %d", resumed.Sub(paused).Round(time.Millisecond), r.Duration.Round(time.Millisecond), r.Status)
		if r.Status != http.StatusCreated {
			t.Fatalf("after the pause: %d %s, want 201", r.Status, r.Err)
		}
		if end := r.Start.Add(r.Duration); end.Before(resumed) {
			t.Fatalf("answered at %s, before SIGCONT at %s", end, resumed)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the request was not answered after the pause")
	}
	if !healthy(g.URL) {
		t.Fatal("/healthz does not answer after the pause")
	}
}
