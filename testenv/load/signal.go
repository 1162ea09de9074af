// Package load drives gateways with Alertmanager webhooks and Kubernetes
// Events and records what was sent and how each request was answered, so
// that checkers can compare the answers with the state of Redis and of the
// API server. Its Client holds the senders' retry policies; lifecycles and
// the Pool make realistic notification streams; a Proxy records what a
// sender the harness does not control (a real Alertmanager, see
// StartAlertmanager) delivers.
package load

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/alertgate/gateway/api/v1alpha1"
)

// Defaults of an alert's labels.
const (
	DefaultContainer = "app"
	DefaultSeverity  = "critical"
)

// Signal is what the harness knows about an alert or a Kubernetes Event it
// sends: the identity a RemediationRequest must carry (spec.signalName,
// spec.targetResource) and what the notification says. It is matched
// against resources by these fields, not by the gateway's fingerprint, so
// a broken fingerprint cannot hide a loss.
type Signal struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	// StartsAt is the start of the alert's firing; for an Event, its first
	// occurrence (firstTimestamp or eventTime; zero for ShapeBare).
	StartsAt time.Time `json:"startsAt"`
	// Container and Severity are labels of an alert; empty means
	// DefaultContainer and DefaultSeverity. They are not part of the
	// fingerprint, but of the member (see Member).
	Container string `json:"container,omitempty"`
	Severity  string `json:"severity,omitempty"`
	// Resolved makes the signal the resolved notification of the firing
	// that began at StartsAt and ended at EndsAt. A firing alert's EndsAt
	// is what its sender wrote (Alertmanager: zero).
	Resolved bool      `json:"resolved,omitempty"`
	EndsAt   time.Time `json:"endsAt,omitzero"`
	// Event, when set, makes the signal a Kubernetes Warning Event: reason
	// Name, involvedObject the Pod in Namespace. Container, Severity,
	// Resolved and EndsAt do not apply to it.
	Event *Event `json:"event,omitempty"`
}

// EventShape is how an Event reports its repetitions.
type EventShape string

const (
	// ShapeCount is a core/v1 Event whose count rises, with
	// firstTimestamp (StartsAt) and lastTimestamp (Event.LastSeen).
	ShapeCount EventShape = "count"
	// ShapeSeries is an events.k8s.io/v1 Event with eventTime (StartsAt)
	// and, from the second occurrence on, series {count,
	// lastObservedTime (Event.LastSeen)}.
	ShapeSeries EventShape = "series"
	// ShapeBare is an Event with no timestamp and no count at all, as
	// some reporters send: the gateway can only use its receive time.
	ShapeBare EventShape = "bare"
)

// Event is what makes a Signal a Kubernetes Event. Times are rendered at
// the API's precision (seconds for firstTimestamp and lastTimestamp,
// microseconds for eventTime and series.lastObservedTime), so signals that
// must survive a round trip carry times truncated to it.
type Event struct {
	Shape EventShape `json:"shape"`
	// Count of occurrences so far: count, or series.count (no series
	// while it is 1). Not rendered for ShapeBare.
	Count int32 `json:"count,omitempty"`
	// LastSeen is lastTimestamp or series.lastObservedTime.
	LastSeen time.Time `json:"lastSeen,omitzero"`
	// APIVersion is "v1" or "events.k8s.io/v1"; empty: the shape's own
	// (events.k8s.io/v1 for ShapeSeries, v1 otherwise).
	APIVersion string `json:"apiVersion,omitempty"`
}

const (
	apiCore   = "v1"
	apiEvents = "events.k8s.io/v1"
)

func (e *Event) apiVersion() string {
	switch {
	case e.APIVersion != "":
		return e.APIVersion
	case e.Shape == ShapeSeries:
		return apiEvents
	}
	return apiCore
}

// IsEvent reports whether s is a Kubernetes Event rather than an alert.
func (s Signal) IsEvent() bool { return s.Event != nil }

