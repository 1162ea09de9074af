package traffic

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alertgate/gateway/internal/ingest"
	"github.com/alertgate/gateway/internal/pipeline"
)

func read(t *testing.T, rd *ingest.Reader, r Request) *pipeline.Request {
	t.Helper()
	hr := httptest.NewRequest(http.MethodPost, r.Path, bytes.NewReader(r.Body))
	hr.Header.Set("Content-Type", "application/json")
	read := rd.Prometheus
	if r.Path == EventPath {
		read = rd.KubernetesEvent
	}
	req, err := read(httptest.NewRecorder(), hr, time.Now())
	if err != nil {
		t.Fatalf("the gateway refuses a generated request: %v\n%s", err, r.Body)
	}
	return req
}

// Every request the generator makes is one the gateway accepts, the pool
// holds Pool distinct fingerprints of each source, and with NewRatio 0
// nothing outside the pool is ever sent.
func TestRequestsAreValidAndRepeatThePool(t *testing.T) {
	const pool = 200
	g, err := New(Options{RunID: "test", Seed: 1, Pool: pool, EventRatio: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	rd := ingest.New(ingest.Options{})
	fps := map[string]bool{}
	alerts := 0
	for _, r := range g.PoolRequests(20) {
		req := read(t, rd, r)
		if len(req.Signals) != r.Signals {
			t.Fatalf("request says %d signals, gateway read %d", r.Signals, len(req.Signals))
		}
		for _, s := range req.Signals {
			fps[s.Fingerprint] = true
			if s.Source == pipeline.SourcePrometheus {
				alerts++
			}
		}
	}
	if len(fps) != 2*pool || alerts != pool {
		t.Fatalf("pool: %d distinct fingerprints over %d alerts, want %d and %d", len(fps), alerts, 2*pool, pool)
	}
	for range 300 {
		r := g.Next()
		if r.Signals < 1 || r.Signals > 20 || r.New != 0 {
			t.Fatalf("request of %d signals, %d new", r.Signals, r.New)
		}
		for _, s := range read(t, rd, r).Signals {
			if !fps[s.Fingerprint] {
				t.Fatalf("signal %s/%s outside the pool with NewRatio 0", s.Name, s.Target.Name)
			}
		}
	}
}

func TestNewSignalsAreNew(t *testing.T) {
	g, err := New(Options{RunID: "test", Seed: 2, Pool: 100, NewRatio: 1, EventRatio: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	rd := ingest.New(ingest.Options{})
	seen := map[string]bool{}
	for _, r := range g.PoolRequests(20) {
		for _, s := range read(t, rd, r).Signals {
			seen[s.Fingerprint] = true
		}
	}
	for range 200 {
		r := g.Next()
		if r.New != r.Signals {
			t.Fatalf("NewRatio 1: %d of %d new", r.New, r.Signals)
		}
		for _, s := range read(t, rd, r).Signals {
			if seen[s.Fingerprint] {
				t.Fatalf("new signal %s %s/%s sent twice", s.Name, s.Namespace, s.Target.Name)
			}
			seen[s.Fingerprint] = true
		}
	}
	st := g.Stats()
	if st.Requests != 200 || st.New != st.Signals {
		t.Fatalf("stats %+v", st)
	}
}

// Every generated alert carries one of the label sets, and the gateway
// accepts them.
func TestLabelSetsAreAdded(t *testing.T) {
	sets := []map[string]string{{"region": "eu", "team": "sre"}, {"region": "us"}}
	g, err := New(Options{RunID: "test", Seed: 5, Pool: 50, NewRatio: 0.5, LabelSets: sets})
	if err != nil {
		t.Fatal(err)
	}
	rd := ingest.New(ingest.Options{})
	seen := map[string]int{}
	reqs := g.PoolRequests(20)
	for range 50 {
		reqs = append(reqs, g.Next())
	}
	for _, r := range reqs {
		for _, s := range read(t, rd, r).Signals {
			reg := s.Labels["region"]
			switch {
			case reg == "eu" && s.Labels["team"] == "sre", reg == "us" && s.Labels["team"] == "":
				seen[reg]++
			default:
				t.Fatalf("alert %s/%s carries region %q team %q, not one of %v", s.Name, s.Target.Name, reg, s.Labels["team"], sets)
			}
		}
	}
	if seen["eu"] == 0 || seen["us"] == 0 {
		t.Fatalf("one label set never used: %v", seen)
	}
}

func TestOptionsChecked(t *testing.T) {
	for _, o := range []Options{{NewRatio: 1.5}, {EventRatio: -1}, {BatchMin: 5, BatchMax: 2},
		{LabelSets: []map[string]string{{"alertname": "x"}}}, {LabelSets: []map[string]string{{"namespace": "x"}}}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// The share of new signals stays near NewRatio even when a namespace has
// fewer pool signals than a batch wants.
func TestNewRatioHoldsWithSmallPools(t *testing.T) {
	g, err := New(Options{RunID: "test", Seed: 4, Pool: 100, NewRatio: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	for range 2000 {
		g.Next()
	}
	st := g.Stats()
	if r := float64(st.New) / float64(st.Signals); r < 0.03 || r > 0.08 {
		t.Fatalf("%d new of %d signals (%.3f), want about 0.05", st.New, st.Signals, r)
	}
}
