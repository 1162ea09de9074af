// Package respond turns a pipeline result or error into the HTTP answer:
// 201/202/200 with one entry per stored signal and one per rejected item,
// or an RFC 7807 problem.
package respond

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/alertgate/gateway/internal/pipeline"
)

// Body is the success answer.
type Body struct {
	RequestID string             `json:"requestId"`
	Signals   []pipeline.Outcome `json:"signals"`
	// Ignored counts items that were valid but not actionable.
	Ignored int `json:"ignored,omitempty"`
	// Rejected lists the items that could not be stored, each with its
	// field and reason; the others were stored all the same.
	Rejected []pipeline.Rejection `json:"rejected,omitempty"`
}

// StatusOf returns 201 when a resource was created, 202 when signals were
// duplicates and nothing new, 200 when nothing was actionable (resolved
// alerts, Normal events).
func StatusOf(res *pipeline.Result) int {
	switch {
	case res.Created():
		return http.StatusCreated
	case res.Duplicates():
		return http.StatusAccepted
	}
	return http.StatusOK
}

// Result writes the answer to a processed request and returns its status:
// a success when anything was stored, and 400 when every item was
// rejected (resending the same request cannot succeed).
func Result(w http.ResponseWriter, r *http.Request, requestID string, res *pipeline.Result) int {
	if !res.Stored() && len(res.Rejected) > 0 {
		p := Problem{Type: ProblemType("invalid-payload"), Title: "Invalid payload", Status: http.StatusBadRequest,
			Detail: "no item of the request could be stored", Instance: r.URL.Path, RequestID: requestID, Rejected: res.Rejected}
		if len(res.Rejected) == 1 {
			p.Field, p.Detail = res.Rejected[0].Field, res.Rejected[0].Reason
		}
		Write(w, p)
		return p.Status
	}
	code := StatusOf(res)
	body := Body{RequestID: requestID, Signals: res.Outcomes, Ignored: res.Ignored, Rejected: res.Rejected}
	if body.Signals == nil {
		body.Signals = []pipeline.Outcome{}
	}
	writeJSON(w, "application/json", code, body)
	return code
}

// Problem is an RFC 7807 problem detail.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"requestId,omitempty"`
	// Field is the JSON path of the offending field (400).
	Field string `json:"field,omitempty"`
	// Dependency that failed (503, 504).
	Dependency string `json:"dependency,omitempty"`
	// Rejected lists the invalid items (400).
	Rejected []pipeline.Rejection `json:"rejected,omitempty"`
}

const problemBase = "https://alertgate.io/problems/"

// ProblemType returns the type URI of the problem named slug.
func ProblemType(slug string) string { return problemBase + slug }

// ProblemOf maps an error to its problem: InputError → 400/413/415,
// retryable DependencyError → 503, DeadlineError → 504, anything else →
// 500. Only 5xx answers invite the sender to retry.
func ProblemOf(err error) Problem {
	var ie *pipeline.InputError
	var de *pipeline.DeadlineError
	if errors.As(err, &ie) {
		p := Problem{Detail: ie.Detail, Field: ie.Field}
		switch ie.Kind {
		case pipeline.TooLarge:
			p.Type, p.Title, p.Status = problemBase+"body-too-large", "Request body too large", http.StatusRequestEntityTooLarge
		case pipeline.UnsupportedMedia:
			p.Type, p.Title, p.Status = problemBase+"unsupported-media-type", "Unsupported media type", http.StatusUnsupportedMediaType
		case pipeline.TimedOut:
			p.Type, p.Title, p.Status = problemBase+"request-timeout", "Request timeout", http.StatusRequestTimeout
		default:
			p.Type, p.Title, p.Status = problemBase+"invalid-payload", "Invalid payload", http.StatusBadRequest
		}
		return p
	}
	if errors.As(err, &de) {
		p := Problem{Type: problemBase + "deadline-exceeded", Title: "Request deadline exceeded", Status: http.StatusGatewayTimeout,
			Detail: "the signals could not all be stored before the request deadline; retry"}
		if d, ok := pipeline.AsDependencyError(err); ok {
			p.Dependency = string(d.Dependency)
		}
		return p
	}
	if d, ok := pipeline.AsDependencyError(err); ok && d.Retryable() {
		return Problem{Type: problemBase + "dependency-unavailable", Title: "Dependency unavailable", Status: http.StatusServiceUnavailable,
			Detail: string(d.Dependency) + " " + d.Op + " failed (" + string(d.Kind) + "); nothing was acknowledged, retry", Dependency: string(d.Dependency)}
	}
	return Problem{Type: problemBase + "internal", Title: "Internal error", Status: http.StatusInternalServerError,
		Detail: "the signals could not be stored; retry"}
}

// Error writes err as a problem and returns it. 503 and 504 carry
// Retry-After.
func Error(w http.ResponseWriter, r *http.Request, requestID string, err error, retryAfter time.Duration) Problem {
	p := ProblemOf(err)
	p.Instance = r.URL.Path
	p.RequestID = requestID
	if p.Status == http.StatusServiceUnavailable || p.Status == http.StatusGatewayTimeout {
		w.Header().Set("Retry-After", RetryAfterSeconds(retryAfter))
	}
	writeJSON(w, "application/problem+json", p.Status, p)
	return p
}

// Write writes a problem built by the caller (e.g. 404, 405).
func Write(w http.ResponseWriter, p Problem) {
	writeJSON(w, "application/problem+json", p.Status, p)
}

// RetryAfterSeconds renders d as a Retry-After value: whole seconds,
// rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s)
}

func writeJSON(w http.ResponseWriter, contentType string, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		contentType = "application/problem+json"
		b = []byte(`{"type":"` + problemBase + `internal","title":"Internal error","status":500}`)
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
