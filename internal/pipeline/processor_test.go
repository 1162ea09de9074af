package pipeline

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"
)

// fakeDedup records calls and answers from a script of states.
type fakeDedup struct {
	mu       sync.Mutex
	states   map[string]ClaimState // answer per fingerprint; default Reserved
	claimErr error
	claims   [][]Claim
	settles  [][]Settlement
	lookups  map[string]LookupResult
	renews   [][]string
	renewErr error
}

func (f *fakeDedup) Claim(_ context.Context, _ string, _ time.Time, cs []Claim) ([]ClaimResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims = append(f.claims, cs)
	if f.claimErr != nil {
		return nil, f.claimErr
	}
	out := make([]ClaimResult, len(cs))
	for i, c := range cs {
		st := f.states[c.Fingerprint]
		if c.Peek && st != Duplicate {
			st = Absent
		}
		out[i] = ClaimResult{State: st, Count: c.Increment, Bucket: c.Bucket}
	}
	return out, nil
}

func (f *fakeDedup) Settle(_ context.Context, _ string, _ time.Time, s []Settlement) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settles = append(f.settles, s)
	return nil
}

func (f *fakeDedup) Renew(_ context.Context, _ string, fps []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.renews = append(f.renews, fps)
	return f.renewErr
}

func (f *fakeDedup) Lookup(_ context.Context, fps []string) ([]LookupResult, error) {
	out := make([]LookupResult, len(fps))
	for i, fp := range fps {
		out[i] = f.lookups[fp]
	}
	return out, nil
}

type fakeCreator struct {
	mu       sync.Mutex
	down     bool
	fail     map[string]error // by fingerprint
	exists   map[string]bool  // by fingerprint
	created  []string         // names
	resolved []string
}

func (f *fakeCreator) Create(_ context.Context, s *Signal, name string) (bool, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[s.Fingerprint]; err != nil {
		return false, 0, err
	}
	if f.exists[s.Fingerprint] {
		return false, 0, nil
	}
	f.created = append(f.created, name)
	return true, 0, nil
}

func (f *fakeCreator) Resolve(_ context.Context, _ *Signal, name string) (bool, error) {
	f.resolved = append(f.resolved, name)
	return true, nil
}

func (f *fakeCreator) Available() bool   { return !f.down }
func (f *fakeCreator) Namespace() string { return "ns" }

var (
	errAPI = &DependencyError{Dependency: Kubernetes, Op: "create", Kind: KindUnavailable, Err: errors.New("refused")}
	t0     = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
)

func sig(fp string) Signal { return Signal{Fingerprint: fp, FiringTime: t0, ReceivedTime: t0} }

