package normalize

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertgate/gateway/internal/pipeline"
)

// targetLabels are the labels naming a Kubernetes object, most specific
// first, with the kind each names. "job" is absent on purpose: in
// Prometheus it is the scrape job; kube-state-metrics calls a Job
// "job_name".
var targetLabels = []struct{ label, kind string }{
	{"pod", "Pod"},
	{"deployment", "Deployment"},
	{"statefulset", "StatefulSet"},
	{"daemonset", "DaemonSet"},
	{"replicaset", "ReplicaSet"},
	{"job_name", "Job"},
	{"cronjob", "CronJob"},
	{"horizontalpodautoscaler", "HorizontalPodAutoscaler"},
	{"persistentvolumeclaim", "PersistentVolumeClaim"},
	{"service", "Service"},
	{"persistentvolume", "PersistentVolume"},
	{"node", "Node"},
}

// clusterScoped kinds have no namespace.
var clusterScoped = map[string]bool{"Node": true, "PersistentVolume": true, "Namespace": true}

// Alert normalizes one Alertmanager alert received at now; raw is its JSON
// as received.
func Alert(a *template.Alert, raw []byte, now time.Time, lim Limits) pipeline.Signal {
	lim = lim.withDefaults()
	ns := a.Labels["namespace"]
	s := pipeline.Signal{
		Name:         a.Labels["alertname"],
		Severity:     Severity(a.Labels["severity"]),
		Source:       pipeline.SourcePrometheus,
		Namespace:    ns,
		Target:       alertTarget(a.Labels, ns),
		Labels:       boundMap(a.Labels, lim.MaxValue),
		Annotations:  boundMap(a.Annotations, lim.MaxValue),
		ReceivedTime: now,
		Member:       MemberID(a.Labels),
		StartsAt:     a.StartsAt,
		Resolved:     a.Status == statusResolved,
	}
	s.FiringTime, s.Warnings = lim.clamp(a.StartsAt, now, "startsAt", nil)
	if s.Resolved {
		s.ResolvedAt = a.EndsAt
	}
	s.Payload, s.PayloadTruncated = boundPayload(raw, lim.MaxPayload)
	s.Fingerprint = Fingerprint(&s)
	s.Warnings = shorten(&s, s.Warnings)
	return s
}

// shorten makes the signal's name one the API can hold, after its
// fingerprint was taken from the full name.
func shorten(s *pipeline.Signal, warnings []string) []string {
	name, short := shortName(s.Name)
	if !short {
		return warnings
	}
	s.Name = name
	return append(warnings, fmt.Sprintf("the name is over %d characters; stored shortened as %q (the fingerprint keeps the full name)", maxSignalName, excerpt(name)))
}

func excerpt(s string) string {
	if len(s) <= 64 {
		return s
	}
	cut := 64
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// statusResolved is the Alertmanager status of an alert that ended.
const statusResolved = "resolved"

func alertTarget(labels template.KV, ns string) pipeline.Target {
	for _, t := range targetLabels {
		if v := labels[t.label]; v != "" {
			tg := pipeline.Target{Kind: t.kind, Name: v}
			if !clusterScoped[t.kind] {
				tg.Namespace = ns
			}
			return tg
		}
	}
	if ns != "" {
		return pipeline.Target{Kind: "Namespace", Name: ns}
	}
	return pipeline.Target{}
}
