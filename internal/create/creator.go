// Package create writes RemediationRequests through the Kubernetes API: it
// opens episodes (or attaches to the one a peer opened), reads a
// fingerprint's episodes when the watch cache cannot be trusted, records
// members and their resolution, and projects deduplication counts onto the
// status asynchronously.
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

// Defaults of Options.
const (
	DefaultNamespace = "default"
	DefaultTimeout   = 5 * time.Second
)

// Observer learns of what the creator wrote or read (the watch cache), and
// that an API call failed in transport.
type Observer interface {
	Observe(*v1alpha1.RemediationRequest)
	Suspect()
}

// Options configure a Creator.
type Options struct {
	// Namespace where RemediationRequests are created. Default: "default".
	Namespace string
	// Timeout bounds each API call. Default: 5s.
	Timeout time.Duration
	// Breaker guards the API. Default: NewBreaker(breaker.Options{}).
	Breaker *breaker.Breaker
	// Terminal phases end an episode. Default: v1alpha1.DefaultTerminalPhases.
	Terminal v1alpha1.PhaseSet
	// Observer, when set, is told of every object written or read.
	// Default: none.
	Observer Observer
}

func (o *Options) setDefaults() {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Breaker == nil {
		o.Breaker = NewBreaker(breaker.Options{})
	}
	if o.Terminal == nil {
		o.Terminal = v1alpha1.NewPhaseSet(nil)
	}
}

// NewBreaker returns a breaker for the Kubernetes API that counts only the
// API's own failures: an AlreadyExists, a NotFound or a Conflict is an
// answer.
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
	// created, set by NewStatusSyncer before anything runs, learns of
	// each resource Open created: the syncer's first status write then
	// needs no read.
	created func(*v1alpha1.RemediationRequest)
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

// Name implements pipeline.Creator.
func (c *Creator) Name(fingerprint string, seq int64) string {
	return v1alpha1.EpisodeName(fingerprint, seq)
}

// Available implements pipeline.Creator.
func (c *Creator) Available() bool { return !c.opts.Breaker.Open() }

// maxOpenAttempts bounds how many numbers Open tries: each step past the
// first means the view was stale, and one step is usually enough.
const maxOpenAttempts = 8

// Open implements pipeline.Creator.
func (c *Creator) Open(ctx context.Context, sig *pipeline.Signal, members []pipeline.Member, seq int64) (pipeline.OpenResult, error) {
	seq = max(seq, 1)
	for attempt := 0; attempt < maxOpenAttempts; attempt++ {
		obj := Build(sig, c.opts.Namespace, seq, members)
		err := c.call(ctx, func(ctx context.Context) error { return c.c.Create(ctx, obj) })
		if err == nil {
			c.observe(obj)
			if c.created != nil {
				c.created(obj)
			}
			// Members beyond what the spec holds go to the status.
			return pipeline.OpenResult{Seq: seq, Name: obj.Name, Created: true, NeedsMembers: len(members) > maxSpecMembers}, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return pipeline.OpenResult{}, c.classify("create", err)
		}
		// A peer, a retry or a gateway before a Redis data loss opened
		// this number: attach if it is still open, else try the next.
		var cur v1alpha1.RemediationRequest
		err = c.call(ctx, func(ctx context.Context) error {
			return c.c.Get(ctx, types.NamespacedName{Namespace: c.opts.Namespace, Name: obj.Name}, &cur)
		})
		switch {
		case apierrors.IsNotFound(err):
			continue // deleted since: the number is free again
		case err != nil:
			return pipeline.OpenResult{}, c.classify("create", err)
		case cur.Spec.Fingerprint != sig.Fingerprint:
			return pipeline.OpenResult{}, &pipeline.DependencyError{Dependency: pipeline.Kubernetes, Op: "create", Kind: pipeline.KindRejected,
				Err: fmt.Errorf("resource %s holds fingerprint %s, not %s", obj.Name, cur.Spec.Fingerprint, sig.Fingerprint)}
		}
		c.observe(&cur)
		if c.opts.Terminal.Open(&cur) {
			r := pipeline.OpenResult{Seq: seq, Name: obj.Name, NeedsMembers: needsMembers(&cur, members)}
			if d := cur.Status.Deduplication; d != nil {
				r.Count = d.OccurrenceCount
			}
			return r, nil
		}
		seq++
	}
	return pipeline.OpenResult{}, &pipeline.DependencyError{Dependency: pipeline.Kubernetes, Op: "create", Kind: pipeline.KindConflict,
		Err: fmt.Errorf("no episode could be opened or attached to in %d attempts", maxOpenAttempts)}
}

