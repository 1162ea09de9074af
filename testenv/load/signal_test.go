package load

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alertgate/gateway/internal/ingest"
	"github.com/alertgate/gateway/internal/pipeline"
)

// gatewayRead runs the gateway's own reader over a request body.
func gatewayRead(t *testing.T, path string, body []byte, now time.Time) *pipeline.Request {
	t.Helper()
	rd := ingest.New(ingest.Options{})
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	read := rd.Prometheus
	if path == PathEvent {
		read = rd.KubernetesEvent
	}
	pr, err := read(httptest.NewRecorder(), req, now)
	if err != nil {
		t.Fatalf("the gateway refused %s: %v\n%s", path, err, body)
	}
	if len(pr.Rejected) > 0 {
		t.Fatalf("the gateway rejected %v", pr.Rejected)
	}
	return pr
}

func TestSignalDefaultsKeyAndMember(t *testing.T) {
	s := Signal{Name: "KubePodCrashLooping", Namespace: "ns", Pod: "p"}
	explicit := s
	explicit.Container, explicit.Severity = DefaultContainer, DefaultSeverity
	side, warn := s, s
	side.Container, warn.Severity = "sidecar", "warning"
	if s.Key() != "ns/p/KubePodCrashLooping" || s.Member() != "ns/p/KubePodCrashLooping/app/critical" {
		t.Fatalf("key %q member %q", s.Key(), s.Member())
	}
	if s.Member() != explicit.Member() || !s.Equal(explicit) {
		t.Errorf("defaults written out make another member: %q vs %q", s.Member(), explicit.Member())
	}
	for _, o := range []Signal{side, warn} {
		if o.Key() != s.Key() || o.Member() == s.Member() {
			t.Errorf("%+v: key %q member %q, want the key %q and another member", o, o.Key(), o.Member(), s.Key())
		}
	}
	ev := Signal{Name: "BackOff", Namespace: "ns", Pod: "p", Event: &Event{Shape: ShapeBare}}
	if ev.Member() != "" || ev.Key() != "ns/p/BackOff" || ev.Labels() != nil {
		t.Errorf("event: member %q key %q labels %v", ev.Member(), ev.Key(), ev.Labels())
	}
	// The history contract: an alert with only the original fields is
	// written with only the original keys, and old JSON still reads.
	b, _ := json.Marshal(Signal{Name: "A", Namespace: "n", Pod: "p", StartsAt: time.Unix(0, 0).UTC()})
	if string(b) != `{"name":"A","namespace":"n","pod":"p","startsAt":"1970-01-01T00:00:00Z"}` {
		t.Errorf("old-style signal encodes as %s", b)
	}
	var old Signal
	if err := json.Unmarshal([]byte(`{"name":"A","namespace":"n","pod":"p","startsAt":"1970-01-01T00:00:00Z"}`), &old); err != nil || old.Member() != "n/p/A/app/critical" || old.IsEvent() || old.Resolved {
		t.Errorf("old JSON: %+v %v", old, err)
	}
}

// The gateway reads a webhook of mixed alerts as the signals say: one
// fingerprint per Key, one member per Member, resolved ones with their
// endsAt; and the Proxy's reading gives the signals back.
func TestWebhookAsTheGatewayReadsIt(t *testing.T) {
	start := time.Date(2025, 3, 1, 10, 0, 0, 123e6, time.UTC)
	base := Signal{Name: "KubePodCrashLooping", Namespace: "ns", Pod: "api-0", StartsAt: start}
	side, warn, other := base, base, base
	side.Container, side.StartsAt = "sidecar", start.Add(time.Minute)
	warn.Severity, warn.StartsAt = "warning", start.Add(-time.Hour)
	other.Pod = "api-1"
	sigs := []Signal{base, side, warn.Resolve(start.Add(-time.Minute)), other.Resolve(start.Add(2 * time.Second))}
	body, key := webhook(sigs)
	if key != `{}:{alertname="KubePodCrashLooping", namespace="ns"}` {
		t.Errorf("group key %s", key)
	}
	var msg struct {
		Status      string            `json:"status"`
		GroupLabels map[string]string `json:"groupLabels"`
		Alerts      []struct {
			Fingerprint string `json:"fingerprint"`
		} `json:"alerts"`
	}
	if err := json.Unmarshal(body, &msg); err != nil || msg.Status != "firing" || len(msg.GroupLabels) != 2 || msg.Alerts[0].Fingerprint == msg.Alerts[1].Fingerprint {
		t.Errorf("payload: %+v %v", msg, err)
	}
	pr := gatewayRead(t, PathPrometheus, body, start.Add(time.Hour))
	if len(pr.Signals) != len(sigs) {
		t.Fatalf("%d signals read, want %d", len(pr.Signals), len(sigs))
	}
	for i, g := range pr.Signals {
		s := sigs[i]
		if g.Name != s.Name || g.Namespace != s.Namespace || g.Target.Kind != "Pod" || g.Target.Name != s.Pod ||
			g.Resolved != s.Resolved || !g.StartsAt.Equal(s.StartsAt) || !g.ResolvedAt.Equal(s.EndsAt) ||
			g.Labels["container"] != s.container() || g.Labels["severity"] != s.severity() {
			t.Errorf("alert %d: the gateway read %+v for %s", i, g, s)
		}
		for j, h := range pr.Signals[:i] {
			if (g.Fingerprint == h.Fingerprint) != (s.Key() == sigs[j].Key()) {
				t.Errorf("alerts %d and %d: same fingerprint %v, same key %v", j, i, g.Fingerprint == h.Fingerprint, s.Key() == sigs[j].Key())
			}
			if (g.Member == h.Member) != (s.Member() == sigs[j].Member()) {
				t.Errorf("alerts %d and %d: same gateway member %v, same Member %v", j, i, g.Member == h.Member, s.Member() == sigs[j].Member())
			}
		}
	}
	back, bkey, err := parseRequest(PathPrometheus, body)
	if err != nil || bkey != key || len(back) != len(sigs) {
		t.Fatalf("read back: %d signals, key %s, %v", len(back), bkey, err)
	}
	for i := range sigs {
		if !back[i].Equal(sigs[i]) || back[i] != sigs[i] {
			t.Errorf("read back %+v, sent %+v", back[i], sigs[i])
		}
	}
	all, _ := webhook(sigs[2:])
	if err := json.Unmarshal(all, &msg); err != nil || msg.Status != "resolved" {
		t.Errorf("a batch of resolved alerts is not a resolved notification: %s", all)
	}
}

