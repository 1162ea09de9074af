package respond

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alertgate/gateway/internal/pipeline"
)

func TestStatusOf(t *testing.T) {
	created := pipeline.Outcome{Status: pipeline.StatusCreated}
	dup := pipeline.Outcome{Status: pipeline.StatusDuplicate}
	resolved := pipeline.Outcome{Status: pipeline.StatusResolved}
	for _, c := range []struct {
		outcomes []pipeline.Outcome
		want     int
	}{
		{[]pipeline.Outcome{created, dup}, 201},
		{[]pipeline.Outcome{dup, dup}, 202},
		{[]pipeline.Outcome{dup, resolved}, 202},
		{[]pipeline.Outcome{resolved}, 200},
		{nil, 200}, // a Normal event
	} {
		if got := StatusOf(&pipeline.Result{Outcomes: c.outcomes}); got != c.want {
			t.Errorf("%v: %d, want %d", c.outcomes, got, c.want)
		}
	}
}

func TestProblemOf(t *testing.T) {
	dep := func(k pipeline.ErrorKind) error {
		return &pipeline.DependencyError{Dependency: pipeline.Redis, Op: "claim", Kind: k, Err: errors.New("x")}
	}
	for _, c := range []struct {
		err  error
		want int
	}{
		{&pipeline.InputError{Kind: pipeline.Malformed, Field: "version"}, 400},
		{&pipeline.InputError{Kind: pipeline.TooLarge}, 413},
		{&pipeline.InputError{Kind: pipeline.UnsupportedMedia}, 415},
		{&pipeline.InputError{Kind: pipeline.TimedOut}, 408},
		{dep(pipeline.KindUnavailable), 503},
		{dep(pipeline.KindOOM), 503},
		{dep(pipeline.KindTimeout), 503},
		{dep(pipeline.KindBreakerOpen), 503},
		{&pipeline.DeadlineError{Cause: dep(pipeline.KindTimeout)}, 504},
		{&pipeline.DeadlineError{Cause: context.Canceled}, 504},
		{dep(pipeline.KindRejected), 500}, // our bug, not the sender's: still retried
		{errors.New("unexpected"), 500},
	} {
		if got := ProblemOf(c.err); got.Status != c.want {
			t.Errorf("%v: %d, want %d", c.err, got.Status, c.want)
		}
	}
}

func TestErrorWritesProblemWithRetryAfter(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/api/v1/signals/prometheus", nil)
	code := Error(w, r, "req-1", &pipeline.DependencyError{Dependency: pipeline.Kubernetes, Op: "create", Kind: pipeline.KindUnavailable, Err: errors.New("refused")}, 1500*time.Millisecond).Status
	var p Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if code != 503 || w.Header().Get("Retry-After") != "2" || w.Header().Get("Content-Type") != "application/problem+json" ||
		p.RequestID != "req-1" || p.Dependency != "kubernetes" || p.Instance != "/api/v1/signals/prometheus" {
		t.Fatalf("%d %v %+v", code, w.Header(), p)
	}
}
