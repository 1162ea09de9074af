package auth

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type countingReviewer struct {
	calls atomic.Int32
	d     Decision
	err   error
	delay time.Duration
}

func (c *countingReviewer) Review(context.Context, string) (Decision, error) {
	c.calls.Add(1)
	time.Sleep(c.delay)
	return c.d, c.err
}

func TestGuardCachesAndShares(t *testing.T) {
	rev := &countingReviewer{d: Decision{Authenticated: true, Allowed: true, User: "am"}, delay: 20 * time.Millisecond}
	g := NewGuard(rev, time.Minute)
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d, err := g.Check(context.Background(), "tok"); err != nil || !d.Allowed {
				t.Errorf("check: %+v %v", d, err)
			}
		}()
	}
	wg.Wait()
	if _, err := g.Check(context.Background(), "tok"); err != nil {
		t.Fatal(err)
	}
	if n := rev.calls.Load(); n != 1 {
		t.Fatalf("%d reviews for one token, want 1 (shared, then cached)", n)
	}
	now := time.Now()
	g.now = func() time.Time { return now.Add(2 * time.Minute) }
	if _, err := g.Check(context.Background(), "tok"); err != nil || rev.calls.Load() != 2 {
		t.Fatalf("an expired answer was reused (%d reviews)", rev.calls.Load())
	}
}

func TestGuardNeverCachesAnOutage(t *testing.T) {
	rev := &countingReviewer{err: ErrUnavailable}
	g := NewGuard(rev, time.Minute)
	for i := 0; i < 2; i++ {
		if _, err := g.Check(context.Background(), "tok"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
	}
	if rev.calls.Load() != 2 {
		t.Fatal("an outage was cached as an answer")
	}
}

func TestStaticReviewer(t *testing.T) {
	f := filepath.Join(t.TempDir(), "tokens")
	_ = os.WriteFile(f, []byte("# comment\n\nsecret-token-0123456789,alertmanager\n"), 0o600)
	s, err := NewStaticReviewer(f)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Review(context.Background(), "secret-token-0123456789"); !d.Allowed || d.User != "alertmanager" {
		t.Fatalf("known token: %+v", d)
	}
	if d, _ := s.Review(context.Background(), "secret-token-012345678"); d.Authenticated {
		t.Fatal("a prefix of a token was accepted")
	}
	_ = os.WriteFile(f, []byte("short\n"), 0o600)
	if _, err := NewStaticReviewer(f); err == nil {
		t.Fatal("a token under 16 characters was accepted")
	}
}

func TestBearerAndStrip(t *testing.T) {
	r, _ := http.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("Authorization", "bearer  abc ")
	if BearerToken(r) != "abc" {
		t.Fatalf("token %q", BearerToken(r))
	}
	r.Header.Set("Authorization", "Basic abc")
	if BearerToken(r) != "" {
		t.Fatal("a Basic credential was taken as a bearer token")
	}
	h := http.Header{"Impersonate-User": {"admin"}, "Impersonate-Extra-Scopes": {"x"}, "X-Remote-User": {"a"}, "Content-Type": {"application/json"}}
	StripIdentityHeaders(h)
	if len(h) != 1 || h.Get("Content-Type") == "" {
		t.Fatalf("headers left: %v", h)
	}
}
