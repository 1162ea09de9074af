package ingest

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alertgate/gateway/internal/pipeline"
)

var now = time.Date(2026, 11, 26, 10, 5, 0, 0, time.UTC)

func read(t *testing.T, path, contentType, body string) (*pipeline.Request, error) {
	t.Helper()
	rd := New(Options{MaxBody: 4096, MaxAlerts: 3, MaxLabels: 4})
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if path == "/events" {
		return rd.KubernetesEvent(httptest.NewRecorder(), r, now)
	}
	return rd.Prometheus(httptest.NewRecorder(), r, now)
}

func alertJSON(fields string) string {
	return `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A","pod":"p","namespace":"n"},"startsAt":"2026-11-26T10:00:00Z"` + fields + `}]}`
}

func TestRefusals(t *testing.T) {
	cases := []struct {
		name, path, ct, body string
		kind                 pipeline.InputKind
		field                string
	}{
		{"not JSON media type", "/am", "text/plain", alertJSON(""), pipeline.UnsupportedMedia, ""},
		{"too large", "/am", "application/json", strings.Repeat(" ", 5000), pipeline.TooLarge, ""},
		{"malformed", "/am", "application/json", `{"version":`, pipeline.Malformed, ""},
		{"invalid UTF-8", "/am", "application/json", "{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{\"alertname\":\"\xff\"}}]}", pipeline.Malformed, ""},
		{"wrong type", "/am", "application/json", `{"version":4}`, pipeline.Malformed, "version"},
		{"no version", "/am", "application/json", `{"alerts":[]}`, pipeline.Malformed, "version"},
		{"version 3", "/am", "application/json", `{"version":"3","alerts":[{}]}`, pipeline.Malformed, "version"},
		{"no alerts", "/am", "application/json", `{"version":"4"}`, pipeline.Malformed, "alerts"},
		{"too many alerts", "/am", "application/json", `{"version":"4","alerts":[{},{},{},{}]}`, pipeline.Malformed, "alerts"},
		{"event without reason", "/events", "application/json", `{"apiVersion":"v1","kind":"Event","type":"Warning","involvedObject":{"kind":"Pod","name":"p"}}`, pipeline.Malformed, "reason"},
		{"event type", "/events", "application/json", `{"apiVersion":"v1","kind":"Event","type":"Fatal","reason":"X"}`, pipeline.Malformed, "type"},
		{"events.k8s.io without regarding name", "/events", "application/json", `{"apiVersion":"events.k8s.io/v1","type":"Warning","reason":"X","regarding":{"kind":"Pod"}}`, pipeline.Malformed, "regarding.name"},
		{"other kind", "/events", "application/json", `{"apiVersion":"v1","kind":"Pod"}`, pipeline.Malformed, "kind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := read(t, c.path, c.ct, c.body)
			var ie *pipeline.InputError
			if !errors.As(err, &ie) || ie.Kind != c.kind || ie.Field != c.field {
				t.Fatalf("err = %#v, want kind %d field %q", err, c.kind, c.field)
			}
		})
	}
}

