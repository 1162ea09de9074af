package create

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/pipeline"
)

func TestKind(t *testing.T) {
	gr := schema.GroupResource{Group: "remediation.alertgate.io", Resource: "remediationrequests"}
	for _, c := range []struct {
		err  error
		want pipeline.ErrorKind
	}{
		{apierrors.NewTooManyRequests("slow down", 1), pipeline.KindOverloaded},
		{apierrors.NewServiceUnavailable("down"), pipeline.KindOverloaded},
		{apierrors.NewInternalError(errors.New("x")), pipeline.KindOverloaded},
		{apierrors.NewTimeoutError("t", 1), pipeline.KindTimeout},
		{context.DeadlineExceeded, pipeline.KindTimeout},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, pipeline.KindUnavailable},
		{apierrors.NewForbidden(gr, "x", errors.New("rbac")), pipeline.KindRejected},
		{apierrors.NewInvalid(schema.GroupKind{Group: gr.Group, Kind: "RemediationRequest"}, "x", nil), pipeline.KindRejected},
		{apierrors.NewNotFound(gr, "x"), pipeline.KindRejected},
	} {
		if got := kind(c.err); got != c.want {
			t.Errorf("%v: %s, want %s", c.err, got, c.want)
		}
	}
}

func TestApplyOnlyRaises(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	var st v1alpha1.RemediationRequestStatus
	if !apply(&st, pipeline.Observation{Count: 3, FirstSeen: t0, LastSeen: t0.Add(time.Minute)}) {
		t.Fatal("first observation changed nothing")
	}
	if st.Phase != v1alpha1.PhasePending || st.Deduplication.OccurrenceCount != 3 {
		t.Fatalf("status %+v", st)
	}
	st.Phase = "Remediating" // a controller's
	if apply(&st, pipeline.Observation{Count: 2, FirstSeen: t0, LastSeen: t0}) {
		t.Fatal("an older, lower observation changed the status")
	}
	if st.Phase != "Remediating" || st.Deduplication.OccurrenceCount != 3 {
		t.Fatalf("status %+v", st)
	}
}

func TestMergeKeepsTheMost(t *testing.T) {
	t0 := time.Now()
	m := merge(pipeline.Observation{Count: 5, FirstSeen: t0, LastSeen: t0}, pipeline.Observation{Count: 3, FirstSeen: t0.Add(-time.Hour), LastSeen: t0.Add(time.Hour)})
	if m.Count != 5 || !m.FirstSeen.Equal(t0.Add(-time.Hour)) || !m.LastSeen.Equal(t0.Add(time.Hour)) {
		t.Fatalf("merge %+v", m)
	}
}
