package ingest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertgate/gateway/internal/normalize"
	"github.com/alertgate/gateway/internal/pipeline"
)

// webhookVersion is the Alertmanager webhook payload version this reader
// understands.
const webhookVersion = "4"

// webhookMessage is Alertmanager's webhook payload (notify/webhook.Message)
// built on its template.Data. Alerts shadows Data.Alerts so that each alert
// is decoded in the same pass and also kept as received, to be stored
// without re-marshalling.
type webhookMessage struct {
	template.Data
	Version         string     `json:"version"`
	GroupKey        string     `json:"groupKey"`
	TruncatedAlerts uint64     `json:"truncatedAlerts"`
	Alerts          []rawAlert `json:"alerts"`
}

// rawAlert is one alert, decoded and as received. A decoding error is kept
// rather than returned, so that it is reported with the alert's index.
type rawAlert struct {
	raw []byte
	a   template.Alert
	err error
}

func (r *rawAlert) UnmarshalJSON(b []byte) error {
	r.raw = clone(b) // b belongs to the (pooled) body
	r.err = json.Unmarshal(b, &r.a)
	return nil
}

// Prometheus reads an Alertmanager webhook (payload version 4). Every alert
// of the batch becomes a signal, firing or resolved.
func (rd *Reader) Prometheus(w http.ResponseWriter, r *http.Request, now time.Time) (*pipeline.Request, error) {
	buf, err := rd.readBody(w, r)
	if err != nil {
		return nil, err
	}
	defer putBody(buf)
	var msg webhookMessage
	if err := json.Unmarshal(buf.Bytes(), &msg); err != nil {
		return nil, jsonError("", err)
	}
	switch {
	case msg.Version == "":
		return nil, &pipeline.InputError{Kind: pipeline.Malformed, Field: "version", Detail: "missing; Alertmanager webhook payload version 4 expected"}
	case msg.Version != webhookVersion:
		return nil, &pipeline.InputError{Kind: pipeline.Malformed, Field: "version", Detail: fmt.Sprintf("unsupported payload version %q; 4 expected", excerpt(msg.Version))}
	case msg.Alerts == nil:
		return nil, &pipeline.InputError{Kind: pipeline.Malformed, Field: "alerts", Detail: "missing"}
	case len(msg.Alerts) == 0:
		return nil, &pipeline.InputError{Kind: pipeline.Malformed, Field: "alerts", Detail: "empty"}
	case len(msg.Alerts) > rd.opts.MaxAlerts:
		return nil, &pipeline.InputError{Kind: pipeline.Malformed, Field: "alerts", Detail: fmt.Sprintf("%d alerts exceed the limit of %d per request", len(msg.Alerts), rd.opts.MaxAlerts)}
	}
	// One bad alert never costs the others of its batch: Alertmanager
	// would drop them all with a 400. It is rejected alone, with its
	// field and reason.
	req := &pipeline.Request{Source: pipeline.SourcePrometheus, Signals: make([]pipeline.Signal, 0, len(msg.Alerts))}
	for i := range msg.Alerts {
		ra := &msg.Alerts[i]
		err := ra.err
		if err != nil {
			err = jsonError(alertField(i, ""), err)
		} else {
			err = rd.validateAlert(i, &ra.a)
		}
		if err != nil {
			ie, _ := err.(*pipeline.InputError)
			req.Rejected = append(req.Rejected, pipeline.Rejection{Index: i, Field: ie.Field, Reason: ie.Detail})
			continue
		}
		s := normalize.Alert(&ra.a, ra.raw, now, rd.opts.limits())
		s.Index = i
		req.Signals = append(req.Signals, s)
	}
	return req, nil
}

// alertField is the JSON path of a field of alert i; it is only formatted
// for an error.
func alertField(i int, sub string) string { return fmt.Sprintf("alerts[%d]%s", i, sub) }

func (rd *Reader) validateAlert(i int, a *template.Alert) error {
	switch {
	case a.Status != "firing" && a.Status != "resolved":
		return &pipeline.InputError{Kind: pipeline.Malformed, Field: alertField(i, ".status"), Detail: fmt.Sprintf("%q is neither firing nor resolved", excerpt(a.Status))}
	case a.Labels["alertname"] == "":
		return &pipeline.InputError{Kind: pipeline.Malformed, Field: alertField(i, ".labels.alertname"), Detail: "missing"}
	}
	if err := rd.validLabels(a.Labels); err != nil {
		err.Field = alertField(i, ".labels"+err.Field)
		return err
	}
	if err := rd.validLabels(a.Annotations); err != nil {
		err.Field = alertField(i, ".annotations"+err.Field)
		return err
	}
	return nil
}
