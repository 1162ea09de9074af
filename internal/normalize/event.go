package normalize

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"

	"github.com/alertgate/gateway/internal/pipeline"
)

// CoreEvent normalizes a core/v1 Warning Event received at now.
func CoreEvent(e *corev1.Event, raw []byte, now time.Time, lim Limits) pipeline.Signal {
	firing := e.EventTime.Time
	if firing.IsZero() {
		firing = e.FirstTimestamp.Time
	}
	if firing.IsZero() {
		firing = e.LastTimestamp.Time
	}
	component := e.Source.Component
	if component == "" {
		component = e.ReportingController
	}
	return event(eventFields{
		reason: e.Reason, message: e.Message, namespace: e.Namespace, obj: e.InvolvedObject,
		component: component, firing: firing,
	}, raw, now, lim)
}

// EventsV1 normalizes an events.k8s.io/v1 Warning Event received at now. It
// may carry only eventTime.
func EventsV1(e *eventsv1.Event, raw []byte, now time.Time, lim Limits) pipeline.Signal {
	firing := e.EventTime.Time
	if firing.IsZero() {
		firing = e.DeprecatedFirstTimestamp.Time
	}
	if firing.IsZero() {
		firing = e.DeprecatedLastTimestamp.Time
	}
	return event(eventFields{
		reason: e.Reason, message: e.Note, namespace: e.Namespace, obj: e.Regarding,
		component: e.ReportingController, firing: firing,
	}, raw, now, lim)
}

type eventFields struct {
	reason, message, namespace, component string
	obj                                   corev1.ObjectReference
	firing                                time.Time
}

func event(f eventFields, raw []byte, now time.Time, lim Limits) pipeline.Signal {
	lim = lim.withDefaults()
	ns := f.obj.Namespace
	if ns == "" && !clusterScoped[f.obj.Kind] {
		ns = f.namespace
	}
	labels := map[string]string{"reason": f.reason, "kind": f.obj.Kind, "name": f.obj.Name}
	if ns != "" {
		labels["namespace"] = ns
	}
	if f.component != "" {
		labels["component"] = f.component
	}
	var ann map[string]string
	if f.message != "" {
		ann = map[string]string{"message": f.message}
	}
	s := pipeline.Signal{
		Name:         f.reason,
		Severity:     "warning",
		Source:       pipeline.SourceKubernetesEvent,
		Namespace:    ns,
		Target:       pipeline.Target{Kind: f.obj.Kind, Name: f.obj.Name, Namespace: ns},
		Labels:       boundMap(labels, lim.MaxValue),
		Annotations:  boundMap(ann, lim.MaxValue),
		FiringTime:   f.firing,
		ReceivedTime: now,
	}
	s.Payload, s.PayloadTruncated = boundPayload(raw, lim.MaxPayload)
	s.Fingerprint = Fingerprint(&s)
	return s
}
