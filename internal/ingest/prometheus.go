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
// built on its template.Data. Alerts shadows Data.Alerts so each alert is
// kept as received, decoded once, and stored without re-marshalling.
type webhookMessage struct {
	template.Data
	Version         string            `json:"version"`
	GroupKey        string            `json:"groupKey"`
	TruncatedAlerts uint64            `json:"truncatedAlerts"`
	Alerts          []json.RawMessage `json:"alerts"`
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
	req := &pipeline.Request{Source: pipeline.SourcePrometheus, Signals: make([]pipeline.Signal, len(msg.Alerts))}
	for i, raw := range msg.Alerts {
		field := fmt.Sprintf("alerts[%d]", i)
		var a template.Alert
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, jsonError(field, err)
		}
		if err := rd.validateAlert(field, &a, now); err != nil {
			return nil, err
		}
		// raw aliases the pooled body buffer: the signal keeps a copy.
		req.Signals[i] = normalize.Alert(&a, clone(raw), now, rd.opts.Limits)
	}
	return req, nil
}

func (rd *Reader) validateAlert(field string, a *template.Alert, now time.Time) error {
	switch {
	case a.Status != "firing" && a.Status != "resolved":
		return &pipeline.InputError{Kind: pipeline.Malformed, Field: field + ".status", Detail: fmt.Sprintf("%q is neither firing nor resolved", excerpt(a.Status))}
	case a.Labels["alertname"] == "":
		return &pipeline.InputError{Kind: pipeline.Malformed, Field: field + ".labels.alertname", Detail: "missing"}
	}
	if err := rd.validLabels(field+".labels", a.Labels); err != nil {
		return err
	}
	if err := rd.validLabels(field+".annotations", a.Annotations); err != nil {
		return err
	}
	return rd.notInFuture(field+".startsAt", a.StartsAt, now)
}
