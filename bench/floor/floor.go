// Package floor is the anchor of the duplicate-path benchmark: the least an
// HTTP service must do to deduplicate an Alertmanager webhook in Redis. It
// reads the body, decodes it into the same Alertmanager template types as
// the gateway (the message, then each alert), and makes the same single
// Redis round trip: dedup.Store.Claim, one pipelined EVALSHA of the claim
// script per alert, through a client with the gateway's options, with the
// view of an in-memory set of the episodes it opened (the gateway's is its
// watch cache). It does no validation, normalization, fingerprinting,
// metrics, logging or Kubernetes call, and answers with a fixed small body.
package floor

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/alertgate/gateway/internal/dedup"
	"github.com/alertgate/gateway/internal/pipeline"
)

// message is the gateway's decoding of a webhook: the template data with
// each alert kept raw, then decoded alone.
type message struct {
	template.Data
	Version         string            `json:"version"`
	GroupKey        string            `json:"groupKey"`
	TruncatedAlerts uint64            `json:"truncatedAlerts"`
	Alerts          []json.RawMessage `json:"alerts"`
}

// Handler serves POST /api/v1/signals/prometheus.
type Handler struct {
	store *dedup.Store
	bufs  sync.Pool
	// open holds the fingerprints whose episode 1 the floor opened.
	open sync.Map
}

// New returns a floor handler claiming through store.
func New(store *dedup.Store) *Handler {
	return &Handler{store: store, bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

var openView = pipeline.EpisodeView{Open: 1, Next: 2}

var (
	accepted = []byte(`{"status":"duplicate"}` + "\n")
	created  = []byte(`{"status":"created"}` + "\n")
)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	buf := h.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer h.bufs.Put(buf)
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, 1<<20)); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg message
	if err := json.Unmarshal(buf.Bytes(), &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	claims := make([]pipeline.Claim, len(msg.Alerts))
	for i, raw := range msg.Alerts {
		var a template.Alert
		if err := json.Unmarshal(raw, &a); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// Alertmanager's own fingerprint of the label set is the key: the
		// floor does not normalize.
		claims[i] = pipeline.Claim{Fingerprint: a.Fingerprint, Increment: 1, View: pipeline.EpisodeView{Next: 1}}
		if _, ok := h.open.Load(a.Fingerprint); ok {
			claims[i].View = openView
		}
	}
	now := time.Now()
	res, err := h.store.Claim(r.Context(), "floor", now, claims)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	// A new fingerprint is committed at once (a second round trip), so
	// that the pool's repeats take the duplicate branch of the script, as
	// they do at the gateway.
	var commit []pipeline.Settlement
	for i, c := range res {
		if c.State == pipeline.Reserved {
			commit = append(commit, pipeline.Settlement{Fingerprint: claims[i].Fingerprint, Seq: c.Seq, Commit: true, Count: c.Count})
		}
	}
	body, code := accepted, http.StatusAccepted
	if len(commit) > 0 {
		if err := h.store.Settle(context.WithoutCancel(r.Context()), "floor", now, commit); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		for _, c := range commit {
			h.open.Store(c.Fingerprint, struct{}{})
		}
		body, code = created, http.StatusCreated
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