// Key identifies the signal's fingerprint: the one way a signal is named,
// by the checks, their violations and random mode's history alike. Alerts
// and Events share it, but the gateway's fingerprint includes the source:
// an alert and an Event must not share a Name (alertnames and reasons do
// not, in practice and in this package).
func (s Signal) Key() string { return s.Namespace + "/" + s.Pod + "/" + s.Name }

// Member identifies the alert's label set within its fingerprint:
// Key()/container/severity (defaults applied). The other labels Webhook
// writes are the same for every alert, so two alerts are one member
// exactly when their Member is equal; two containers of a pod, or a
// warning and a critical, are two members of one fingerprint. Events have
// no members (as in the gateway): "".
func (s Signal) Member() string {
	if s.IsEvent() {
		return ""
	}
	return s.Key() + "/" + s.container() + "/" + s.severity()
}

// Delivery identifies an alert in one state: its member, firing or
// resolved, and its times; a delivery carrying it as given has an equal
// Delivery.
func (s Signal) Delivery() string {
	return fmt.Sprintf("%s %v %s %s", s.Member(), s.Resolved, s.StartsAt.UTC().Format(time.RFC3339Nano), s.EndsAt.UTC().Format(time.RFC3339Nano))
}

func (s Signal) container() string {
	if s.Container == "" {
		return DefaultContainer
	}
	return s.Container
}

func (s Signal) severity() string {
	if s.Severity == "" {
		return DefaultSeverity
	}
	return s.Severity
}

// Labels are the alert's labels as Webhook and Alertmanager deliver them,
// kube-prometheus style; nil for an Event.
func (s Signal) Labels() map[string]string {
	if s.IsEvent() {
		return nil
	}
	return map[string]string{
		"alertname": s.Name, "namespace": s.Namespace, "pod": s.Pod, "container": s.container(),
		"severity": s.severity(), "job": "kube-state-metrics", "prometheus": "monitoring/k8s",
	}
}

func (s Signal) annotations() map[string]string {
	return map[string]string{
		"summary":     fmt.Sprintf("Pod %s/%s is failing", s.Namespace, s.Pod),
		"runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/" + s.Name,
	}
}

// Resolve returns the resolved notification of s's firing, ended at end.
func (s Signal) Resolve(end time.Time) Signal {
	s.Resolved, s.EndsAt = true, end
	return s
}

// Refire returns a new firing of s's member that began at start.
func (s Signal) Refire(start time.Time) Signal {
	s.Resolved, s.StartsAt, s.EndsAt = false, start, time.Time{}
	return s
}

// Equal reports whether s and o say the same, comparing times as instants
// and applying the label defaults.
func (s Signal) Equal(o Signal) bool {
	if s.Name != o.Name || s.Namespace != o.Namespace || s.Pod != o.Pod || !s.StartsAt.Equal(o.StartsAt) || s.IsEvent() != o.IsEvent() {
		return false
	}
	if s.IsEvent() {
		a, b := *s.Event, *o.Event
		return a.Shape == b.Shape && a.Count == b.Count && a.LastSeen.Equal(b.LastSeen) && a.apiVersion() == b.apiVersion()
	}
	return s.container() == o.container() && s.severity() == o.severity() && s.Resolved == o.Resolved && s.EndsAt.Equal(o.EndsAt)
}

func (s Signal) String() string {
	switch {
	case s.IsEvent():
		return fmt.Sprintf("event %s %s #%d", s.Key(), s.Event.Shape, s.Event.Count)
	case s.Resolved:
		return fmt.Sprintf("%s resolved %s–%s", s.Member(), s.StartsAt.Format("15:04:05.000"), s.EndsAt.Format("15:04:05.000"))
	}
	return fmt.Sprintf("%s firing since %s", s.Member(), s.StartsAt.Format("15:04:05.000"))
}

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

