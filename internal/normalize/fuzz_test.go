package normalize

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/alertgate/gateway/api/v1alpha1"
)

// FuzzNormalize: any labels make a signal with a stable 64-hex fingerprint,
// a valid resource name, and values bounded on rune boundaries.
func FuzzNormalize(f *testing.F) {
	f.Add("KubePodCrashLooping", "payments", "api-7d9f8b6c5d-x2k4p", "", "critical", "summary", int64(1_795_000_000))
	f.Add("KubeNodeNotReady", "", "", "worker-3", "warning", "", int64(0))
	f.Add("Watchdog", "", "", "", "none", strings.Repeat("é", 3000), int64(-5))
	f.Fuzz(func(t *testing.T, alertname, ns, pod, node, severity, annotation string, startsAt int64) {
		labels := template.KV{"alertname": alertname, "namespace": ns, "pod": pod, "node": node, "severity": severity}
		a := &template.Alert{Status: "firing", Labels: labels, Annotations: template.KV{"description": annotation}, StartsAt: time.Unix(startsAt, 0)}
		s := Alert(a, []byte(annotation), time.Unix(1_795_000_000, 0), Limits{})
		if len(s.Fingerprint) != 64 || Fingerprint(&s) != s.Fingerprint {
			t.Fatalf("fingerprint %q unstable or malformed", s.Fingerprint)
		}
		if s2 := Alert(a, []byte(annotation), time.Unix(1_795_000_001, 0), Limits{}); s2.Fingerprint != s.Fingerprint {
			t.Fatal("the received time changed the fingerprint")
		}
		name := v1alpha1.EpisodeName(s.Fingerprint, 1<<40)
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			t.Fatalf("resource name %q: %v", name, errs)
		}
		if d := s.Annotations["description"]; len(d) > 2048 || !validUTF8Prefix(annotation, d) {
			t.Fatalf("description of %d bytes badly truncated", len(d))
		}
	})
}

// validUTF8Prefix reports whether got is in, or a truncation (with the
// marker) of, in that does not split a rune.
func validUTF8Prefix(in, got string) bool {
	if got == in {
		return true
	}
	cut, ok := strings.CutSuffix(got, TruncatedMarker)
	return ok && strings.HasPrefix(in, cut)
}
