package normalize

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/alertgate/gateway/internal/pipeline"
)

var now = time.Date(2026, 11, 26, 10, 5, 0, 0, time.UTC)

// The golden values pin the documented canonical tuple: changing the tuple
// changes every fingerprint, and so every deduplication key and resource
// name in production. Change them only with a new fingerprintVersion.
func TestFingerprintGolden(t *testing.T) {
	cases := []struct {
		name string
		sig  pipeline.Signal
		want string
	}{
		{"pod alert", pipeline.Signal{Source: pipeline.SourcePrometheus, Name: "KubePodCrashLooping", Namespace: "payments",
			Target: pipeline.Target{Kind: "Pod", Name: "api-7d9f8b6c5d-x2k4p", Namespace: "payments"}},
			"89a240f103e2151705deb037f2e435389559907b949c7b5844a385d563218e41"},
		{"node alert", pipeline.Signal{Source: pipeline.SourcePrometheus, Name: "KubeNodeNotReady",
			Target: pipeline.Target{Kind: "Node", Name: "worker-3"}},
			"bacb0653f85b9f15688c21f874d0b29b31b660b995190fbbafb3fe1759cb8052"},
		{"event", pipeline.Signal{Source: pipeline.SourceKubernetesEvent, Name: "BackOff", Namespace: "payments",
			Target: pipeline.Target{Kind: "Pod", Name: "api-7d9f8b6c5d-x2k4p", Namespace: "payments"}},
			"e1ed96563f68df5dd247134e4658eeda5dc2f910d06539825a809bd5ead1f486"},
		{"no target: labels decide", pipeline.Signal{Source: pipeline.SourcePrometheus, Name: "Watchdog",
			Labels: map[string]string{"alertname": "Watchdog", "prometheus": "monitoring/k8s"}},
			"c315eb06958168b176f271b57abcc21954d32c8000ec4c964c6eb490073304b8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Fingerprint(&c.sig); got != c.want {
				t.Errorf("Fingerprint = %s, want %s", got, c.want)
			}
		})
	}
}

func TestFingerprintIgnoresSeverityAnnotationsAndTimes(t *testing.T) {
	a := pipeline.Signal{Source: pipeline.SourcePrometheus, Name: "X", Namespace: "n", Target: pipeline.Target{Kind: "Pod", Name: "p"}}
	b := a
	b.Severity, b.Annotations, b.FiringTime = "critical", map[string]string{"summary": "changed"}, now
	if Fingerprint(&a) != Fingerprint(&b) {
		t.Fatal("severity, annotations or firing time changed the fingerprint")
	}
	c := a
	c.Target.Name = "q"
	if Fingerprint(&a) == Fingerprint(&c) {
		t.Fatal("a different target kept the fingerprint")
	}
}

// Netstring framing: moving bytes between fields must change the digest.
func TestFingerprintFramingIsUnambiguous(t *testing.T) {
	a := pipeline.Signal{Name: "ab", Namespace: "c", Target: pipeline.Target{Kind: "Pod", Name: "x"}}
	b := pipeline.Signal{Name: "a", Namespace: "bc", Target: pipeline.Target{Kind: "Pod", Name: "x"}}
	if Fingerprint(&a) == Fingerprint(&b) {
		t.Fatal("field boundaries are ambiguous")
	}
}

func TestAlertTargets(t *testing.T) {
	cases := []struct {
		labels template.KV
		want   pipeline.Target
	}{
		{template.KV{"alertname": "A", "namespace": "ns", "pod": "p", "deployment": "d"}, pipeline.Target{Kind: "Pod", Name: "p", Namespace: "ns"}},
		{template.KV{"alertname": "A", "namespace": "ns", "deployment": "d"}, pipeline.Target{Kind: "Deployment", Name: "d", Namespace: "ns"}},
		{template.KV{"alertname": "A", "namespace": "ns", "statefulset": "s"}, pipeline.Target{Kind: "StatefulSet", Name: "s", Namespace: "ns"}},
		{template.KV{"alertname": "A", "namespace": "ns", "daemonset": "ds"}, pipeline.Target{Kind: "DaemonSet", Name: "ds", Namespace: "ns"}},
		{template.KV{"alertname": "A", "namespace": "ns", "job_name": "j", "job": "kube-state-metrics"}, pipeline.Target{Kind: "Job", Name: "j", Namespace: "ns"}},
		{template.KV{"alertname": "A", "node": "n1", "job": "node-exporter"}, pipeline.Target{Kind: "Node", Name: "n1"}},
		{template.KV{"alertname": "A", "namespace": "ns"}, pipeline.Target{Kind: "Namespace", Name: "ns"}},
		{template.KV{"alertname": "A", "job": "prometheus"}, pipeline.Target{}},
	}
	for _, c := range cases {
		s := Alert(&template.Alert{Status: "firing", Labels: c.labels, StartsAt: now}, nil, now, Limits{})
		if s.Target != c.want {
			t.Errorf("labels %v: target %+v, want %+v", c.labels, s.Target, c.want)
		}
	}
}

func TestAlertResolvedAndTimes(t *testing.T) {
	start := now.Add(-time.Hour)
	s := Alert(&template.Alert{Status: "resolved", Labels: template.KV{"alertname": "A", "severity": "CRIT"}, StartsAt: start, EndsAt: now}, []byte(`{}`), now.Add(time.Second), Limits{})
	if !s.Resolved || !s.ResolvedAt.Equal(now) || !s.FiringTime.Equal(start) || s.Severity != "critical" {
		t.Fatalf("unexpected signal %+v", s)
	}
}

