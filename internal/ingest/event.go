package ingest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"

	"github.com/alertgate/gateway/internal/normalize"
	"github.com/alertgate/gateway/internal/pipeline"
)

// KubernetesEvent reads one Event, core/v1 or events.k8s.io/v1 (told apart
// by apiVersion, or by the presence of "regarding"). Normal events are
// acknowledged and ignored; Warning events become a signal.
func (rd *Reader) KubernetesEvent(w http.ResponseWriter, r *http.Request, now time.Time) (*pipeline.Request, error) {
	buf, err := rd.readBody(w, r)
	if err != nil {
		return nil, err
	}
	defer putBody(buf)
	body := buf.Bytes()
	var head struct {
		APIVersion string          `json:"apiVersion"`
		Kind       string          `json:"kind"`
		Regarding  json.RawMessage `json:"regarding"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return nil, jsonError("", err)
	}
	if head.Kind != "" && head.Kind != "Event" {
		return nil, &pipeline.InputError{Kind: pipeline.Malformed, Field: "kind", Detail: fmt.Sprintf("%q is not Event", excerpt(head.Kind))}
	}
	req := &pipeline.Request{Source: pipeline.SourceKubernetesEvent}
	switch {
	case head.APIVersion == eventsv1.SchemeGroupVersion.String() || (head.APIVersion == "" && head.Regarding != nil):
		var e eventsv1.Event
		if err := json.Unmarshal(body, &e); err != nil {
			return nil, jsonError("", err)
		}
		if err := validateEvent(e.Type, e.Reason, "regarding", e.Regarding); err != nil {
			return nil, err
		}
		if e.Type != corev1.EventTypeWarning {
			req.Ignored = 1
			return req, nil
		}
		req.Signals = []pipeline.Signal{normalize.EventsV1(&e, clone(body), now, rd.opts.limits())}
	case head.APIVersion == "" || head.APIVersion == "v1":
		var e corev1.Event
		if err := json.Unmarshal(body, &e); err != nil {
			return nil, jsonError("", err)
		}
		if err := validateEvent(e.Type, e.Reason, "involvedObject", e.InvolvedObject); err != nil {
			return nil, err
		}
		if e.Type != corev1.EventTypeWarning {
			req.Ignored = 1
			return req, nil
		}
		req.Signals = []pipeline.Signal{normalize.CoreEvent(&e, clone(body), now, rd.opts.limits())}
	default:
		return nil, &pipeline.InputError{Kind: pipeline.Malformed, Field: "apiVersion", Detail: fmt.Sprintf("%q is neither v1 nor events.k8s.io/v1", excerpt(head.APIVersion))}
	}
	return req, nil
}

func validateEvent(typ, reason, objField string, obj corev1.ObjectReference) error {
	switch typ {
	case corev1.EventTypeNormal, "":
		// Kubernetes treats an empty type as Normal.
		return nil
	case corev1.EventTypeWarning:
	default:
		return &pipeline.InputError{Kind: pipeline.Malformed, Field: "type", Detail: fmt.Sprintf("%q is neither Normal nor Warning", excerpt(typ))}
	}
	switch {
	case reason == "":
		return &pipeline.InputError{Kind: pipeline.Malformed, Field: "reason", Detail: "missing"}
	case obj.Kind == "":
		return &pipeline.InputError{Kind: pipeline.Malformed, Field: objField + ".kind", Detail: "missing"}
	case obj.Name == "":
		return &pipeline.InputError{Kind: pipeline.Malformed, Field: objField + ".name", Detail: "missing"}
	}
	return nil
}
