package ingest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/normalize"
	"github.com/alertgate/gateway/internal/pipeline"
)

// The fuzz targets feed arbitrary bodies to the readers. Properties: no
// panic; every accepted payload yields signals whose fingerprint is stable
// and whose resource name is a valid, bounded Kubernetes name; every stored
// value is bounded. Seeds: the examples (real payloads) and
// testdata/fuzz/<target>/.

func seed(f *testing.F, files ...string) {
	for _, name := range files {
		b, err := os.ReadFile("../../examples/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func checkSignals(t *testing.T, req *pipeline.Request) {
	t.Helper()
	for i := range req.Signals {
		s := &req.Signals[i]
		if len(s.Fingerprint) != 64 || strings.Trim(s.Fingerprint, "0123456789abcdef") != "" {
			t.Fatalf("fingerprint %q is not 64 hex digits", s.Fingerprint)
		}
		if again := normalize.Fingerprint(s); again != s.Fingerprint {
			t.Fatalf("fingerprint not stable: %s then %s", s.Fingerprint, again)
		}
		name := v1alpha1.EpisodeName(s.Fingerprint, 1<<40)
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			t.Fatalf("resource name %q: %v", name, errs)
		}
		for k, v := range s.Labels {
			if len(v) > 2048 || len(k) > 317 {
				t.Fatalf("label %q of %d bytes stored unbounded", k[:min(len(k), 20)], len(v))
			}
		}
		if len(s.Payload) > 16384 {
			t.Fatalf("payload of %d bytes stored unbounded", len(s.Payload))
		}
	}
}

func FuzzPrometheus(f *testing.F) {
	seed(f, "alertmanager-webhook.json")
	f.Add([]byte(`{"version":"4","alerts":[{"status":"resolved","labels":{"alertname":"A"},"endsAt":"2026-11-26T11:00:00Z"}]}`))
	rd := New(Options{})
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/signals/prometheus", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/json")
		req, err := rd.Prometheus(httptest.NewRecorder(), r, now)
		if err != nil {
			return
		}
		if len(req.Signals) == 0 {
			t.Fatal("an accepted webhook without signals")
		}
		checkSignals(t, req)
	})
}

func FuzzKubernetesEvent(f *testing.F) {
	seed(f, "kubernetes-event.json", "events-v1-event.json")
	rd := New(Options{})
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/signals/kubernetes-event", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/json")
		req, err := rd.KubernetesEvent(httptest.NewRecorder(), r, now)
		if err != nil {
			return
		}
		if len(req.Signals)+req.Ignored != 1 {
			t.Fatalf("an event made %d signals and %d ignored", len(req.Signals), req.Ignored)
		}
		checkSignals(t, req)
	})
}
