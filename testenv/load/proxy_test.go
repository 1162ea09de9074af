package load

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stubGateway answers with code(path, n) for its n-th request (from 1)
// and remembers what it got.
type stubGateway struct {
	*httptest.Server
	code func(path string, n int) int

	mu     sync.Mutex
	n      int
	bodies [][]byte
	auth   []string
}

func newStubGateway(t *testing.T, code func(path string, n int) int) *stubGateway {
	g := &stubGateway{code: code}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.n++
		n := g.n
		g.bodies = append(g.bodies, b)
		g.auth = append(g.auth, r.Header.Get("Authorization"))
		g.mu.Unlock()
		c := g.code(r.URL.Path, n)
		w.Header().Set("X-Request-ID", "req-"+string(rune('a'+n%26)))
		if c >= 500 {
			w.Header().Set("Retry-After", "1")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(c)
		if c < 300 {
			_, _ = w.Write([]byte(`{"requestId":"x","signals":[{"fingerprint":"f","status":"created","duplicate":false}]}`))
		} else {
			_, _ = w.Write([]byte(`{"title":"Dependency unavailable","status":` + http.StatusText(c) + `}`))
		}
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *stubGateway) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

func post(t *testing.T, url string, body []byte, auth string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

func TestProxyRecordsIntoTheClientsSequence(t *testing.T) {
	var fails atomic.Int64
	fails.Store(2)
	g := newStubGateway(t, func(path string, n int) int {
		if path == PathPrometheus && fails.Add(-1) >= 0 {
			return http.StatusServiceUnavailable
		}
		return http.StatusCreated
	})
	c := NewClient(time.Second)
	defer c.Close()
	p, err := c.NewProxy("am-0", g.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	sigs := []Signal{pod, pod.Resolve(t0.Add(time.Minute))}
	sigs[1].Pod = "api-1"
	body := Webhook(sigs)
	// Alertmanager retries the same body after a 503.
	var last *http.Response
	var lastBody []byte
	for range 3 {
		last, lastBody = post(t, p.URL()+PathPrometheus, body, "Bearer s3cret")
	}
	if last.StatusCode != 201 || last.Header.Get("X-Request-ID") == "" || !strings.Contains(string(lastBody), `"created"`) {
		t.Fatalf("the sender got %d %v %s", last.StatusCode, last.Header, lastBody)
	}
	post(t, p.URL()+PathPrometheus, body, "")
	ev := Signal{Name: "BackOff", Namespace: "ns", Pod: "web-0", StartsAt: t0, Event: &Event{Shape: ShapeCount, Count: 2, LastSeen: t0.Add(time.Minute)}}
	post(t, p.URL()+PathEvent, EventJSON(ev), "")
	c.Send(t.Context(), g.URL, []Signal{pod})

	g.mu.Lock()
	if !bytes.Equal(g.bodies[0], body) || g.auth[0] != "Bearer s3cret" {
		t.Errorf("the gateway got %q with auth %q", g.bodies[0], g.auth[0])
	}
	g.mu.Unlock()
	rs := c.Records()
	if len(rs) != 6 {
		t.Fatalf("%d records, want 6", len(rs))
	}
	seqs := map[int]bool{}
	for i, r := range rs {
		seqs[r.Seq] = true
		if i < 5 && (r.Sender != "am-0" || r.Gateway != g.URL || r.Start.IsZero() || r.Duration <= 0) {
			t.Errorf("record %d: %+v", i, r)
		}
	}
	if len(seqs) != 6 || !seqs[1] || !seqs[6] || rs[5].Sender != "" {
		t.Errorf("sequence numbers %v, last sender %q: want 1..6 shared with the Client", seqs, rs[5].Sender)
	}
	for i, want := range []struct {
		status, attempt int
	}{{503, 1}, {503, 2}, {201, 3}, {201, 1}} {
		r := rs[i]
		if r.Status != want.status || r.Attempt != want.attempt || len(r.Signals) != 2 || !r.Signals[0].Equal(sigs[0]) || !r.Signals[1].Equal(sigs[1]) ||
			r.GroupKey != `{}:{alertname="KubePodCrashLooping", namespace="ns"}` {
			t.Errorf("record %d: status %d attempt %d signals %v key %s, want %d, attempt %d, the signals sent", i, r.Status, r.Attempt, r.Signals, r.GroupKey, want.status, want.attempt)
		}
	}
	if rs[0].Err == "" || rs[0].RetryAfter != "1" || rs[0].Outcomes != nil || rs[2].Err != "" || len(rs[2].Outcomes) != 1 || rs[2].RequestID == "" {
		t.Errorf("answers: 503 %+v, 201 %+v", rs[0], rs[2])
	}
	if e := rs[4]; len(e.Signals) != 1 || !e.Signals[0].Equal(ev) || e.GroupKey != "" || e.Status != 201 {
		t.Errorf("event record %+v", e)
	}
}

func TestProxyTargets(t *testing.T) {
	a := newStubGateway(t, func(string, int) int { return 200 })
	b := newStubGateway(t, func(string, int) int { return 200 })
	c := NewClient(time.Second)
	p, err := c.NewProxy("rr", a.URL, b.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	body := Webhook([]Signal{pod})
	for range 4 {
		post(t, p.URL()+PathPrometheus, body, "")
	}
	if a.count() != 2 || b.count() != 2 {
		t.Errorf("round robin: %d and %d", a.count(), b.count())
	}
	p.SetTargets(b.URL)
	post(t, p.URL()+PathPrometheus, body, "")
	if b.count() != 3 {
		t.Errorf("after SetTargets: b saw %d", b.count())
	}
	// A gateway that is gone: status 0 recorded, 502 to the sender.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	p.SetTargets(dead.URL)
	if resp, _ := post(t, p.URL()+PathPrometheus, body, ""); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("sender got %d from a dead gateway", resp.StatusCode)
	}
	rs := c.Records()
	if r := rs[len(rs)-1]; r.Status != 0 || r.Err == "" || r.Gateway != dead.URL || r.Acknowledged() {
		t.Errorf("record of a dead gateway: %+v", r)
	}
}

// Close cancels a forward under way, records it, and leaves no connection.
func TestProxyCloseIsLeakFree(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	c := NewClient(10 * time.Second)
	p, err := c.NewProxy("am", hang.URL)
	if err != nil {
		t.Fatal(err)
	}
	sender := &http.Client{Transport: &http.Transport{}}
	done := make(chan error, 1)
	go func() {
		resp, err := sender.Post(p.URL()+PathPrometheus, "application/json", bytes.NewReader(Webhook([]Signal{pod})))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for p.OpenConns() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if p.OpenConns() < 2 {
		t.Fatalf("%d connections open, want the sender's and the gateway's", p.OpenConns())
	}
	start := time.Now()
	p.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %s", d)
	}
	if n := p.OpenConns(); n != 0 {
		t.Errorf("%d connections open after Close", n)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the sender's request did not end")
	}
	if rs := c.Records(); len(rs) != 1 || rs[0].Status != 0 || rs[0].Err == "" {
		t.Errorf("the cancelled forward: %+v", rs)
	}
	if _, err := sender.Post(p.URL()+PathPrometheus, "application/json", bytes.NewReader(nil)); err == nil {
		t.Error("a closed proxy answered")
	}
	sender.CloseIdleConnections()
}