// needsMembers reports whether members would change rr's.
func needsMembers(rr *v1alpha1.RemediationRequest, members []pipeline.Member) bool {
	have := rr.Members()
	for _, m := range members {
		found := false
		for _, h := range have {
			if h.ID == m.ID {
				found = true
				if m.FiringSince.After(h.FiringSince.Time) {
					return true
				}
			}
		}
		if !found {
			return true
		}
	}
	return false
}

// Episodes implements pipeline.Creator: a consistent read of the
// fingerprint's resources (selected by label, checked by spec).
func (c *Creator) Episodes(ctx context.Context, fingerprint string) (pipeline.EpisodeView, error) {
	var l v1alpha1.RemediationRequestList
	err := c.call(ctx, func(ctx context.Context) error {
		return c.c.List(ctx, &l, client.InNamespace(c.opts.Namespace),
			client.MatchingLabels{v1alpha1.LabelFingerprint: v1alpha1.FingerprintLabel(fingerprint)})
	})
	if err != nil {
		return pipeline.EpisodeView{}, c.classify("list", err)
	}
	v := pipeline.EpisodeView{Next: 1, Authoritative: true}
	for i := range l.Items {
		rr := &l.Items[i]
		if rr.Spec.Fingerprint != fingerprint || rr.Spec.Episode <= 0 {
			continue
		}
		c.observe(rr)
		v.Next = max(v.Next, rr.Spec.Episode+1)
		if c.opts.Terminal.Open(rr) && rr.Spec.Episode > v.Open {
			v.Open, v.Resolved = rr.Spec.Episode, rr.Status.Resolution != nil
			if d := rr.Status.Deduplication; d != nil {
				v.Count = d.OccurrenceCount
			}
		}
	}
	return v, nil
}

// maxStatusAttempts bounds the re-reads after a conflicting write.
const maxStatusAttempts = 5

// UpdateMembers implements pipeline.Creator: read, merge, and write the
// members and the resolution with one merge patch conditioned on the
// resourceVersion read, so that concurrent writers (replicas, controllers,
// the status projection) never lose each other's updates.
func (c *Creator) UpdateMembers(ctx context.Context, fingerprint string, seq int64, members []pipeline.Member, receivedAt time.Time) (bool, error) {
	key := types.NamespacedName{Namespace: c.opts.Namespace, Name: v1alpha1.EpisodeName(fingerprint, seq)}
	for attempt := 0; ; attempt++ {
		var rr v1alpha1.RemediationRequest
		err := c.call(ctx, func(ctx context.Context) error { return c.c.Get(ctx, key, &rr) })
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, c.classify("members", err)
		}
		if rr.Spec.Fingerprint != fingerprint {
			return false, nil
		}
		merged := capMembers(v1alpha1.MergeMembers(rr.Members(), toAPI(members)), maxStatusMembers)
		res := rr.Status.Resolution
		if at, ok := v1alpha1.AllResolved(merged); !ok {
			res = nil
		} else if res == nil || at != nil && !res.ResolvedAt.Equal(&metav1.Time{Time: at.Time}) {
			res = &v1alpha1.Resolution{ReceivedAt: metav1.NewTime(receivedAt)}
			if at != nil {
				res.ResolvedAt = metav1.NewTime(at.Time)
			}
		}
		if membersEqual(rr.Status.Members, merged) && res == rr.Status.Resolution {
			c.observe(&rr)
			return true, nil
		}
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": rr.ResourceVersion},
			"status":   map[string]any{"members": merged, "resolution": res},
		})
		if err != nil {
			return false, err
		}
		obj := &v1alpha1.RemediationRequest{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		err = c.call(ctx, func(ctx context.Context) error {
			return c.c.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch))
		})
		switch {
		case err == nil:
			c.observe(obj)
			return true, nil
		case apierrors.IsNotFound(err):
			return false, nil
		case apierrors.IsConflict(err) && attempt < maxStatusAttempts:
			continue
		}
		return false, c.classify("members", err)
	}
}