// Each Event shape, in both API versions, is read by the gateway as the
// same fingerprint at every occurrence, with the firing time the shape
// carries; and read back by the Proxy as it was.
func TestEventShapesAsTheGatewayReadsThem(t *testing.T) {
	first := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	now := first.Add(10 * time.Minute)
	for _, shape := range []EventShape{ShapeCount, ShapeSeries, ShapeBare} {
		for _, api := range []string{"", apiCore, apiEvents} {
			var fp string
			for n := int32(1); n <= 3; n++ {
				s := Signal{Name: "BackOff", Namespace: "ns", Pod: "web-0", Event: &Event{Shape: shape, APIVersion: api}}
				if shape != ShapeBare {
					s.StartsAt, s.Event.Count = first, n
					if shape == ShapeCount || n > 1 {
						s.Event.LastSeen = first.Add(time.Duration(n) * time.Minute)
					}
				}
				name := string(shape) + "/" + s.Event.apiVersion()
				path, body, _ := request([]Signal{s})
				if path != PathEvent {
					t.Fatalf("%s: sent to %s", name, path)
				}
				pr := gatewayRead(t, path, body, now)
				if len(pr.Signals) != 1 {
					t.Fatalf("%s: %d signals", name, len(pr.Signals))
				}
				g := pr.Signals[0]
				if g.Source != pipeline.SourceKubernetesEvent || g.Name != "BackOff" || g.Namespace != "ns" || g.Target.Kind != "Pod" ||
					g.Target.Name != "web-0" || g.Member != "" || !g.FiringTime.Equal(s.StartsAt) {
					t.Errorf("%s #%d: the gateway read %+v, firing time %s, want %s", name, n, g, g.FiringTime, s.StartsAt)
				}
				if fp != "" && g.Fingerprint != fp {
					t.Errorf("%s: occurrence %d has another fingerprint", name, n)
				}
				fp = g.Fingerprint
				back, _, err := parseRequest(path, body)
				if err != nil || len(back) != 1 || !back[0].Equal(s) {
					t.Errorf("%s #%d: read back %+v %+v, sent %+v %+v (%v)", name, n, back[0], back[0].Event, s, s.Event, err)
				}
			}
		}
	}
}

func TestBatchesAndSendRoutes(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		w.Header().Set("X-Request-ID", "rid")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"signals":[{"fingerprint":"f","status":"created","duplicate":false}]}`))
	}))
	defer srv.Close()
	a := Signal{Name: "A", Namespace: "n", Pod: "p"}
	e := Signal{Name: "BackOff", Namespace: "n", Pod: "p", Event: &Event{Shape: ShapeBare}}
	bs := Batches([]Signal{e, a, e, a.Resolve(time.Now())})
	if len(bs) != 3 || len(bs[0]) != 2 || !bs[1][0].IsEvent() || !bs[2][0].IsEvent() {
		t.Fatalf("batches %v", bs)
	}
	c := NewClient(time.Second)
	defer c.Close()
	for _, b := range bs {
		c.Send(t.Context(), srv.URL, b)
	}
	rs := c.Records()
	if strings.Join(paths, " ") != PathPrometheus+" "+PathEvent+" "+PathEvent || len(rs) != 3 {
		t.Fatalf("paths %v, %d records", paths, len(rs))
	}
	if rs[0].GroupKey == "" || rs[1].GroupKey != "" || rs[1].RequestID != "rid" || len(rs[1].Outcomes) != 1 || !rs[1].Signals[0].IsEvent() {
		t.Errorf("records %+v", rs)
	}
	defer func() {
		if recover() == nil {
			t.Error("a batch mixing an Event and an alert was sent")
		}
	}()
	c.Send(t.Context(), srv.URL, []Signal{a, e})
}
