package normalize

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"

	"github.com/alertgate/gateway/internal/pipeline"
)

// CoreEvent normalizes a core/v1 Warning Event received at now.
func CoreEvent(e *corev1.Event, raw []byte, now time.Time, lim Limits) pipeline.Signal {
	firing, field := e.EventTime.Time, "eventTime"
	if firing.IsZero() {
		firing, field = e.FirstTimestamp.Time, "firstTimestamp"
	}
	if firing.IsZero() {
		firing, field = e.LastTimestamp.Time, "lastTimestamp"
	}
	if firing.IsZero() && e.Series != nil {
		firing, field = e.Series.LastObservedTime.Time, "series.lastObservedTime"
	}
	component := e.Source.Component
	if component == "" {
		component = e.ReportingController
	}
	return event(eventFields{
		reason: e.Reason, message: e.Message, namespace: e.Namespace, obj: e.InvolvedObject,
		component: component, firing: firing, firingField: field,
	}, raw, now, lim)
}

// EventsV1 normalizes an events.k8s.io/v1 Warning Event received at now. It
// may carry only eventTime.
func EventsV1(e *eventsv1.Event, raw []byte, now time.Time, lim Limits) pipeline.Signal {
	firing, field := e.EventTime.Time, "eventTime"
	if firing.IsZero() {
		firing, field = e.DeprecatedFirstTimestamp.Time, "deprecatedFirstTimestamp"
	}
	if firing.IsZero() {
		firing, field = e.DeprecatedLastTimestamp.Time, "deprecatedLastTimestamp"
	}
	if firing.IsZero() && e.Series != nil {
		firing, field = e.Series.LastObservedTime.Time, "series.lastObservedTime"
	}
	return event(eventFields{
		reason: e.Reason, message: e.Note, namespace: e.Namespace, obj: e.Regarding,
		component: e.ReportingController, firing: firing, firingField: field,
	}, raw, now, lim)
}

type eventFields struct {
	reason, message, namespace, component string
	obj                                   corev1.ObjectReference
	firing                                time.Time
	firingField                           string
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
		ReceivedTime: now,
		StartsAt:     f.firing,
	}
	s.FiringTime, s.Warnings = lim.clamp(f.firing, now, f.firingField, nil)
	s.Payload, s.PayloadTruncated = boundPayload(raw, lim.MaxPayload)
	s.Fingerprint = Fingerprint(&s)
	s.Warnings = shorten(&s, s.Warnings)
	return s
}
