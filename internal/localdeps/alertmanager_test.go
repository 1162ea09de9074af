package localdeps

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// webhookMessage is the part of Alertmanager's webhook payload the test
// checks; endsAt stays a string to check its exact form.
type webhookMessage struct {
	Version     string            `json:"version"`
	GroupKey    string            `json:"groupKey"`
	Status      string            `json:"status"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
		EndsAt string            `json:"endsAt"`
	} `json:"alerts"`
}

type delivery struct {
	at   time.Time
	msg  webhookMessage
	auth string
	code int
}

// webhookReceiver records every POST and answers with the status that
// code returns for the group's alertname and the number of earlier
// attempts for that group.
type webhookReceiver struct {
	*httptest.Server
	code func(group string, attempt int) int

	mu  sync.Mutex
	got []delivery
}

func newWebhookReceiver(t *testing.T, code func(group string, attempt int) int) *webhookReceiver {
	r := &webhookReceiver{code: code}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var m webhookMessage
		if err := json.NewDecoder(req.Body).Decode(&m); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		r.mu.Lock()
		g := m.GroupLabels["alertname"]
		d := delivery{at: time.Now(), msg: m, auth: req.Header.Get("Authorization"), code: r.code(g, len(r.deliveries(g)))}
		r.got = append(r.got, d)
		r.mu.Unlock()
		w.WriteHeader(d.code)
	}))
	t.Cleanup(r.Close)
	return r
}

// deliveries for one group; the caller holds mu.
func (r *webhookReceiver) deliveries(group string) []delivery {
	var out []delivery
	for _, d := range r.got {
		if d.msg.GroupLabels["alertname"] == group {
			out = append(out, d)
		}
	}
	return out
}

// waitFor polls until at least n deliveries arrived for group, failing
// after timeout.
func (r *webhookReceiver) waitFor(t *testing.T, group string, n int, timeout time.Duration) []delivery {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		ds := r.deliveries(group)
		r.mu.Unlock()
		if len(ds) >= n {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s: %d deliveries after %s, want %d", group, len(ds), timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *webhookReceiver) count(group string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.deliveries(group))
}

func startTestAlertmanager(t *testing.T, opts AlertmanagerOptions) *Alertmanager {
	t.Helper()
	if os.Getenv("ALERTMANAGER_BIN") == "" {
		t.Fatal("ALERTMANAGER_BIN is not set; run `make test`, or ALERTMANAGER_BIN=$(hack/alertmanager.sh) go test ./internal/localdeps")
	}
	opts.Output = t.Output()
	start := time.Now()
	am, err := StartAlertmanager(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("alertmanager pid %d ready on %s in %s", am.PID(), am.URL(), time.Since(start).Round(time.Millisecond))
	t.Cleanup(am.Stop)
	return am
}

func push(t *testing.T, am *Alertmanager, alerts ...PostableAlert) time.Time {
	t.Helper()
	at := time.Now()
	if err := am.Push(context.Background(), alerts); err != nil {
		t.Fatal(err)
	}
	return at
}

func alert(name, instance string) PostableAlert {
	return PostableAlert{
		Labels:       map[string]string{"alertname": name, "instance": instance, "severity": "critical"},
		Annotations:  map[string]string{"summary": name + " on " + instance},
		GeneratorURL: "http://127.0.0.1:9090/graph",
	}
}

const zeroTime = "0001-01-01T00:00:00Z"

// A real Alertmanager's webhook contract, as the gateway sees it: one POST
// per alert group, payload version 4, firing alerts with a zero endsAt,
// resolved notifications, retries of 5xx within a flush, and no retry of a
// 4xx such as 429 until the group's next flush (group_interval later).
func TestAlertmanagerWebhookContract(t *testing.T) {
	rcv := newWebhookReceiver(t, func(group string, attempt int) int {
		switch group {
		case "Retry503":
			if attempt < 3 {
				return http.StatusServiceUnavailable
			}
		case "NoRetry429", "Reflush429":
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	})
	am := startTestAlertmanager(t, AlertmanagerOptions{
		WebhookURL:     rcv.URL + "/webhook",
		GroupWait:      100 * time.Millisecond,
		GroupInterval:  time.Second,
		RepeatInterval: time.Hour,
	})

	// Three firing alerts in two groups.
	pushed := push(t, am, alert("DiskFull", "a"), alert("DiskFull", "b"), alert("CPUHigh", "a"))
	disk := rcv.waitFor(t, "DiskFull", 1, 5*time.Second)
	cpu := rcv.waitFor(t, "CPUHigh", 1, 5*time.Second)
	t.Logf("push to delivery (group_wait 100ms): DiskFull %s, CPUHigh %s",
		disk[0].at.Sub(pushed).Round(time.Millisecond), cpu[0].at.Sub(pushed).Round(time.Millisecond))
	for _, tc := range []struct {
		d      delivery
		alerts int
	}{{disk[0], 2}, {cpu[0], 1}} {
		m := tc.d.msg
		if m.Version != "4" || m.Status != "firing" || len(m.Alerts) != tc.alerts || tc.d.auth != "" {
			t.Fatalf("group %v: version %q status %q %d alerts auth %q, want version 4, firing, %d alerts, no auth",
				m.GroupLabels, m.Version, m.Status, len(m.Alerts), tc.d.auth, tc.alerts)
		}
		for _, a := range m.Alerts {
			if a.Status != "firing" || a.EndsAt != zeroTime {
				t.Fatalf("firing alert %v: status %q endsAt %q, want firing, %s", a.Labels, a.Status, a.EndsAt, zeroTime)
			}
		}
	}

	// Resolving is pushing the alert again with endsAt now.
	resolved := alert("CPUHigh", "a")
	resolved.EndsAt = time.Now()
	pushed = push(t, am, resolved)
	cpu = rcv.waitFor(t, "CPUHigh", 2, 5*time.Second)
	m := cpu[1].msg
	if m.Status != "resolved" || len(m.Alerts) != 1 || m.Alerts[0].Status != "resolved" || m.Alerts[0].EndsAt == zeroTime {
		t.Fatalf("after resolving: %+v, want one resolved alert with its endsAt", m)
	}
	t.Logf("resolve to delivery (group_interval 1s): %s", cpu[1].at.Sub(pushed).Round(time.Millisecond))

	// 503: retried with exponential backoff (0.5 s, x1.5, ±50%) within the
	// same flush until it succeeds.
	pushed = push(t, am, alert("Retry503", "a"))
	retried := rcv.waitFor(t, "Retry503", 4, 10*time.Second)
	var gaps []string
	for i := 1; i < len(retried); i++ {
		gaps = append(gaps, retried[i].at.Sub(retried[i-1].at).Round(time.Millisecond).String())
	}
	t.Logf("503 x3 then 200: %d attempts, delivered %s after the push, gaps %s",
		len(retried), retried[len(retried)-1].at.Sub(pushed).Round(time.Millisecond), strings.Join(gaps, " "))

	// 429: not retried. An Alertmanager with a long group_interval tries
	// once; one with group_interval 1s sends again at each flush, because
	// only a success enters the notification log. A second, unclustered
	// instance also delivers an alert the first one delivers: an HA pair
	// without gossip sends everything twice.
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	slow := startTestAlertmanager(t, AlertmanagerOptions{
		WebhookURL:      rcv.URL + "/webhook",
		GroupWait:       100 * time.Millisecond,
		GroupInterval:   time.Minute,
		RepeatInterval:  time.Hour,
		BearerTokenFile: token,
	})
	push(t, slow, alert("NoRetry429", "a"), alert("Pair", "a"))
	push(t, am, alert("Reflush429", "a"), alert("Pair", "a"))
	const watch = 3500 * time.Millisecond
	time.Sleep(watch)
	no, re := rcv.count("NoRetry429"), rcv.count("Reflush429")
	t.Logf("429 for %s: %d attempts with group_interval 1m, %d with group_interval 1s", watch, no, re)
	if no != 1 {
		t.Errorf("429 with group_interval 1m: %d attempts in %s, want 1 (no retry)", no, watch)
	}
	if re < 2 || re > 5 {
		t.Errorf("429 with group_interval 1s: %d attempts in %s, want one per flush (2..5)", re, watch)
	}
	if n := rcv.count("Retry503"); n != 4 {
		t.Errorf("Retry503: %d attempts, want 4 (no resend after the success)", n)
	}
	pair := rcv.waitFor(t, "Pair", 2, time.Second)
	if len(pair) != 2 || pair[0].msg.GroupKey != pair[1].msg.GroupKey {
		t.Errorf("unclustered pair: %d deliveries, want 2 with one group key", len(pair))
	}
	rcv.mu.Lock()
	auth := rcv.deliveries("NoRetry429")[0].auth
	rcv.mu.Unlock()
	if auth != "Bearer s3cret" {
		t.Errorf("Authorization %q, want the token file's content as a bearer token", auth)
	}
}

func TestAlertmanagerStartErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := StartAlertmanager(ctx, AlertmanagerOptions{Bin: "/bin/true", WebhookURL: "http://10.0.0.1/"}); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("non-loopback webhook: %v, want a loopback error", err)
	}
	// An executable that exits at once: the error says so, with its output.
	_, err := StartAlertmanager(ctx, AlertmanagerOptions{Bin: "/bin/echo", WebhookURL: "http://127.0.0.1:1/"})
	if err == nil || !strings.Contains(err.Error(), "exited at start") || !strings.Contains(err.Error(), "--cluster.listen-address=") {
		t.Fatalf("exiting binary: %v, want an exit error with its log tail", err)
	}
}

// Pause freezes the process, Kill and Start bring it back on the same URL,
// and the PID is recorded for ReapOrphans while it runs.
func TestAlertmanagerPauseKillRestart(t *testing.T) {
	rcv := newWebhookReceiver(t, func(string, int) int { return http.StatusOK })
	am := startTestAlertmanager(t, AlertmanagerOptions{WebhookURL: rcv.URL, GroupWait: 100 * time.Millisecond})
	ctx := context.Background()
	pid := am.PID()
	if _, ok := readPIDs(os.Getpid())[pid]; !ok {
		t.Fatalf("pid %d not recorded", pid)
	}
	if err := am.Pause(); err != nil {
		t.Fatal(err)
	}
	if am.ready(ctx) {
		t.Fatal("a paused alertmanager answered")
	}
	if err := am.Resume(); err != nil {
		t.Fatal(err)
	}
	if !am.ready(ctx) {
		t.Fatal("a resumed alertmanager did not answer")
	}
	url := am.URL()
	am.Kill()
	if _, ok := readPIDs(os.Getpid())[pid]; ok || am.PID() != 0 {
		t.Fatalf("pid %d still recorded after Kill", pid)
	}
	if err := am.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if am.URL() != url || am.PID() == pid {
		t.Fatalf("restarted on %s pid %d, want %s and a new pid", am.URL(), am.PID(), url)
	}
	push(t, am, alert("AfterRestart", "a"))
	rcv.waitFor(t, "AfterRestart", 1, 5*time.Second)
}
