package normalize

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	corev1 "k8s.io/api/core/v1"
)

// benchAlert is a KubePodCrashLooping alert as Alertmanager delivers it for
// kube-prometheus (as bench/traffic generates them).
const benchAlert = `{"status":"firing","labels":{"alertname":"KubePodCrashLooping","container":"app","instance":"10.229.170.92:8443","job":"kube-state-metrics","namespace":"shipping","pod":"exporter-45caae5a5-5tdjb","prometheus":"monitoring/k8s","reason":"CrashLoopBackOff","severity":"warning","uid":"caae5afd-f545-4d4a-acaa-f545caae5afd"},"annotations":{"description":"Pod shipping/exporter-45caae5a5-5tdjb (app) is in waiting state (reason: \"CrashLoopBackOff\").","runbook_url":"https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping","summary":"Pod is crash looping."},"startsAt":"2026-11-27T00:45:58.579Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus-k8s-0:9090/graph?g0.expr=ALERTS%7Balertname%3D%22KubePodCrashLooping%22%7D+%3D%3D+1\u0026g0.tab=1","fingerprint":"f73d2f3dd62e006c"}`

const benchEvent = `{"kind":"Event","apiVersion":"v1","metadata":{"name":"api-7d9f8b6c5d-x2k4p.17a2b3c4d5e6f789","namespace":"payments","uid":"3f1c2a4e-5b6d-4c7e-8f90-a1b2c3d4e5f6","resourceVersion":"4417321","creationTimestamp":"2026-11-27T00:40:00Z"},"involvedObject":{"kind":"Pod","namespace":"payments","name":"api-7d9f8b6c5d-x2k4p","uid":"9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d","apiVersion":"v1","fieldPath":"spec.containers{app}"},"reason":"BackOff","message":"Back-off restarting failed container app in pod api-7d9f8b6c5d-x2k4p_payments","source":{"component":"kubelet","host":"ip-10-0-3-17.eu-west-1.compute.internal"},"firstTimestamp":"2026-11-27T00:40:00Z","lastTimestamp":"2026-11-27T00:52:00Z","count":12,"type":"Warning","eventTime":null,"reportingComponent":"kubelet","reportingInstance":"ip-10-0-3-17.eu-west-1.compute.internal"}`

// BenchmarkAlertDecodeNormalize is the per-alert work of the webhook
// path: decode one alert into template.Alert, normalize it, fingerprint
// it.
func BenchmarkAlertDecodeNormalize(b *testing.B) {
	raw := []byte(benchAlert)
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		var a template.Alert
		if err := json.Unmarshal(raw, &a); err != nil {
			b.Fatal(err)
		}
		s := Alert(&a, raw, now, Limits{})
		if s.Fingerprint == "" {
			b.Fatal("no fingerprint")
		}
	}
}

// BenchmarkAlert is normalize.Alert alone (the alert already decoded).
func BenchmarkAlert(b *testing.B) {
	raw := []byte(benchAlert)
	var a template.Alert
	if err := json.Unmarshal(raw, &a); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_ = Alert(&a, raw, now, Limits{})
	}
}

// BenchmarkFingerprint is the canonical tuple and its SHA-256 alone.
func BenchmarkFingerprint(b *testing.B) {
	var a template.Alert
	if err := json.Unmarshal([]byte(benchAlert), &a); err != nil {
		b.Fatal(err)
	}
	s := Alert(&a, nil, time.Now(), Limits{})
	b.ReportAllocs()
	for b.Loop() {
		_ = Fingerprint(&s)
	}
}

// BenchmarkCoreEventDecodeNormalize is the work of the Event path.
func BenchmarkCoreEventDecodeNormalize(b *testing.B) {
	raw := []byte(benchEvent)
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		var e corev1.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			b.Fatal(err)
		}
		_ = CoreEvent(&e, raw, now, Limits{})
	}
}