// defaultGroupBy is Alertmanager's grouping in the harness: one
// notification per alertname and namespace.
var defaultGroupBy = []string{"alertname", "namespace"}

// Webhook renders alerts as one Alertmanager webhook (payload version 4),
// firing and resolved ones mixed as Alertmanager mixes them in a group's
// notification, kube-prometheus' KubePodCrashLooping-style. It panics on
// an Event: those are sent alone (EventJSON).
func Webhook(signals []Signal) []byte {
	b, _ := webhook(signals)
	return b
}

func webhook(signals []Signal) ([]byte, string) {
	w := Message{Version: "4", Data: &template.Data{Status: "resolved", Receiver: "alertgate", ExternalURL: "http://alertmanager.monitoring:9093",
		GroupLabels: template.KV{}, CommonLabels: template.KV{}, CommonAnnotations: template.KV{}}}
	for i, s := range signals {
		if s.IsEvent() {
			panic(fmt.Sprintf("load: Webhook: signal %d is an Event (%s); events are sent one per request", i, s.Key()))
		}
		status := "firing"
		if s.Resolved {
			status = "resolved"
		} else {
			w.Status = "firing"
		}
		labels := s.Labels()
		w.Alerts = append(w.Alerts, template.Alert{
			Status:       status,
			Labels:       labels,
			Annotations:  s.annotations(),
			StartsAt:     s.StartsAt,
			EndsAt:       s.EndsAt,
			GeneratorURL: "http://prometheus.monitoring:9090/graph?g0.expr=up",
			Fingerprint:  labelSet(labels).Fingerprint().String(),
		})
		if i == 0 {
			for k, v := range labels {
				w.CommonLabels[k] = v
			}
		}
		for k, v := range w.CommonLabels {
			if labels[k] != v {
				delete(w.CommonLabels, k)
			}
		}
	}
	if len(signals) == 0 {
		w.Status = "firing"
	}
	for _, k := range defaultGroupBy {
		if v, ok := w.CommonLabels[k]; ok {
			w.GroupLabels[k] = v
		}
	}
	key := groupKey(w.GroupLabels)
	w.GroupKey = key
	b, err := json.Marshal(w)
	if err != nil {
		panic(err)
	}
	return b, key
}

func labelSet(m map[string]string) model.LabelSet {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}

// groupKey is Alertmanager's group key for the root route.
func groupKey(groupLabels map[string]string) string { return "{}:" + labelSet(groupLabels).String() }

