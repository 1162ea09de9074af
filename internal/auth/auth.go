// Package auth decides who may send signals: a bearer token checked with a
// Kubernetes TokenReview and authorized with a SubjectAccessReview (answers
// cached for a short TTL), or a static token file. It never mistakes an
// outage for a refusal: when the API server cannot be asked, the answer is
// 503 with Retry-After, not 401 or 403 (Alertmanager drops on 4xx).
package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Mode names how senders are authenticated (mode "none" builds no guard).
const (
	ModeKubernetes = "kubernetes"
	ModeStatic     = "static"
)

// Decision is the outcome of checking one token.
type Decision struct {
	Authenticated bool
	Allowed       bool
	// User is the sender's name (service account, static token name).
	User string
	// Reason explains a refusal (never the token).
	Reason string
}

// Reviewer checks a token with an authority.
type Reviewer interface {
	Review(ctx context.Context, token string) (Decision, error)
}

// ErrUnavailable wraps a failure to ask the authority: the answer is 503.
var ErrUnavailable = errors.New("authentication unavailable")

// Guard caches a Reviewer's decisions by token digest and shares one review
// between concurrent requests with the same token.
type Guard struct {
	rev   Reviewer
	ttl   time.Duration
	now   func() time.Time
	group singleflight.Group

	mu    sync.Mutex
	cache map[[32]byte]entry
}

type entry struct {
	d       Decision
	expires time.Time
}

// maxCache bounds the cache; forged tokens must not grow it without limit.
const maxCache = 10000

// NewGuard returns a Guard; ttl 0 disables the cache.
func NewGuard(rev Reviewer, ttl time.Duration) *Guard {
	return &Guard{rev: rev, ttl: ttl, now: time.Now, cache: map[[32]byte]entry{}}
}

// Check decides for a token. An error means the authority could not be
// asked (wrapped ErrUnavailable).
func (g *Guard) Check(ctx context.Context, token string) (Decision, error) {
	key := sha256.Sum256([]byte(token))
	now := g.now()
	g.mu.Lock()
	if e, ok := g.cache[key]; ok && now.Before(e.expires) {
		g.mu.Unlock()
		return e.d, nil
	}
	g.mu.Unlock()
	v, err, _ := g.group.Do(string(key[:]), func() (any, error) {
		// Detached from one request, so that its cancellation does not
		// fail the others waiting on the same review.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return g.rev.Review(rctx, token)
	})
	if err != nil {
		return Decision{}, err
	}
	d := v.(Decision)
	if g.ttl > 0 {
		g.mu.Lock()
		if len(g.cache) >= maxCache {
			for k, e := range g.cache {
				if !now.Before(e.expires) {
					delete(g.cache, k)
				}
			}
			if len(g.cache) >= maxCache {
				g.cache = map[[32]byte]entry{}
			}
		}
		g.cache[key] = entry{d: d, expires: now.Add(g.ttl)}
		g.mu.Unlock()
	}
	return d, nil
}

// BearerToken returns the request's bearer token, or "".
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(h[7:])
}

// StripIdentityHeaders removes the headers by which a client could claim
// an identity (impersonation, authenticating-proxy headers): the gateway
// takes identity only from the verified token.
func StripIdentityHeaders(h http.Header) {
	for k := range h {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "impersonate-") || strings.HasPrefix(lk, "x-remote-") ||
			lk == "x-forwarded-user" || lk == "x-forwarded-groups" || lk == "x-forwarded-email" {
			delete(h, k)
		}
	}
}
