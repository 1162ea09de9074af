package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alertgate/gateway/internal/ingest"
	"github.com/alertgate/gateway/internal/pipeline"
)

// panicky is a Deduper whose Claim panics, to show that a panic becomes a
// 500 and the server keeps serving.
type panicky struct{ pipeline.Deduper }

func (panicky) Claim(context.Context, string, time.Time, []pipeline.Claim) ([]pipeline.ClaimResult, error) {
	panic("boom")
}

type noCreator struct{ pipeline.Creator }

func (noCreator) Available() bool { return true }

type synced struct{ pipeline.Episodes }

func (synced) Synced() bool                     { return true }
func (synced) Healthy() bool                    { return true }
func (synced) View(string) pipeline.EpisodeView { return pipeline.EpisodeView{Next: 1} }

func newServer(t *testing.T) *Server {
	t.Helper()
	proc, err := pipeline.NewProcessor(panicky{}, noCreator{}, synced{}, nil, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return New(ingest.New(ingest.Options{}), proc, Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
}

func do(s *Server, method, path, body string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	return w
}

func TestRequestIDEchoedOrMade(t *testing.T) {
	s := newServer(t)
	if w := do(s, "GET", "/healthz", "", map[string]string{"X-Request-ID": "am-123.4"}); w.Header().Get("X-Request-ID") != "am-123.4" {
		t.Errorf("sane id not echoed: %q", w.Header().Get("X-Request-ID"))
	}
	if w := do(s, "GET", "/healthz", "", map[string]string{"X-Request-ID": "bad id\n<script>"}); len(w.Header().Get("X-Request-ID")) != 16 {
		t.Errorf("insane id kept: %q", w.Header().Get("X-Request-ID"))
	}
}

func TestPanicIs500AndServerLives(t *testing.T) {
	s := newServer(t)
	body := `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"}}]}`
	w := do(s, "POST", "/api/v1/signals/prometheus", body, map[string]string{"Content-Type": "application/json"})
	if w.Code != 500 || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("panic answered %d %s", w.Code, w.Body)
	}
	if w := do(s, "GET", "/healthz", "", nil); w.Code != 200 {
		t.Fatalf("after a panic /healthz is %d", w.Code)
	}
}

func TestNotFoundAndMethod(t *testing.T) {
	s := newServer(t)
	if w := do(s, "GET", "/nope", "", nil); w.Code != 404 || !strings.Contains(w.Body.String(), "not-found") {
		t.Errorf("unknown path: %d %s", w.Code, w.Body)
	}
	if w := do(s, "GET", "/api/v1/signals/prometheus", "", nil); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET on a signal route: %d %v", w.Code, w.Header())
	}
}

func TestSenderRate(t *testing.T) {
	l := newSenderLimits(1, 2)
	if !l.allow("a") || !l.allow("a") || l.allow("a") {
		t.Fatal("burst of 2 not enforced")
	}
	if !l.allow("b") {
		t.Fatal("one sender's bucket limited another")
	}
}
