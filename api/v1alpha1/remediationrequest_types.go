package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels the gateway sets on every RemediationRequest so controllers and
// operators can select by signal without reading the spec.
const (
	// LabelFingerprint holds the first 32 hex digits of the fingerprint
	// (a label value is at most 63 characters; the full one is in the spec).
	LabelFingerprint = "remediation.alertgate.io/fingerprint"
	// LabelEpisode holds the episode's sequence number within its
	// fingerprint (see EpisodeName).
	LabelEpisode = "remediation.alertgate.io/episode"
	// LabelSource holds the signal source ("prometheus", "kubernetes-event").
	LabelSource = "remediation.alertgate.io/source"
	// LabelManagedBy marks objects the gateway created.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "alertgate-gateway"
)

// Phase of a RemediationRequest. The gateway sets Pending; downstream
// controllers own every later phase.
type Phase string

const (
	PhasePending Phase = "Pending"
)

// DefaultTerminalPhases are the phases in which an episode has ended, unless
// the gateway is configured otherwise (--terminal-phases).
var DefaultTerminalPhases = []Phase{"Completed", "Failed", "TimedOut", "Skipped", "Cancelled"}

// TargetResource is the Kubernetes object the signal is about.
type TargetResource struct {
	// Kind of the target, e.g. Pod, Deployment, Node.
	// +optional
	Kind string `json:"kind,omitempty"`
	// Name of the target.
	// +optional
	Name string `json:"name,omitempty"`
	// Namespace of the target; empty for cluster-scoped targets.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// RemediationRequestSpec is the normalized signal. It is written once, at
// creation, and never changed by the gateway.
type RemediationRequestSpec struct {
	// Fingerprint is the SHA-256 hex digest identifying the signal for
	// deduplication (see the README for the canonical tuple).
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	Fingerprint string `json:"fingerprint"`
	// SignalName is the alertname or the event reason.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	SignalName string `json:"signalName"`
	// Severity as normalized by the gateway: critical, warning, info or
	// the sender's own value.
	// +kubebuilder:validation:MaxLength=63
	Severity string `json:"severity"`
	// Source of the signal.
	// +kubebuilder:validation:Enum=prometheus;kubernetes-event
	Source string `json:"source"`
	// TargetResource the signal is about.
	TargetResource TargetResource `json:"targetResource"`
	// Labels of the signal, values truncated to a bound.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations of the signal, values truncated to a bound.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// FiringTime is when the sender says the condition began (startsAt,
	// eventTime or firstTimestamp).
	FiringTime metav1.Time `json:"firingTime"`
	// ReceivedTime is when the gateway received the signal.
	ReceivedTime metav1.Time `json:"receivedTime"`
	// Episode is the sequence number of this episode among the
	// fingerprint's RemediationRequests; the name is derived from it.
	// +kubebuilder:validation:Minimum=1
	Episode int64 `json:"episode"`
	// Members are the alerts (distinct label sets) that opened the
	// episode; later ones are in status.members.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Members []Member `json:"members,omitempty"`
	// OriginalPayload is the signal as received (one alert or one event),
	// truncated to a bound; OriginalPayloadTruncated says whether it was.
	// +optional
	OriginalPayload string `json:"originalPayload,omitempty"`
	// +optional
	OriginalPayloadTruncated bool `json:"originalPayloadTruncated,omitempty"`
}

// Deduplication counts how often the signal was seen in its window.
type Deduplication struct {
	// OccurrenceCount is the number of times the signal was received.
	// +kubebuilder:validation:Minimum=1
	OccurrenceCount int64 `json:"occurrenceCount"`
	// FirstSeen is when the gateway first received the signal.
	FirstSeen metav1.Time `json:"firstSeen"`
	// LastSeen is when the gateway last received the signal.
	LastSeen metav1.Time `json:"lastSeen"`
}

// Member is one alert of an episode: a distinct label set that fired into
// it. A member is resolved when its latest resolution resolves its latest
// firing (ResolvedSince is not before FiringSince); Kubernetes Events have
// no members and are never resolved.
type Member struct {
	// ID is the first 16 hex digits of the SHA-256 of the alert's labels.
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{16}$`
	ID string `json:"id"`
	// FiringSince is the startsAt of the member's latest firing, as its
	// sender gave it.
	FiringSince metav1.MicroTime `json:"firingSince"`
	// ResolvedSince is the startsAt of the firing its latest resolution
	// ended.
	// +optional
	ResolvedSince *metav1.MicroTime `json:"resolvedSince,omitempty"`
	// ResolvedAt is that resolution's endsAt.
	// +optional
	ResolvedAt *metav1.MicroTime `json:"resolvedAt,omitempty"`
}

// Resolution records that the sender reported the condition as resolved:
// every member of the episode has resolved.
type Resolution struct {
	// ResolvedAt is the sender's end time (endsAt), or the time the
	// resolution was received when the sender gave none.
	ResolvedAt metav1.Time `json:"resolvedAt"`
	// ReceivedAt is when the gateway received the resolution.
	ReceivedAt metav1.Time `json:"receivedAt"`
}

// RemediationRequestStatus is maintained by the gateway (deduplication,
// members, resolution) and by remediation controllers (phase, conditions).
type RemediationRequestStatus struct {
	// +optional
	Phase Phase `json:"phase,omitempty"`
	// +optional
	Deduplication *Deduplication `json:"deduplication,omitempty"`
	// Members is the state of every alert of the episode, kept by the
	// gateway.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	Members []Member `json:"members,omitempty"`
	// Resolution is set while every member is resolved.
	// +optional
	Resolution *Resolution `json:"resolution,omitempty"`
	// Conditions are written by remediation controllers; the gateway never
	// changes them.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// RemediationRequest asks remediation controllers to act on one signal.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rr,categories=remediation
// +kubebuilder:printcolumn:name="Signal",type=string,JSONPath=`.spec.signalName`
// +kubebuilder:printcolumn:name="Episode",type=integer,JSONPath=`.spec.episode`
// +kubebuilder:printcolumn:name="Severity",type=string,JSONPath=`.spec.severity`
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetResource.kind`
// +kubebuilder:printcolumn:name="Name",type=string,JSONPath=`.spec.targetResource.name`
// +kubebuilder:printcolumn:name="Count",type=integer,JSONPath=`.status.deduplication.occurrenceCount`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RemediationRequest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RemediationRequestSpec   `json:"spec,omitempty"`
	Status RemediationRequestStatus `json:"status,omitempty"`
}

// RemediationRequestList is a list of RemediationRequest.
//
// +kubebuilder:object:root=true
type RemediationRequestList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RemediationRequest `json:"items"`
}

func init() {
	SchemeBuilder.Register(&RemediationRequest{}, &RemediationRequestList{})
}
