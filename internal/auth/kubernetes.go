package auth

import (
	"context"
	"fmt"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/internal/breaker"
)

// KubernetesReviewer asks the API server: a TokenReview authenticates the
// token, a SubjectAccessReview authorizes its user for Verb on Resource of
// Group in Namespace.
type KubernetesReviewer struct {
	Client client.Client
	// Breaker guards the API server (the creator's); required.
	Breaker   *breaker.Breaker
	Namespace string
	Verb      string
	Group     string
	Resource  string
}

// Review implements Reviewer.
func (k *KubernetesReviewer) Review(ctx context.Context, token string) (Decision, error) {
	tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}
	if err := k.call(func() error { return k.Client.Create(ctx, tr) }); err != nil {
		return Decision{}, fmt.Errorf("%w: token review: %v", ErrUnavailable, err)
	}
	if !tr.Status.Authenticated {
		return Decision{Reason: "token not authenticated"}, nil
	}
	u := tr.Status.User
	extra := map[string]authzv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authzv1.ExtraValue(v)
	}
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
		ResourceAttributes: &authzv1.ResourceAttributes{
			Namespace: k.Namespace, Verb: k.Verb, Group: k.Group, Resource: k.Resource,
		},
	}}
	if err := k.call(func() error { return k.Client.Create(ctx, sar) }); err != nil {
		return Decision{}, fmt.Errorf("%w: subject access review: %v", ErrUnavailable, err)
	}
	d := Decision{Authenticated: true, Allowed: sar.Status.Allowed, User: u.Username}
	if !d.Allowed {
		d.Reason = fmt.Sprintf("%s may not %s %s.%s in %s", u.Username, k.Verb, k.Resource, k.Group, k.Namespace)
	}
	return d, nil
}

func (k *KubernetesReviewer) call(fn func() error) error {
	return k.Breaker.Do(fn)
}