func newProc(t *testing.T, d *fakeDedup, c *fakeCreator, hooks Hooks) *Processor {
	t.Helper()
	p, err := NewProcessor(d, c, nil, Options{Window: time.Minute, Hooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAllNewAreCreatedAndCommitted(t *testing.T) {
	d, c := &fakeDedup{}, &fakeCreator{}
	res, err := newProc(t, d, c, nil).Process(context.Background(), &Request{Signals: []Signal{sig("a"), sig("b")}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created() || len(c.created) != 2 {
		t.Fatalf("created %v, result %+v", c.created, res)
	}
	if len(d.settles) != 1 || len(d.settles[0]) != 2 || !d.settles[0][0].Commit || !d.settles[0][1].Commit {
		t.Fatalf("settlements %+v, want two commits in one call", d.settles)
	}
	if res.Outcomes[0].Name != ResourceName("a", Bucket(&Signal{FiringTime: t0}, time.Minute)) {
		t.Fatalf("outcome name %q", res.Outcomes[0].Name)
	}
}

// A failed create releases its own reservation, commits what was created,
// and fails the batch so that the sender retries it.
func TestFailedCreateReleasesAndFailsBatch(t *testing.T) {
	d, c := &fakeDedup{}, &fakeCreator{fail: map[string]error{"b": errAPI}}
	_, err := newProc(t, d, c, nil).Process(context.Background(), &Request{Signals: []Signal{sig("a"), sig("b")}})
	var de *DependencyError
	if !errors.As(err, &de) || de.Dependency != Kubernetes {
		t.Fatalf("err = %v, want the Kubernetes error", err)
	}
	want := []Settlement{
		{Fingerprint: "a", Bucket: d.claims[0][0].Bucket, Commit: true, Count: 1},
		{Fingerprint: "b", Bucket: d.claims[0][1].Bucket},
	}
	if !reflect.DeepEqual(d.settles[0], want) {
		t.Fatalf("settlements %+v, want %+v", d.settles[0], want)
	}
}

// An in-flight claim belongs to another request: a failure must not
// release it.
func TestFailedInFlightCreateReleasesNothing(t *testing.T) {
	d := &fakeDedup{states: map[string]ClaimState{"a": InFlight}}
	c := &fakeCreator{fail: map[string]error{"a": errAPI}}
	if _, err := newProc(t, d, c, nil).Process(context.Background(), &Request{Signals: []Signal{sig("a")}}); err == nil {
		t.Fatal("want an error")
	}
	for _, s := range d.settles {
		if len(s) != 0 {
			t.Fatalf("settled %+v for another request's reservation", s)
		}
	}
}

func TestInFlightAlreadyExistsIsDuplicate(t *testing.T) {
	d := &fakeDedup{states: map[string]ClaimState{"a": InFlight}}
	c := &fakeCreator{exists: map[string]bool{"a": true}}
	res, err := newProc(t, d, c, nil).Process(context.Background(), &Request{Signals: []Signal{sig("a")}})
	if err != nil || res.Created() || !res.Duplicates() || !d.settles[0][0].Commit {
		t.Fatalf("res %+v err %v settles %+v", res, err, d.settles)
	}
}

func TestClaimFailureReleasesAndFails(t *testing.T) {
	redisDown := &DependencyError{Dependency: Redis, Op: "claim", Kind: KindUnavailable, Err: errors.New("refused")}
	d, c := &fakeDedup{claimErr: redisDown}, &fakeCreator{}
	_, err := newProc(t, d, c, nil).Process(context.Background(), &Request{Signals: []Signal{sig("a")}})
	if !errors.Is(err, redisDown) || len(c.created) != 0 {
		t.Fatalf("err %v, created %v", err, c.created)
	}
	if len(d.settles) != 1 || d.settles[0][0].Commit {
		t.Fatalf("want one best-effort release, got %+v", d.settles)
	}
}

// With the API known down, duplicates are still acknowledged, but a new
// fingerprint is neither reserved nor created.
func TestPeekWhileAPIDown(t *testing.T) {
	d := &fakeDedup{states: map[string]ClaimState{"dup": Duplicate}}
	c := &fakeCreator{down: true}
	p := newProc(t, d, c, nil)
	res, err := p.Process(context.Background(), &Request{Signals: []Signal{sig("dup")}})
	if err != nil || !res.Duplicates() {
		t.Fatalf("duplicate while API down: %+v %v", res, err)
	}
	_, err = p.Process(context.Background(), &Request{Signals: []Signal{sig("dup"), sig("new")}})
	var de *DependencyError
	if !errors.As(err, &de) || de.Kind != KindBreakerOpen || len(c.created) != 0 {
		t.Fatalf("new signal while API down: err %v created %v", err, c.created)
	}
	for _, cl := range d.claims {
		for _, x := range cl {
			if !x.Peek {
				t.Fatalf("claim %+v was not a peek", x)
			}
		}
	}
}

func TestRepeatsInOneBatchAreOneClaim(t *testing.T) {
	d, c := &fakeDedup{}, &fakeCreator{}
	res, err := newProc(t, d, c, nil).Process(context.Background(), &Request{Signals: []Signal{sig("a"), sig("b"), sig("a")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.claims[0]) != 2 || d.claims[0][0].Increment != 2 {
		t.Fatalf("claims %+v, want a with increment 2", d.claims[0])
	}
	if res.Outcomes[0].Status != StatusCreated || res.Outcomes[2].Status != StatusDuplicate || !res.Outcomes[2].Duplicate {
		t.Fatalf("outcomes %+v", res.Outcomes)
	}
}

func TestDeadlineBecomes504(t *testing.T) {
	d, c := &fakeDedup{}, &fakeCreator{}
	ctx, cancel := context.WithCancel(context.Background())
	hooks := Hooks{BeforeCreate: func(context.Context, HookPoint, []string) {
		cancel()
		c.fail = map[string]error{"a": &DependencyError{Dependency: Kubernetes, Op: "create", Kind: KindTimeout, Err: context.Canceled}}
	}}
	_, err := newProc(t, d, c, hooks).Process(ctx, &Request{Signals: []Signal{sig("a")}})
	var dl *DeadlineError
	if !errors.As(err, &dl) {
		t.Fatalf("err = %v, want a DeadlineError", err)
	}
}

func TestHooksRunInOrder(t *testing.T) {
	var got []HookPoint
	hooks := Hooks{}
	for _, p := range HookPoints {
		hooks[p] = func(_ context.Context, p HookPoint, fps []string) {
			if !reflect.DeepEqual(fps, []string{"a"}) {
				t.Errorf("hook %s got %v", p, fps)
			}
			got = append(got, p)
		}
	}
	if _, err := newProc(t, &fakeDedup{}, &fakeCreator{}, hooks).Process(context.Background(), &Request{Signals: []Signal{sig("a")}}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, HookPoints) {
		t.Fatalf("hooks ran %v, want %v", got, HookPoints)
	}
}

func TestResolvedUsesStoredBucket(t *testing.T) {
	d := &fakeDedup{lookups: map[string]LookupResult{"a": {Found: true, Bucket: 7, Count: 3}}}
	c := &fakeCreator{}
	s := sig("a")
	s.Resolved = true
	res, err := newProc(t, d, c, nil).Process(context.Background(), &Request{Signals: []Signal{s}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.claims) != 0 || len(c.created) != 0 {
		t.Fatal("a resolved alert claimed or created")
	}
	if c.resolved[0] != ResourceName("a", 7) || res.Outcomes[0].Status != StatusResolved || res.Created() || res.Duplicates() {
		t.Fatalf("resolved %v outcomes %+v", c.resolved, res.Outcomes)
	}
}

func TestResourceNameIsDNS1123AndBounded(t *testing.T) {
	n := ResourceName("89a240f103e2151705deb037f2e435389559907b949c7b5844a385d563218e41", 5_933_333)
	if n != "rr-89a240f103e2151705deb037f2e43538-3j66t" || len(n) > 63 {
		t.Fatalf("ResourceName = %q", n)
	}
}

// Redis lost after the claim: nothing is created, the reservations are
// released (best effort) and the request fails.
func TestRenewFailureStopsBeforeCreate(t *testing.T) {
	redisDown := &DependencyError{Dependency: Redis, Op: "renew", Kind: KindUnavailable, Err: errors.New("refused")}
	d := &fakeDedup{renewErr: redisDown, states: map[string]ClaimState{"b": InFlight}}
	c := &fakeCreator{}
	_, err := newProc(t, d, c, nil).Process(context.Background(), &Request{Signals: []Signal{sig("a"), sig("b")}})
	if !errors.Is(err, redisDown) || len(c.created) != 0 {
		t.Fatalf("err %v created %v", err, c.created)
	}
	if !reflect.DeepEqual(d.renews, [][]string{{"a"}}) {
		t.Fatalf("renewed %v, want only this request's reservation", d.renews)
	}
}