func TestTruncation(t *testing.T) {
	long := strings.Repeat("é", 5000) // 2 bytes per rune
	s := Alert(&template.Alert{Status: "firing", Labels: template.KV{"alertname": "A"}, Annotations: template.KV{"description": long}},
		[]byte(strings.Repeat("x", 20000)), now, Limits{MaxValue: 101, MaxPayload: 1000})
	d := s.Annotations["description"]
	if len(d) > 101 || !strings.HasSuffix(d, TruncatedMarker) || !strings.HasPrefix(d, "éé") {
		t.Fatalf("description not truncated on a rune boundary: %d bytes %q", len(d), d[len(d)-20:])
	}
	if len(s.Payload) > 1000 || !s.PayloadTruncated {
		t.Fatalf("payload %d bytes, truncated=%v", len(s.Payload), s.PayloadTruncated)
	}
}

func TestEvents(t *testing.T) {
	first := metav1.NewTime(now.Add(-time.Minute))
	core := CoreEvent(&corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "payments"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "api-7d9f8b6c5d-x2k4p"},
		Reason:         "BackOff", Type: "Warning", FirstTimestamp: first, Source: corev1.EventSource{Component: "kubelet"},
	}, nil, now, Limits{})
	if core.Fingerprint != "e1ed96563f68df5dd247134e4658eeda5dc2f910d06539825a809bd5ead1f486" ||
		core.Target.Namespace != "payments" || !core.FiringTime.Equal(first.Time) || core.Labels["component"] != "kubelet" {
		t.Fatalf("core event: %+v", core)
	}
	et := metav1.NewMicroTime(now.Add(-2 * time.Minute))
	v1 := EventsV1(&eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: "payments"},
		Regarding:  corev1.ObjectReference{Kind: "Pod", Name: "api-7d9f8b6c5d-x2k4p", Namespace: "payments"},
		Reason:     "BackOff", Type: "Warning", EventTime: et,
	}, nil, now, Limits{})
	if v1.Fingerprint != core.Fingerprint {
		t.Fatal("the same event in events.k8s.io/v1 has another fingerprint than in core/v1")
	}
	if !v1.FiringTime.Equal(et.Time) {
		t.Fatalf("events.k8s.io/v1 firing time %s, want eventTime %s", v1.FiringTime, et.Time)
	}
	node := CoreEvent(&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "worker-3"}, Reason: "NodeNotReady", Type: "Warning"}, nil, now, Limits{})
	if node.Namespace != "" || node.Target.Namespace != "" {
		t.Fatalf("a Node event got a namespace: %+v", node)
	}
}

func TestSeverity(t *testing.T) {
	for in, want := range map[string]string{"": "unknown", "Critical": "critical", "warn": "warning", "INFO": "info", "sev-x": "sev-x"} {
		if got := Severity(in); got != want {
			t.Errorf("Severity(%q) = %q, want %q", in, got, want)
		}
	}
}

// Two alerts of one fingerprint (two containers of a pod, a warning and a
// critical) are different members; the same label set is one member
// whatever its order or times.
func TestMemberID(t *testing.T) {
	a := map[string]string{"alertname": "KubePodCrashLooping", "namespace": "ns", "pod": "p", "container": "app"}
	b := map[string]string{"container": "app", "pod": "p", "namespace": "ns", "alertname": "KubePodCrashLooping"}
	c := map[string]string{"alertname": "KubePodCrashLooping", "namespace": "ns", "pod": "p", "container": "sidecar"}
	if MemberID(a) != MemberID(b) || len(MemberID(a)) != 16 {
		t.Errorf("member of one label set: %s %s", MemberID(a), MemberID(b))
	}
	if MemberID(a) == MemberID(c) {
		t.Error("two containers are one member")
	}
	// Framed: a label "ab"="c" is not "a"="bc".
	if MemberID(map[string]string{"ab": "c"}) == MemberID(map[string]string{"a": "bc"}) {
		t.Error("label framing is ambiguous")
	}
}

// A name the API cannot hold is shortened the same way every time, to at
// most 253 characters, and keeps its fingerprint.
func TestShortName(t *testing.T) {
	long := strings.Repeat("é", 300)
	s1, short := shortName(long)
	s2, _ := shortName(long)
	if !short || s1 != s2 || utf8.RuneCountInString(s1) != 253 || !utf8.ValidString(s1) {
		t.Fatalf("shortened to %d characters (%v), deterministic %v", utf8.RuneCountInString(s1), short, s1 == s2)
	}
	if other, _ := shortName(long + "x"); other == s1 {
		t.Error("two long names shortened alike")
	}
	if s, short := shortName("KubePodCrashLooping"); short || s != "KubePodCrashLooping" {
		t.Errorf("a short name changed: %q", s)
	}
	a := &template.Alert{Status: "firing", Labels: template.KV{"alertname": long, "namespace": "ns", "pod": "p"}}
	sig := Alert(a, nil, time.Unix(1_795_000_000, 0), Limits{})
	if sig.Name != s1 || len(sig.Warnings) != 1 {
		t.Errorf("signal name %d characters, warnings %v", utf8.RuneCountInString(sig.Name), sig.Warnings)
	}
	full := sig
	full.Name = long
	if Fingerprint(&full) != sig.Fingerprint {
		t.Error("the fingerprint is not the full name's")
	}
}