// Bounds of the CRD's member lists.
const (
	maxSpecMembers   = 64
	maxStatusMembers = 256
)

// capMembers keeps at most limit members: the resolved ones go first, then
// the longest quiet, so that what still fires is kept.
func capMembers(ms []v1alpha1.Member, limit int) []v1alpha1.Member {
	for len(ms) > limit {
		drop := 0
		for i := range ms {
			a, b := &ms[i], &ms[drop]
			if a.Resolved() != b.Resolved() {
				if a.Resolved() {
					drop = i
				}
				continue
			}
			if a.FiringSince.Before(&b.FiringSince) {
				drop = i
			}
		}
		ms = append(ms[:drop], ms[drop+1:]...)
	}
	return ms
}

func toAPI(ms []pipeline.Member) []v1alpha1.Member {
	out := make([]v1alpha1.Member, len(ms))
	for i, m := range ms {
		out[i] = v1alpha1.Member{ID: m.ID, FiringSince: metav1.NewMicroTime(m.FiringSince)}
		if !m.ResolvedSince.IsZero() {
			rs, ra := metav1.NewMicroTime(m.ResolvedSince), metav1.NewMicroTime(m.ResolvedAt)
			out[i].ResolvedSince, out[i].ResolvedAt = &rs, &ra
		}
	}
	return out
}

func membersEqual(a, b []v1alpha1.Member) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.ID != y.ID || !x.FiringSince.Equal(&y.FiringSince) || !microEqual(x.ResolvedSince, y.ResolvedSince) || !microEqual(x.ResolvedAt, y.ResolvedAt) {
			return false
		}
	}
	return true
}

func microEqual(a, b *metav1.MicroTime) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}

// Build returns the RemediationRequest of a fingerprint's episode seq,
// opened by sig with members.
func Build(sig *pipeline.Signal, namespace string, seq int64, members []pipeline.Member) *v1alpha1.RemediationRequest {
	return &v1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace,
			Name:      v1alpha1.EpisodeName(sig.Fingerprint, seq),
			Labels: map[string]string{
				v1alpha1.LabelFingerprint: v1alpha1.FingerprintLabel(sig.Fingerprint),
				v1alpha1.LabelEpisode:     fmt.Sprint(seq),
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
			Episode:                  seq,
			Members:                  capMembers(toAPI(members), maxSpecMembers),
			OriginalPayload:          string(sig.Payload),
			OriginalPayloadTruncated: sig.PayloadTruncated,
		},
	}
}

func (c *Creator) observe(rr *v1alpha1.RemediationRequest) {
	if c.opts.Observer != nil {
		c.opts.Observer.Observe(rr)
	}
}

// call runs fn through the breaker with the per-call timeout.
func (c *Creator) call(ctx context.Context, fn func(context.Context) error) error {
	return c.opts.Breaker.Call(ctx, c.opts.Timeout, fn)
}

func (c *Creator) classify(op string, err error) error {
	if _, ok := pipeline.AsDependencyError(err); ok {
		return err
	}
	k := kind(err)
	if (k == pipeline.KindUnavailable || k == pipeline.KindTimeout) && c.opts.Observer != nil {
		c.opts.Observer.Suspect()
	}
	return &pipeline.DependencyError{Dependency: pipeline.Kubernetes, Op: op, Kind: k, Err: err}
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
