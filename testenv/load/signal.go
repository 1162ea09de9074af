// Package load drives gateways with Alertmanager webhooks and records what
// was sent and how each request was answered, so that checkers can compare
// the answers with the state of Redis and of the API server. Its Client
// also holds the senders' retry policies.
package load

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/prometheus/alertmanager/template"
)

// Signal is what the harness knows about an alert it sends: the identity a
// RemediationRequest must carry (spec.signalName, spec.targetResource). It
// is matched against resources by these fields, not by the gateway's
// fingerprint, so a broken fingerprint cannot hide a loss.
type Signal struct {
	Name      string    `json:"name"`
	Namespace string    `json:"namespace"`
	Pod       string    `json:"pod"`
	StartsAt  time.Time `json:"startsAt"`
}

// Key identifies the signal: the one way a signal is named, by the checks,
// their violations and random mode's history alike.
func (s Signal) Key() string { return s.Namespace + "/" + s.Pod + "/" + s.Name }

// Pods makes n signals with distinct pods.
func Pods(name, namespace, prefix string, n int, startsAt time.Time) []Signal {
	out := make([]Signal, n)
	for i := range out {
		out[i] = Signal{Name: name, Namespace: namespace, Pod: fmt.Sprintf("%s-%d", prefix, i), StartsAt: startsAt}
	}
	return out
}

// Message is Alertmanager's webhook payload (notify/webhook.Message) as a
// sender writes it, on Alertmanager's own template types.
type Message struct {
	*template.Data
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// Webhook renders signals as one Alertmanager webhook (payload version 4) of
// firing alerts, as kube-prometheus' KubePodCrashLooping-style alerts would
// look.
func Webhook(signals []Signal) []byte {
	const status = "firing"
	w := Message{Version: "4", Data: &template.Data{Status: status, Receiver: "alertgate", ExternalURL: "http://alertmanager.monitoring:9093",
		GroupLabels: template.KV{}, CommonLabels: template.KV{}, CommonAnnotations: template.KV{}}}
	for i, s := range signals {
		a := template.Alert{
			Status: status,
			Labels: template.KV{
				"alertname": s.Name, "namespace": s.Namespace, "pod": s.Pod, "container": "app",
				"severity": "critical", "job": "kube-state-metrics", "prometheus": "monitoring/k8s",
			},
			Annotations: template.KV{
				"summary":     fmt.Sprintf("Pod %s/%s is failing", s.Namespace, s.Pod),
				"runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/" + s.Name,
			},
			StartsAt:     s.StartsAt,
			GeneratorURL: "http://prometheus.monitoring:9090/graph?g0.expr=up",
			Fingerprint:  fmt.Sprintf("%016x", i),
		}
		w.Alerts = append(w.Alerts, a)
		if i == 0 {
			w.GroupKey = fmt.Sprintf("{}:{alertname=%q}", s.Name)
			w.GroupLabels["alertname"] = s.Name
		}
	}
	b, err := json.Marshal(w)
	if err != nil {
		panic(err)
	}
	return b
}
