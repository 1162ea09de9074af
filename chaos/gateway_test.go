package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/internal/create"
	"github.com/alertgate/gateway/internal/pipeline"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/fault"
)

// End-to-end behaviour of the gateway against the real dependencies: the
// request/response contract, resource contents, and the failure answers.

type answer struct {
	status int
	header http.Header
	body   map[string]any
	took   time.Duration
}

func post(t *testing.T, url, path, contentType string, body []byte) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	start := time.Now()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, took: time.Since(start), body: map[string]any{}}
	if err := json.Unmarshal(b, &a.body); err != nil {
		t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, b)
	}
	if resp.Header.Get("X-Request-ID") == "" {
		t.Errorf("answer %d without X-Request-ID", resp.StatusCode)
	}
	return a
}

func example(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func envOptions(ns string, configure func(*config.Config), hooks pipeline.Hooks) testenv.GatewayOptions {
	return testenv.GatewayOptions{Namespace: ns, KeyPrefix: "alertgate:" + ns + ":", Configure: configure, Hooks: hooks}
}

func startGateway(t *testing.T, ns string, configure func(*config.Config), bin string) *testenv.Gateway {
	t.Helper()
	ctx := context.Background()
	if err := e.CreateNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	o := envOptions(ns, configure, nil)
	o.Bin = bin
	g, err := e.StartGateway(ctx, o)
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

// fastStatus projects occurrence counts into status every 200 ms, so a
// test waits for the projection rather than create.DefaultStatusInterval.
func fastStatus(c *config.Config) { c.StatusInterval = config.D(200 * time.Millisecond) }

func list(t *testing.T, ns string) []v1alpha1.RemediationRequest {
	t.Helper()
	var l v1alpha1.RemediationRequestList
	if err := e.Kube.List(context.Background(), &l, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func signals(a answer) []map[string]any {
	var out []map[string]any
	for _, s := range a.body["signals"].([]any) {
		out = append(out, s.(map[string]any))
	}
	return out
}

func TestAlertmanagerBatchCreateDuplicateResolve(t *testing.T) {
	const ns = "e2e-batch"
	g := startGateway(t, ns, fastStatus, "")
	batch := example(t, "alertmanager-webhook.json")

	a := post(t, g.URL, "/api/v1/signals/prometheus", "application/json", batch)
	if a.status != 201 || len(signals(a)) != 3 {
		t.Fatalf("first delivery: %d %v", a.status, a.body)
	}
	rrs := list(t, ns)
	if len(rrs) != 3 {
		t.Fatalf("%d resources, want 3", len(rrs))
	}
	byName := map[string]v1alpha1.RemediationRequest{}
	for _, rr := range rrs {
		byName[rr.Spec.SignalName] = rr
	}
	pod := byName["KubePodCrashLooping"]
	want := v1alpha1.RemediationRequestSpec{
		Fingerprint: "89a240f103e2151705deb037f2e435389559907b949c7b5844a385d563218e41",
		SignalName:  "KubePodCrashLooping", Severity: "critical", Source: "prometheus",
		TargetResource: v1alpha1.TargetResource{Kind: "Pod", Name: "api-7d9f8b6c5d-x2k4p", Namespace: "payments"},
	}
	if pod.Spec.Fingerprint != want.Fingerprint || pod.Spec.Severity != want.Severity || pod.Spec.Source != want.Source ||
		pod.Spec.TargetResource != want.TargetResource || pod.Spec.Labels["container"] != "api" ||
		!strings.Contains(pod.Spec.Annotations["summary"], "crash looping") ||
		!pod.Spec.FiringTime.Time.Equal(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)) ||
		!strings.Contains(pod.Spec.OriginalPayload, `"fingerprint": "a1b2c3d4e5f60718"`) {
		t.Errorf("pod alert resource spec: %+v", pod.Spec)
	}
	if pod.Name != signals(a)[0]["name"] || pod.Labels[v1alpha1.LabelFingerprint] != want.Fingerprint[:32] {
		t.Errorf("resource %s / labels %v do not match the answer %v", pod.Name, pod.Labels, signals(a)[0])
	}
	if node := byName["KubeNodeNotReady"]; node.Spec.TargetResource != (v1alpha1.TargetResource{Kind: "Node", Name: "worker-3"}) {
		t.Errorf("node alert target: %+v", node.Spec.TargetResource)
	}
	if dep := byName["KubeDeploymentReplicasMismatch"]; dep.Spec.Severity != "warning" || dep.Spec.TargetResource.Kind != "Deployment" {
		t.Errorf("deployment alert: %+v", dep.Spec)
	}

	a = post(t, g.URL, "/api/v1/signals/prometheus", "application/json", batch)
	if a.status != 202 {
		t.Fatalf("second delivery: %d %v", a.status, a.body)
	}
	for _, s := range signals(a) {
		if s["duplicate"] != true || s["occurrenceCount"] != float64(2) {
			t.Errorf("second delivery signal %v, want duplicate with count 2", s)
		}
	}
	waitFor(t, "occurrenceCount 2 in every status", func() bool {
		for _, rr := range list(t, ns) {
			if d := rr.Status.Deduplication; d == nil || d.OccurrenceCount != 2 || rr.Status.Phase != v1alpha1.PhasePending {
				return false
			}
		}
		return true
	})

	resolved := bytes.ReplaceAll(batch, []byte(`"status": "firing"`), []byte(`"status": "resolved"`))
	resolved = bytes.ReplaceAll(resolved, []byte(`"endsAt": "0001-01-01T00:00:00Z"`), []byte(`"endsAt": "2026-11-26T11:00:00Z"`))
	a = post(t, g.URL, "/api/v1/signals/prometheus", "application/json", resolved)
	if a.status != 200 {
		t.Fatalf("resolved delivery: %d %v", a.status, a.body)
	}
	rrs = list(t, ns)
	if len(rrs) != 3 {
		t.Fatalf("resolved alerts changed the resource count to %d", len(rrs))
	}
	for _, rr := range rrs {
		if rr.Status.Resolution == nil || !rr.Status.Resolution.ResolvedAt.Time.Equal(time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)) {
			t.Errorf("%s: resolution %+v", rr.Name, rr.Status.Resolution)
		}
	}
}

func TestKubernetesEvents(t *testing.T) {
	const ns = "e2e-events"
	g := startGateway(t, ns, nil, "")
	for _, c := range []struct {
		file   string
		edit   func([]byte) []byte
		status int
	}{
		{"kubernetes-event.json", nil, 201},
		{"kubernetes-event.json", nil, 202},
		{"events-v1-event.json", nil, 201},
		{"kubernetes-event.json", func(b []byte) []byte { return bytes.Replace(b, []byte(`"Warning"`), []byte(`"Normal"`), 1) }, 200},
	} {
		b := example(t, c.file)
		if c.edit != nil {
			b = c.edit(b)
		}
		if a := post(t, g.URL, "/api/v1/signals/kubernetes-event", "application/json", b); a.status != c.status {
			t.Errorf("%s: %d %v, want %d", c.file, a.status, a.body, c.status)
		}
	}
	rrs := list(t, ns)
	if len(rrs) != 2 {
		t.Fatalf("%d resources, want 2 (core/v1 and events.k8s.io/v1 Warning)", len(rrs))
	}
	for _, rr := range rrs {
		if rr.Spec.Source != "kubernetes-event" || rr.Spec.Severity != "warning" || rr.Spec.TargetResource.Kind != "Pod" {
			t.Errorf("event resource: %+v", rr.Spec)
		}
	}
}

func TestRejectedRequests(t *testing.T) {
	g := startGateway(t, "e2e-rejected", nil, "")
	for _, c := range []struct {
		name, ct string
		body     []byte
		status   int
		field    string
	}{
		{"malformed JSON", "application/json", []byte(`{"version":"4","alerts":[`), 400, ""},
		{"wrong version", "application/json", []byte(`{"version":"3","alerts":[]}`), 400, "version"},
		{"no alertname", "application/json", []byte(`{"version":"4","alerts":[{"status":"firing","labels":{}}]}`), 400, "alerts[0].labels.alertname"},
		{"2 MiB body", "application/json", bytes.Repeat([]byte(" "), 2<<20), 413, ""},
		{"text/plain", "text/plain", []byte("hello"), 415, ""},
	} {
		a := post(t, g.URL, "/api/v1/signals/prometheus", c.ct, c.body)
		if a.status != c.status || a.header.Get("Content-Type") != "application/problem+json" || a.body["status"] != float64(c.status) {
			t.Errorf("%s: %d %s %v, want %d problem+json", c.name, a.status, a.header.Get("Content-Type"), a.body, c.status)
		}
		if c.field != "" && a.body["field"] != c.field {
			t.Errorf("%s: field %v, want %s", c.name, a.body["field"], c.field)
		}
	}
	if n := len(list(t, "e2e-rejected")); n != 0 {
		t.Errorf("rejected requests created %d resources", n)
	}
}

// Redis really stopped (the process, not the network): 503 with
// Retry-After within 5 s, nothing created, one JSON error line.
func TestRedisStopped(t *testing.T) {
	const ns = "e2e-redis-stopped"
	g := startGateway(t, ns, nil, "")
	ctx := context.Background()
	f := fault.RedisKill{}
	undo, err := f.Inject(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := undo(ctx); err != nil {
			t.Fatal(err)
		}
	})
	a := post(t, g.URL, "/api/v1/signals/prometheus", "application/json", example(t, "alertmanager-webhook.json"))
	if a.status != 503 || a.header.Get("Retry-After") == "" || a.took > 5*time.Second || a.body["dependency"] != "redis" {
		t.Fatalf("Redis stopped: %d Retry-After %q in %s: %v", a.status, a.header.Get("Retry-After"), a.took, a.body)
	}
	if n := len(list(t, ns)); n != 0 {
		t.Errorf("%d resources created with Redis stopped", n)
	}
	var lines []map[string]any
	for _, l := range g.Logs.Lines() {
		if l["request_id"] == a.header.Get("X-Request-ID") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%d log lines for the failed request, want 1: %v", len(lines), lines)
	}
	l := lines[0]
	for _, k := range []string{"request_id", "fingerprints", "dependency", "operation", "error", "duration_ms"} {
		if l[k] == nil || l[k] == "" {
			t.Errorf("failure line lacks %s: %v", k, l)
		}
	}
	if ready := g.Ready(ctx); ready {
		t.Error("/readyz is 200 with Redis stopped")
	}
}

// The API server really stopped: 503, and no fingerprint is left in Redis
// once the lease has passed.
func TestAPIServerStopped(t *testing.T) {
	const ns = "e2e-api-stopped"
	lease := 3 * time.Second
	g := startGateway(t, ns, func(c *config.Config) {
		c.Request.Deadline = config.D(2 * time.Second)
		c.Dedup.Lease = config.D(lease)
	}, "")
	ctx := context.Background()
	undo, err := fault.APIServerStop{}.Inject(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := undo(ctx); err != nil {
			t.Fatal(err)
		}
	})
	a := post(t, g.URL, "/api/v1/signals/prometheus", "application/json", example(t, "alertmanager-webhook.json"))
	if a.status != 503 || a.header.Get("Retry-After") == "" || a.took > 5*time.Second {
		t.Errorf("API server stopped: %d in %s: %v", a.status, a.took, a.body)
	}
	time.Sleep(lease + 200*time.Millisecond)
	if keys := e.RDB.Keys(ctx, g.Config.Redis.KeyPrefix+"*").Val(); len(keys) != 0 {
		t.Errorf("fingerprints left in Redis after the lease: %v", keys)
	}
}

