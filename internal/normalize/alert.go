package normalize

import (
	"time"

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
		FiringTime:   a.StartsAt,
		ReceivedTime: now,
		Resolved:     a.Status == statusResolved,
	}
	if s.Resolved {
		s.ResolvedAt = a.EndsAt
	}
	s.Payload, s.PayloadTruncated = boundPayload(raw, lim.MaxPayload)
	s.Fingerprint = Fingerprint(&s)
	return s
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
