// Package create writes RemediationRequests through the Kubernetes API: the
// create on the request path, the resolution on resolved alerts, and the
// asynchronous projection of deduplication counts onto the status.
package create

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/breaker"
	"github.com/alertgate/gateway/internal/pipeline"
)

// Options configure a Creator.
type Options struct {
	// Namespace where RemediationRequests are created. Default: "default".
	Namespace string
	// Timeout bounds each API call. Default: 5s.
	Timeout time.Duration
	// Breaker guards the API. Default: breaker.New with Name "kubernetes"
	// counting only transport failures, timeouts, 429 and 5xx.
	Breaker *breaker.Breaker
}

func (o *Options) setDefaults() {
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Breaker == nil {
		o.Breaker = NewBreaker(breaker.Options{})
	}
}

// NewBreaker returns a breaker for the Kubernetes API that counts only the
// API's own failures: an AlreadyExists or a NotFound is an answer.
func NewBreaker(o breaker.Options) *breaker.Breaker {
	o.Name = string(pipeline.Kubernetes)
	o.IsFailure = func(err error) bool {
		k := kind(err)
		return k != pipeline.KindRejected && !errors.Is(err, context.Canceled) &&
			!apierrors.IsAlreadyExists(err) && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err)
	}
	return breaker.New(o)
}

// Creator implements pipeline.Creator.
type Creator struct {
	c    client.Client
	opts Options
}

var _ pipeline.Creator = (*Creator)(nil)

// New returns a Creator writing through c, which must not be a cached
// client: the gateway reads nothing it has not just written.
func New(c client.Client, opts Options) (*Creator, error) {
	if c == nil {
		return nil, errors.New("create: nil client")
	}
	opts.setDefaults()
	return &Creator{c: c, opts: opts}, nil
}

// Namespace implements pipeline.Creator.
func (c *Creator) Namespace() string { return c.opts.Namespace }

// Available implements pipeline.Creator.
func (c *Creator) Available() bool { return !c.opts.Breaker.Open() }

// Create implements pipeline.Creator.
func (c *Creator) Create(ctx context.Context, sig *pipeline.Signal, name string) (bool, int64, error) {
	obj := Build(sig, c.opts.Namespace, name)
	err := c.call(ctx, func(ctx context.Context) error { return c.c.Create(ctx, obj) })
	if err == nil {
		return true, 0, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return false, 0, c.classify("create", err)
	}
	// Same deterministic name: the same signal, created by a retry, a peer
	// or before Redis lost its data. Read it to continue its count and to
	// make sure the name really is this fingerprint's.
	var cur v1alpha1.RemediationRequest
	if gerr := c.call(ctx, func(ctx context.Context) error {
		return c.c.Get(ctx, types.NamespacedName{Namespace: c.opts.Namespace, Name: name}, &cur)
	}); gerr != nil {
		return false, 0, nil
	}
	if cur.Spec.Fingerprint != sig.Fingerprint {
		return false, 0, &pipeline.DependencyError{Dependency: pipeline.Kubernetes, Op: "create", Kind: pipeline.KindRejected,
			Err: fmt.Errorf("resource %s holds fingerprint %s, not %s", name, cur.Spec.Fingerprint, sig.Fingerprint)}
	}
	var n int64
	if d := cur.Status.Deduplication; d != nil {
		n = d.OccurrenceCount
	}
	return false, n, nil
}

// Resolve implements pipeline.Creator.
func (c *Creator) Resolve(ctx context.Context, sig *pipeline.Signal, name string) (bool, error) {
	at := sig.ResolvedAt
	if at.IsZero() {
		at = sig.ReceivedTime
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"resolution": v1alpha1.Resolution{
		ResolvedAt: metav1.NewTime(at), ReceivedAt: metav1.NewTime(sig.ReceivedTime),
	}}})
	if err != nil {
		return false, err
	}
	obj := &v1alpha1.RemediationRequest{ObjectMeta: metav1.ObjectMeta{Namespace: c.opts.Namespace, Name: name}}
	err = c.call(ctx, func(ctx context.Context) error {
		return c.c.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch))
	})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	}
	return false, c.classify("resolve", err)
}

// Build returns the RemediationRequest for a signal.
func Build(sig *pipeline.Signal, namespace, name string) *v1alpha1.RemediationRequest {
	fpLabel := sig.Fingerprint
	if len(fpLabel) > 32 {
		fpLabel = fpLabel[:32]
	}
	return &v1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace,
			Name:      name,
			Labels: map[string]string{
				v1alpha1.LabelFingerprint: fpLabel,
				v1alpha1.LabelSource:      string(sig.Source),
				v1alpha1.LabelManagedBy:   v1alpha1.ManagedByValue,
			},
		},
		Spec: v1alpha1.RemediationRequestSpec{
			Fingerprint: sig.Fingerprint,
			SignalName:  sig.Name,
			Severity:    sig.Severity,
			Source:      string(sig.Source),
			TargetResource: v1alpha1.TargetResource{
				Kind: sig.Target.Kind, Name: sig.Target.Name, Namespace: sig.Target.Namespace,
			},
			Labels:                   sig.Labels,
			Annotations:              sig.Annotations,
			FiringTime:               metav1.NewTime(sig.Since()),
			ReceivedTime:             metav1.NewTime(sig.ReceivedTime),
			OriginalPayload:          string(sig.Payload),
			OriginalPayloadTruncated: sig.PayloadTruncated,
		},
	}
}

// call runs fn through the breaker with the per-call timeout.
func (c *Creator) call(ctx context.Context, fn func(context.Context) error) error {
	return c.opts.Breaker.Do(func() error {
		ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
		return fn(ctx)
	})
}

func (c *Creator) classify(op string, err error) error {
	if _, ok := pipeline.AsDependencyError(err); ok {
		return err
	}
	return &pipeline.DependencyError{Dependency: pipeline.Kubernetes, Op: op, Kind: kind(err), Err: err}
}

// kind classifies an API error with apimachinery's helpers, never by its
// text.
func kind(err error) pipeline.ErrorKind {
	var ne net.Error
	switch {
	case errors.Is(err, breaker.ErrOpen):
		return pipeline.KindBreakerOpen
	case errors.Is(err, context.DeadlineExceeded), apierrors.IsTimeout(err), apierrors.IsServerTimeout(err),
		errors.As(err, &ne) && ne.Timeout():
		return pipeline.KindTimeout
	case apierrors.IsTooManyRequests(err), apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err),
		apierrors.IsUnexpectedServerError(err):
		return pipeline.KindOverloaded
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsForbidden(err),
		apierrors.IsUnauthorized(err), apierrors.IsNotFound(err), apierrors.IsMethodNotSupported(err),
		apierrors.IsNotAcceptable(err), apierrors.IsUnsupportedMediaType(err), apierrors.IsRequestEntityTooLargeError(err):
		return pipeline.KindRejected
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Code >= 500 {
		return pipeline.KindOverloaded
	}
	return pipeline.KindUnavailable
}