// One bad alert never costs the others of its batch: it is rejected alone,
// with its field and reason.
func TestBadAlertIsRejectedAlone(t *testing.T) {
	good := `{"status":"firing","labels":{"alertname":"A","pod":"p"}}`
	cases := []struct{ name, alert, field string }{
		{"bad status", `{"status":"pending","labels":{"alertname":"A"}}`, "alerts[1].status"},
		{"null labels", `{"status":"firing","labels":null}`, "alerts[1].labels.alertname"},
		{"label type", `{"status":"firing","labels":{"alertname":1}}`, "alerts[1].labels"},
		{"too many labels", `{"status":"firing","labels":{"alertname":"A","a":"","b":"","c":"","d":""}}`, "alerts[1].labels"},
		{"control char in label name", `{"status":"firing","labels":{"alertname":"A","a\u0007b":"x"}}`, "alerts[1].labels[\"a\\ab\"]"},
		{"label name over 256 bytes", `{"status":"firing","labels":{"alertname":"A","` + strings.Repeat("l", 257) + `":"x"}}`, "alerts[1].labels"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := read(t, "/am", "application/json", `{"version":"4","alerts":[`+good+`,`+c.alert+`,`+good+`]}`)
			if err != nil {
				t.Fatalf("err = %v, want the valid alerts kept", err)
			}
			if len(req.Signals) != 2 || req.Signals[0].Index != 0 || req.Signals[1].Index != 2 {
				t.Fatalf("signals %+v, want alerts 0 and 2", req.Signals)
			}
			if len(req.Rejected) != 1 || req.Rejected[0].Index != 1 || !strings.HasPrefix(req.Rejected[0].Field, c.field) || req.Rejected[0].Reason == "" {
				t.Fatalf("rejected %+v, want alert 1 at %s", req.Rejected, c.field)
			}
		})
	}
}

// A timestamp beyond the clock skew (a sender's fast clock) is clamped to
// the receive time and flagged, never refused.
func TestFutureTimestampIsClamped(t *testing.T) {
	req, err := read(t, "/am", "application/json", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"},"startsAt":"2030-01-01T00:00:00Z"}]}`)
	if err != nil || len(req.Signals) != 1 {
		t.Fatalf("req %+v err %v", req, err)
	}
	s := req.Signals[0]
	if !s.FiringTime.Equal(now) || s.StartsAt.Year() != 2030 || len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], "startsAt") {
		t.Errorf("firing %s startsAt %s warnings %v: want the firing time clamped, startsAt kept, one warning", s.FiringTime, s.StartsAt, s.Warnings)
	}
	req, err = read(t, "/events", "application/json", `{"apiVersion":"events.k8s.io/v1","type":"Warning","reason":"X","regarding":{"kind":"Pod","name":"p"},"eventTime":"2031-01-01T00:00:00.000000Z"}`)
	if err != nil || len(req.Signals) != 1 || !req.Signals[0].FiringTime.Equal(now) || len(req.Signals[0].Warnings) != 1 {
		t.Fatalf("event: req %+v err %v", req, err)
	}
}

func TestEveryAlertOfTheBatch(t *testing.T) {
	b, err := os.ReadFile("../../examples/alertmanager-webhook.json")
	if err != nil {
		t.Fatal(err)
	}
	rd := New(Options{})
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(b)))
	req, err := rd.Prometheus(httptest.NewRecorder(), r, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Signals) != 3 {
		t.Fatalf("%d signals, want 3", len(req.Signals))
	}
	for _, s := range req.Signals {
		if s.Resolved || !strings.Contains(string(s.Payload), `"alertname"`) || len(s.Fingerprint) != 64 {
			t.Errorf("signal %+v", s)
		}
	}
}

func TestNormalEventIsIgnored(t *testing.T) {
	req, err := read(t, "/events", "application/json", `{"apiVersion":"v1","kind":"Event","type":"Normal","reason":"Scheduled","involvedObject":{"kind":"Pod","name":"p"}}`)
	if err != nil || len(req.Signals) != 0 || req.Ignored != 1 {
		t.Fatalf("req %+v err %v", req, err)
	}
}

// Duplicated keys: encoding/json keeps the last; the outcome is the same
// every time.
func TestDuplicatedKeysLastWins(t *testing.T) {
	req, err := read(t, "/am", "application/json", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A","alertname":"B"}}]}`)
	if err != nil || req.Signals[0].Name != "B" {
		t.Fatalf("req %+v err %v", req, err)
	}
}

func TestDeepNestingIsRefused(t *testing.T) {
	body := `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"},"annotations":{"x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}}]}`
	rd := New(Options{MaxBody: 1 << 20})
	_, err := rd.Prometheus(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)), now)
	var ie *pipeline.InputError
	if !errors.As(err, &ie) || ie.Kind != pipeline.Malformed {
		t.Fatalf("err = %v", err)
	}
}