// EventJSON renders an Event signal as the Kubernetes object an event
// exporter posts: reason Name, type Warning, involvedObject (regarding) the
// Pod, in the shape and API version of s.Event. The object's name is the
// same for every occurrence, as the API server updates one Event.
func EventJSON(s Signal) []byte {
	if !s.IsEvent() {
		panic(fmt.Sprintf("load: EventJSON: %s is an alert", s.Key()))
	}
	e := s.Event
	meta := metav1.ObjectMeta{Name: eventName(s), Namespace: s.Namespace}
	obj := corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Name: s.Pod, Namespace: s.Namespace}
	msg := fmt.Sprintf("%s: pod %s/%s", s.Name, s.Namespace, s.Pod)
	var v any
	switch e.apiVersion() {
	case apiEvents:
		ev := eventsv1.Event{TypeMeta: metav1.TypeMeta{APIVersion: apiEvents, Kind: "Event"}, ObjectMeta: meta, Regarding: obj,
			Reason: s.Name, Note: msg, Type: corev1.EventTypeWarning, Action: "Observed",
			ReportingController: "kubelet", ReportingInstance: "kubelet-node-1"}
		switch e.Shape {
		case ShapeCount:
			ev.DeprecatedCount = e.Count
			ev.DeprecatedFirstTimestamp = metav1.NewTime(s.StartsAt)
			ev.DeprecatedLastTimestamp = metav1.NewTime(e.LastSeen)
		case ShapeSeries:
			ev.EventTime = metav1.NewMicroTime(s.StartsAt)
			if e.Count > 1 {
				ev.Series = &eventsv1.EventSeries{Count: e.Count, LastObservedTime: metav1.NewMicroTime(e.LastSeen)}
			}
		}
		v = ev
	default:
		ev := corev1.Event{TypeMeta: metav1.TypeMeta{APIVersion: apiCore, Kind: "Event"}, ObjectMeta: meta, InvolvedObject: obj,
			Reason: s.Name, Message: msg, Type: corev1.EventTypeWarning,
			Source: corev1.EventSource{Component: "kubelet", Host: "node-1"}, ReportingController: "kubelet"}
		switch e.Shape {
		case ShapeCount:
			ev.Count = e.Count
			ev.FirstTimestamp = metav1.NewTime(s.StartsAt)
			ev.LastTimestamp = metav1.NewTime(e.LastSeen)
		case ShapeSeries:
			ev.EventTime = metav1.NewMicroTime(s.StartsAt)
			if e.Count > 1 {
				ev.Series = &corev1.EventSeries{Count: e.Count, LastObservedTime: metav1.NewMicroTime(e.LastSeen)}
			}
		}
		v = ev
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// eventName is the Event object's name: the pod's and a hash of the
// reason, as kubelet names one Event per pod and reason.
func eventName(s Signal) string {
	h := fnv.New64a()
	h.Write([]byte(s.Key()))
	return fmt.Sprintf("%s.%016x", s.Pod, h.Sum64())
}

// Paths of the gateway's endpoints.
const (
	PathPrometheus = "/api/v1/signals/prometheus"
	PathEvent      = "/api/v1/signals/kubernetes-event"
)

// request renders signals as the one request that carries them: a webhook
// of alerts, or a single Event. It panics otherwise: a caller's bug, which
// Batches avoids.
func request(signals []Signal) (path string, body []byte, groupKey string) {
	if len(signals) == 1 && signals[0].IsEvent() {
		return PathEvent, EventJSON(signals[0]), ""
	}
	for i, s := range signals {
		if s.IsEvent() {
			panic(fmt.Sprintf("load: signal %d of %d is an Event (%s): an Event is sent alone; split with Batches", i, len(signals), s.Key()))
		}
	}
	body, groupKey = webhook(signals)
	return PathPrometheus, body, groupKey
}

// Batches splits signals into requests: the alerts in one webhook, each
// Event alone, in their order.
func Batches(signals []Signal) [][]Signal {
	var out [][]Signal
	var alerts []Signal
	for _, s := range signals {
		if s.IsEvent() {
			out = append(out, []Signal{s})
		} else {
			alerts = append(alerts, s)
		}
	}
	if len(alerts) > 0 {
		out = append([][]Signal{alerts}, out...)
	}
	return out
}

// parseRequest reads back the signals of a request to path, as a Proxy
// sees it: labels → Name, Namespace, Pod, Container, Severity; status →
// Resolved; startsAt, endsAt as written. It returns what it could read
// and an error for what it could not.
func parseRequest(path string, body []byte) ([]Signal, string, error) {
	if strings.HasSuffix(path, PathEvent) {
		s, err := parseEvent(body)
		if err != nil {
			return nil, "", err
		}
		return []Signal{s}, "", nil
	}
	var m struct {
		GroupKey string           `json:"groupKey"`
		Alerts   []template.Alert `json:"alerts"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, "", fmt.Errorf("load: webhook: %w", err)
	}
	out := make([]Signal, 0, len(m.Alerts))
	for _, a := range m.Alerts {
		s := Signal{Name: a.Labels["alertname"], Namespace: a.Labels["namespace"], Pod: a.Labels["pod"],
			Container: a.Labels["container"], Severity: a.Labels["severity"],
			StartsAt: a.StartsAt, Resolved: a.Status == "resolved", EndsAt: a.EndsAt}
		// The defaults are written as labels; reading them back as empty
		// keeps a round trip of a default signal equal field by field.
		if s.Container == DefaultContainer {
			s.Container = ""
		}
		if s.Severity == DefaultSeverity {
			s.Severity = ""
		}
		out = append(out, s)
	}
	return out, m.GroupKey, nil
}

func parseEvent(body []byte) (Signal, error) {
	var head struct {
		APIVersion string          `json:"apiVersion"`
		Regarding  json.RawMessage `json:"regarding"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return Signal{}, fmt.Errorf("load: event: %w", err)
	}
	var (
		s                 Signal
		count             int32
		first, last       time.Time
		eventTime         time.Time
		series            bool
		seriesN           int32
		seriesLast        time.Time
		ns, objNS, objPod string
	)
	if head.APIVersion == apiEvents || (head.APIVersion == "" && head.Regarding != nil) {
		var e eventsv1.Event
		if err := json.Unmarshal(body, &e); err != nil {
			return Signal{}, fmt.Errorf("load: event: %w", err)
		}
		s.Name, ns, objNS, objPod = e.Reason, e.Namespace, e.Regarding.Namespace, e.Regarding.Name
		count, first, last, eventTime = e.DeprecatedCount, e.DeprecatedFirstTimestamp.Time, e.DeprecatedLastTimestamp.Time, e.EventTime.Time
		if e.Series != nil {
			series, seriesN, seriesLast = true, e.Series.Count, e.Series.LastObservedTime.Time
		}
		head.APIVersion = apiEvents
	} else {
		var e corev1.Event
		if err := json.Unmarshal(body, &e); err != nil {
			return Signal{}, fmt.Errorf("load: event: %w", err)
		}
		s.Name, ns, objNS, objPod = e.Reason, e.Namespace, e.InvolvedObject.Namespace, e.InvolvedObject.Name
		count, first, last, eventTime = e.Count, e.FirstTimestamp.Time, e.LastTimestamp.Time, e.EventTime.Time
		if e.Series != nil {
			series, seriesN, seriesLast = true, e.Series.Count, e.Series.LastObservedTime.Time
		}
		head.APIVersion = apiCore
	}
	s.Pod, s.Namespace = objPod, objNS
	if s.Namespace == "" {
		s.Namespace = ns
	}
	ev := &Event{APIVersion: head.APIVersion}
	switch {
	case series || (!eventTime.IsZero() && first.IsZero()):
		ev.Shape, s.StartsAt, ev.Count, ev.LastSeen = ShapeSeries, eventTime, 1, time.Time{}
		if series {
			ev.Count, ev.LastSeen = seriesN, seriesLast
		}
	case count > 0 || !first.IsZero() || !last.IsZero():
		ev.Shape, s.StartsAt, ev.Count, ev.LastSeen = ShapeCount, first, count, last
	default:
		ev.Shape = ShapeBare
	}
	if ev.APIVersion == (&Event{Shape: ev.Shape}).apiVersion() {
		ev.APIVersion = ""
	}
	s.Event = ev
	return s, nil
}

// sortByMember orders alerts as the harness renders a group: by member,
// then start.
func sortByMember(sigs []Signal) {
	sort.SliceStable(sigs, func(i, j int) bool {
		if a, b := sigs[i].Member(), sigs[j].Member(); a != b {
			return a < b
		}
		return sigs[i].StartsAt.Before(sigs[j].StartsAt)
	})
}

// SignalOf is the signal a resource is for, as the harness knows signals
// (spec.signalName and spec.targetResource), so that resources and sent
// signals are named by one Key.
func SignalOf(r *v1alpha1.RemediationRequest) Signal {
	t := r.Spec.TargetResource
	return Signal{Name: r.Spec.SignalName, Namespace: t.Namespace, Pod: t.Name}
}
