package ingest_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alertgate/gateway/internal/ingest"
)

// benchWebhook is an Alertmanager webhook of n KubePodCrashLooping alerts
// with kube-prometheus' labels, one pod each.
func benchWebhook(n int) []byte {
	var alerts []string
	for i := range n {
		alerts = append(alerts, fmt.Sprintf(`{"status":"firing","labels":{"alertname":"KubePodCrashLooping","container":"app","instance":"10.229.170.92:8443","job":"kube-state-metrics","namespace":"shipping","pod":"exporter-45caae5a5-%05d","prometheus":"monitoring/k8s","reason":"CrashLoopBackOff","severity":"warning","uid":"caae5afd-f545-4d4a-acaa-f545caa%05d"},"annotations":{"description":"Pod shipping/exporter-45caae5a5-%05d (app) is in waiting state (reason: \"CrashLoopBackOff\").","runbook_url":"https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping","summary":"Pod is crash looping."},"startsAt":"2026-11-27T00:45:58.579Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus-k8s-0:9090/graph?g0.expr=ALERTS%%7Balertname%%3D%%22KubePodCrashLooping%%22%%7D+%%3D%%3D+1\u0026g0.tab=1","fingerprint":"f73d2f3dd62e%04x"}`, i, i, i, i))
	}
	return []byte(`{"receiver":"alertgate","status":"firing","alerts":[` + strings.Join(alerts, ",") +
		`],"groupLabels":{"namespace":"shipping"},"commonLabels":{"alertname":"KubePodCrashLooping","namespace":"shipping","severity":"warning"},"commonAnnotations":{},"externalURL":"http://alertmanager-main.monitoring.svc:9093","version":"4","groupKey":"{}/{severity=~\"warning|critical\"}:{namespace=\"shipping\"}","truncatedAlerts":0}`)
}

// BenchmarkPrometheusWebhook is the reader's whole work on a webhook of 10
// alerts: read the body, decode, validate, normalize and fingerprint every
// alert. ns/alert and allocs/alert divide by the 10 alerts.
func BenchmarkPrometheusWebhook(b *testing.B) {
	const n = 10
	body := benchWebhook(n)
	rd := ingest.New(ingest.Options{})
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	start := time.Now()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/signals/prometheus", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		req, err := rd.Prometheus(w, r, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if len(req.Signals) != n {
			b.Fatalf("%d signals", len(req.Signals))
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*n), "ns/alert")
}