// Two gateway processes, built from cmd/gateway, share Redis and the API:
// 20 concurrent identical signals make exactly one resource, counted 20.
func TestTwoProcessesOneResource(t *testing.T) {
	const ns = "e2e-two-processes"
	bin := buildGateway(t)
	g1 := startGateway(t, ns, fastStatus, bin)
	g2 := startGateway(t, ns, fastStatus, bin)
	body := example(t, "kubernetes-event.json")
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := []string{g1.URL, g2.URL}[i%2]
			codes[i] = post(t, url, "/api/v1/signals/kubernetes-event", "application/json", body).status
		}()
	}
	wg.Wait()
	created := 0
	for _, c := range codes {
		if c != 201 && c != 202 {
			t.Fatalf("answers %v", codes)
		}
		if c == 201 {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d answers were 201, want 1: %v", created, codes)
	}
	if rrs := list(t, ns); len(rrs) != 1 {
		t.Fatalf("%d resources, want 1", len(rrs))
	}
	waitFor(t, "occurrenceCount 20", func() bool {
		rrs := list(t, ns)
		return len(rrs) == 1 && rrs[0].Status.Deduplication != nil && rrs[0].Status.Deduplication.OccurrenceCount == 20
	})
}

func TestMetricsAndProbes(t *testing.T) {
	g := startGateway(t, "e2e-metrics", nil, "")
	post(t, g.URL, "/api/v1/signals/prometheus", "application/json", example(t, "alertmanager-webhook.json"))
	if !g.Ready(context.Background()) {
		t.Error("/readyz not ready with both dependencies up")
	}
	b := scrapeMetrics(t, g)
	for _, m := range []string{
		`alertgate_signals_received_total{source="prometheus"} 3`,
		`alertgate_resources_created_total{source="prometheus"} 3`,
		`alertgate_breaker_state{dependency="redis"} 0`,
		`alertgate_http_request_duration_seconds_bucket{code="201",handler="prometheus"`,
		`alertgate_dependency_errors_total{dependency="kubernetes",kind="timeout"} 0`,
		`alertgate_requests_rejected_total{reason="body_too_large"} 0`,
		`alertgate_signals_duplicate_total{source="kubernetes-event"} 0`,
	} {
		if !strings.Contains(b, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

// scrapeMetrics reads the gateway's /metrics.
func scrapeMetrics(t *testing.T, g *testenv.Gateway) string {
	t.Helper()
	resp, err := http.Get(g.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(b)
}

// The status projection of the resources a gateway created costs one patch
// each and no read, on the real API server: the syncer writes on the
// version the create returned (alertgate_status_calls_total counts them).
func TestStatusProjectionOfCreatedResources(t *testing.T) {
	ns := "e2e-status-calls"
	g := startGateway(t, ns, fastStatus, "")
	post(t, g.URL, "/api/v1/signals/prometheus", "application/json", example(t, "alertmanager-webhook.json"))
	patched := `alertgate_status_calls_total{call="patch",result="ok"} 3` + "\n"
	waitFor(t, "the 3 statuses projected", func() bool { return strings.Contains(scrapeMetrics(t, g), patched) })
	for _, rr := range list(t, ns) {
		if rr.Status.Deduplication == nil || rr.Status.Deduplication.OccurrenceCount != 1 {
			t.Errorf("%s: status %+v, want a count of 1", rr.Name, rr.Status)
		}
	}
	m := scrapeMetrics(t, g)
	for _, want := range []string{
		`alertgate_status_calls_total{call="get",result="ok"} 0`,
		`alertgate_status_calls_total{call="patch",result="conflict"} 0`,
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func buildGateway(t *testing.T) string {
	t.Helper()
	bin, err := testenv.GatewayBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	if err := testenv.Wait(context.Background(), 25*time.Second, 100*time.Millisecond, what, func() (bool, error) { return ok(), nil }); err != nil {
		t.Fatal(err)
	}
}

// Graceful shutdown: a request in flight when SIGTERM (here: Stop) comes is
// finished and stored; the gateway then stops within its shutdown timeout.
func TestGracefulShutdownDrainsInFlight(t *testing.T) {
	const ns = "e2e-shutdown"
	if err := e.CreateNamespace(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	g, err := e.StartGateway(context.Background(), envOptions(ns, nil, pipeline.Hooks{
		pipeline.BeforeCreate: func(context.Context, pipeline.HookPoint, []string) {
			close(entered)
			<-release
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan int)
	go func() {
		answered <- post(t, g.URL, "/api/v1/signals/kubernetes-event", "application/json", example(t, "kubernetes-event.json")).status
	}()
	<-entered
	stopped := make(chan error)
	go func() { stopped <- g.Stop() }()
	time.Sleep(200 * time.Millisecond) // the shutdown has begun
	if _, err := http.Get(g.URL + "/healthz"); err == nil {
		t.Error("the gateway still accepts connections while shutting down")
	}
	close(release)
	if code := <-answered; code != 201 {
		t.Errorf("the in-flight request was answered %d, want 201", code)
	}
	if err := <-stopped; err != nil {
		t.Errorf("stop: %v", err)
	}
	if n := len(list(t, ns)); n != 1 {
		t.Errorf("%d resources, want the in-flight request's", n)
	}
}

// The status projection against the real API server: a controller's write
// in between (phase) is kept, and the count only rises.
func TestStatusProjectionKeepsOthersWrites(t *testing.T) {
	const ns = "e2e-status"
	ctx := context.Background()
	if err := e.CreateNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	cr, err := create.New(e.Kube, create.Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	sig := &pipeline.Signal{Fingerprint: strings.Repeat("ab", 32), Name: "X", Severity: "warning", Source: pipeline.SourcePrometheus,
		FiringTime: time.Now(), ReceivedTime: time.Now()}
	name := v1alpha1.EpisodeName(sig.Fingerprint, 1)
	if _, err := cr.Open(ctx, sig, nil, 1); err != nil {
		t.Fatal(err)
	}
	sy := create.NewStatusSyncer(cr, create.StatusOptions{})
	now := time.Now()
	sy.Observe(pipeline.Observation{Namespace: ns, Name: name, Count: 3, FirstSeen: now, LastSeen: now})
	sy.Flush(ctx)
	get := func() v1alpha1.RemediationRequest {
		var rr v1alpha1.RemediationRequest
		if err := e.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &rr); err != nil {
			t.Fatal(err)
		}
		return rr
	}
	rr := get()
	if rr.Status.Phase != v1alpha1.PhasePending || rr.Status.Deduplication.OccurrenceCount != 3 {
		t.Fatalf("after the first flush: %+v", rr.Status)
	}
	// A remediation controller moves the phase on.
	rr.Status.Phase = "Remediating"
	if err := e.Kube.Status().Update(ctx, &rr); err != nil {
		t.Fatal(err)
	}
	sy.Observe(pipeline.Observation{Namespace: ns, Name: name, Count: 5, FirstSeen: now, LastSeen: now.Add(time.Minute)})
	sy.Flush(ctx)
	sy.Observe(pipeline.Observation{Namespace: ns, Name: name, Count: 4, FirstSeen: now, LastSeen: now})
	sy.Flush(ctx)
	if rr = get(); rr.Status.Phase != "Remediating" || rr.Status.Deduplication.OccurrenceCount != 5 {
		t.Fatalf("after the controller's write and two flushes: %+v (want phase Remediating, count 5)", rr.Status)
	}
}
