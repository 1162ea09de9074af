package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

// The processor's control flow with fakes; the dedup scripts are tested on
// a real redis-server (internal/dedup), and the whole path end to end on
// real servers (chaos).

// fakeDedup answers claims from a script of results per fingerprint and
// records every call.
type fakeDedup struct {
	mu       sync.Mutex
	answers  map[string][]ClaimResult // consumed in order; default Reserved(View.Next)
	claimErr error
	claims   [][]Claim
	settles  [][]Settlement
	records  map[string]Record
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
		switch a := f.answers[c.Fingerprint]; {
		case len(a) > 0:
			out[i] = a[0]
			f.answers[c.Fingerprint] = a[1:]
		case c.View.Open > 0:
			out[i] = ClaimResult{State: Attached, Seq: c.View.Open, Count: c.View.Count + c.Increment}
		case c.Peek:
			out[i] = ClaimResult{State: Absent}
		default:
			out[i] = ClaimResult{State: Reserved, Seq: max(c.View.Next, 1), Count: c.Increment}
		}
	}
	return out, nil
}

func (f *fakeDedup) Settle(_ context.Context, _ string, _ time.Time, s []Settlement) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settles = append(f.settles, s)
	return nil
}

func (f *fakeDedup) Lookup(_ context.Context, fps []string) ([]Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Record, len(fps))
	for i, fp := range fps {
		out[i] = f.records[fp]
	}
	return out, nil
}

type fakeCreator struct {
	// episodes learns of what Open creates, as the watch cache does from
	// the real creator.
	episodes  *fakeEpisodes
	mu        sync.Mutex
	down      bool
	fail      map[string]error // Open, by fingerprint
	exists    map[string]int64 // fingerprint → open episode another request opened
	views     map[string]EpisodeView
	listErr   error
	opened    []string // names
	lists     []string
	members   []string // fingerprints whose members were updated
	memberErr error
}

func (f *fakeCreator) Open(_ context.Context, s *Signal, _ []Member, seq int64) (OpenResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[s.Fingerprint]; err != nil {
		return OpenResult{}, err
	}
	if e := f.exists[s.Fingerprint]; e >= seq {
		return OpenResult{Seq: e, Name: f.Name(s.Fingerprint, e), Count: 7, NeedsMembers: true}, nil
	}
	f.opened = append(f.opened, f.Name(s.Fingerprint, seq))
	if f.episodes != nil {
		f.episodes.set(s.Fingerprint, EpisodeView{Open: seq, Next: seq + 1})
	}
	return OpenResult{Seq: seq, Name: f.Name(s.Fingerprint, seq), Created: true}, nil
}

func (f *fakeCreator) Episodes(_ context.Context, fp string) (EpisodeView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists = append(f.lists, fp)
	if f.listErr != nil {
		return EpisodeView{}, f.listErr
	}
	v := f.views[fp]
	v.Authoritative = true
	if v.Next == 0 {
		v.Next = 1
	}
	return v, nil
}

func (f *fakeCreator) UpdateMembers(_ context.Context, fp string, _ int64, _ []Member, _ time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = append(f.members, fp)
	return f.memberErr == nil, f.memberErr
}

func (f *fakeCreator) Available() bool                  { return !f.down }
func (f *fakeCreator) Namespace() string                { return "ns" }
func (f *fakeCreator) Name(fp string, seq int64) string { return fmt.Sprintf("rr-%s-%d", fp, seq) }

type fakeEpisodes struct {
	mu        sync.Mutex
	views     map[string]EpisodeView
	unsynced  bool
	unhealthy bool
	needs     bool
}

func (f *fakeEpisodes) View(fp string) EpisodeView {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.views[fp]
	if v.Next == 0 {
		v.Next = 1
	}
	return v
}

func (f *fakeEpisodes) set(fp string, v EpisodeView) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.views == nil {
		f.views = map[string]EpisodeView{}
	}
	f.views[fp] = v
}
func (f *fakeEpisodes) Synced() bool                              { return !f.unsynced }
func (f *fakeEpisodes) Healthy() bool                             { return !f.unhealthy }
func (f *fakeEpisodes) NeedsMembers(string, int64, []Member) bool { return f.needs }

var (
	errAPI = &DependencyError{Dependency: Kubernetes, Op: "create", Kind: KindUnavailable, Err: errors.New("refused")}
	t0     = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
)

func sig(fp string) Signal {
	return Signal{Fingerprint: fp, FiringTime: t0, ReceivedTime: t0, StartsAt: t0, Member: "0123456789abcdef", Source: SourcePrometheus}
}

type fixture struct {
	d *fakeDedup
	c *fakeCreator
	e *fakeEpisodes
	p *Processor
}

func newFixture(t *testing.T, hooks Hooks) *fixture {
	t.Helper()
	f := &fixture{d: &fakeDedup{answers: map[string][]ClaimResult{}}, e: &fakeEpisodes{}}
	f.c = &fakeCreator{episodes: f.e}
	p, err := NewProcessor(f.d, f.c, f.e, nil, Options{Hooks: hooks, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	return f
}

func (f *fixture) process(t *testing.T, sigs ...Signal) (*Result, error) {
	t.Helper()
	res, err := f.p.Process(context.Background(), &Request{Source: SourcePrometheus, Signals: sigs})
	f.p.Wait()
	return res, err
}

func TestNewEpisodeIsOpenedThenCommitted(t *testing.T) {
	f := newFixture(t, nil)
	f.e.views = map[string]EpisodeView{"b": {Next: 4}}
	res, err := f.process(t, sig("a"), sig("b"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(f.c.opened) // opened in parallel
	if want := []string{"rr-a-1", "rr-b-4"}; !reflect.DeepEqual(f.c.opened, want) {
		t.Errorf("opened %v, want %v", f.c.opened, want)
	}
	for i, o := range res.Outcomes {
		if o.Status != StatusCreated || o.Duplicate {
			t.Errorf("outcome %d: %+v", i, o)
		}
	}
	want := [][]Settlement{{{Fingerprint: "a", Seq: 1, Commit: true, Count: 1}, {Fingerprint: "b", Seq: 4, Commit: true, Count: 1}}}
	if !reflect.DeepEqual(f.d.settles, want) {
		t.Errorf("settles %+v, want %+v", f.d.settles, want)
	}
}

func TestAttachedCallsNoAPI(t *testing.T) {
	f := newFixture(t, nil)
	f.e.views = map[string]EpisodeView{"a": {Open: 3, Next: 4, Count: 9}}
	res, err := f.process(t, sig("a"))
	if err != nil {
		t.Fatal(err)
	}
	o := res.Outcomes[0]
	if o.Status != StatusDuplicate || o.Name != "rr-a-3" || o.OccurrenceCount != 10 {
		t.Errorf("outcome %+v, want a duplicate of rr-a-3 counted 10", o)
	}
	if len(f.c.opened)+len(f.c.lists)+len(f.c.members) != 0 || len(f.d.settles) != 0 {
		t.Errorf("API calls %v %v %v or settles %v for an attached occurrence", f.c.opened, f.c.lists, f.c.members, f.d.settles)
	}
}

func TestFailedOpenReleasesAndFailsTheBatch(t *testing.T) {
	f := newFixture(t, nil)
	f.c.fail = map[string]error{"b": errAPI}
	_, err := f.process(t, sig("a"), sig("b"))
	if _, ok := AsDependencyError(err); !ok {
		t.Fatalf("err %v, want a DependencyError", err)
	}
	want := [][]Settlement{{{Fingerprint: "a", Seq: 1, Commit: true, Count: 1}, {Fingerprint: "b", Seq: 0}}}
	if !reflect.DeepEqual(f.d.settles, want) {
		t.Errorf("settles %+v, want a commit of what was opened and a release of the rest: %+v", f.d.settles, want)
	}
}

func TestInFlightOpensButSettlesNothing(t *testing.T) {
	f := newFixture(t, nil)
	f.d.answers["a"] = []ClaimResult{{State: InFlight, Seq: 2, Count: 5}}
	f.c.exists = map[string]int64{"a": 2}
	res, err := f.process(t, sig("a"))
	if err != nil {
		t.Fatal(err)
	}
	if o := res.Outcomes[0]; o.Status != StatusDuplicate || o.Name != "rr-a-2" || o.OccurrenceCount != 8 {
		t.Errorf("outcome %+v, want attached to rr-a-2, count continued from its 7", o)
	}
	if len(f.d.settles) != 0 {
		t.Errorf("settled another request's reservation: %+v", f.d.settles)
	}
	if !reflect.DeepEqual(f.c.members, []string{"a"}) {
		t.Errorf("members updated for %v, want a (the episode lacked the member)", f.c.members)
	}
}

func TestVerifyReadsTheAPIAndClaimsAgain(t *testing.T) {
	f := newFixture(t, nil)
	f.d.answers["a"] = []ClaimResult{{State: Verify, Seq: 5}}
	f.c.views = map[string]EpisodeView{"a": {Open: 5, Next: 6, Count: 2}}
	res, err := f.process(t, sig("a"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.d.claims) != 2 || !f.d.claims[1][0].View.Authoritative || f.d.claims[1][0].View.Open != 5 {
		t.Fatalf("claims %+v, want a second claim with the API's view", f.d.claims)
	}
	if o := res.Outcomes[0]; o.Status != StatusDuplicate || o.Name != "rr-a-5" {
		t.Errorf("outcome %+v", o)
	}
}

func TestUnhealthyCacheAsksTheAPI(t *testing.T) {
	f := newFixture(t, nil)
	f.e.unhealthy = true
	f.e.views = map[string]EpisodeView{"a": {Open: 1, Next: 2}}
	f.c.views = map[string]EpisodeView{"a": {Next: 2}} // episode 1 ended meanwhile
	res, err := f.process(t, sig("a"))
	if err != nil {
		t.Fatal(err)
	}
	if c := f.d.claims[0][0]; !c.View.Authoritative || c.View.Open != 0 {
		t.Errorf("claim view %+v, want the API's", c.View)
	}
	if o := res.Outcomes[0]; o.Status != StatusCreated || o.Name != "rr-a-2" {
		t.Errorf("outcome %+v, want episode 2 opened", o)
	}

	// The API cannot be read either: only attach.
	f = newFixture(t, nil)
	f.e.unhealthy = true
	f.c.listErr = errAPI
	if _, err := f.process(t, sig("a")); err == nil || !f.d.claims[0][0].Peek {
		t.Errorf("err %v, claims %+v: want a peek and a 503", err, f.d.claims)
	}
}

func TestPeekWhileTheAPIIsDown(t *testing.T) {
	f := newFixture(t, nil)
	f.c.down = true
	f.e.views = map[string]EpisodeView{"dup": {Open: 1, Next: 2}}
	if res, err := f.process(t, sig("dup")); err != nil || res.Outcomes[0].Status != StatusDuplicate {
		t.Fatalf("attached while the API is down: %+v %v", res, err)
	}
	_, err := f.process(t, sig("new"))
	de, ok := AsDependencyError(err)
	if !ok || de.Kind != KindBreakerOpen {
		t.Fatalf("err %v, want breaker open", err)
	}
	for _, cs := range f.d.claims {
		for _, c := range cs {
			if !c.Peek {
				t.Errorf("claim %+v is not a peek while the API is down", c)
			}
		}
	}
	if len(f.c.opened) != 0 {
		t.Errorf("opened %v while the API is down", f.c.opened)
	}
}

func TestNotSyncedIs503(t *testing.T) {
	f := newFixture(t, nil)
	f.e.unsynced = true
	_, err := f.process(t, sig("a"))
	if de, ok := AsDependencyError(err); !ok || de.Kind != KindNotSynced || !de.Retryable() {
		t.Fatalf("err %v, want a retryable not-synced error", err)
	}
	if len(f.d.claims) != 0 {
		t.Error("claimed before the episodes were read")
	}
}

func TestRepeatsInOneBatchAreOneClaim(t *testing.T) {
	f := newFixture(t, nil)
	res, err := f.process(t, sig("a"), sig("b"), sig("a"), sig("a"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.d.claims) != 1 || len(f.d.claims[0]) != 2 || f.d.claims[0][0].Increment != 3 {
		t.Fatalf("claims %+v, want one round trip with a counted 3", f.d.claims)
	}
	got := []Status{res.Outcomes[0].Status, res.Outcomes[2].Status, res.Outcomes[3].Status}
	if !reflect.DeepEqual(got, []Status{StatusCreated, StatusDuplicate, StatusDuplicate}) {
		t.Errorf("statuses %v", got)
	}
}

func TestDeadlineBecomes504(t *testing.T) {
	f := newFixture(t, nil)
	f.d.claimErr = &DependencyError{Dependency: Redis, Op: "claim", Kind: KindTimeout, Err: context.DeadlineExceeded}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	_, err := f.p.Process(ctx, &Request{Signals: []Signal{sig("a")}})
	var de *DeadlineError
	if !errors.As(err, &de) {
		t.Fatalf("err %v, want a DeadlineError", err)
	}
}

func TestHooksRunInOrder(t *testing.T) {
	var mu sync.Mutex
	var got []HookPoint
	h := Hooks{}
	for _, p := range HookPoints {
		h[p] = func(_ context.Context, p HookPoint, fps []string) {
			mu.Lock()
			got = append(got, p)
			mu.Unlock()
			if len(fps) != 1 || fps[0] != "a" {
				t.Errorf("%s: fingerprints %v", p, fps)
			}
		}
	}
	f := newFixture(t, h)
	if _, err := f.process(t, sig("a")); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, HookPoints) {
		t.Errorf("hooks ran %v, want %v", got, HookPoints)
	}
}

func TestRejectedSignalKeepsTheBatch(t *testing.T) {
	f := newFixture(t, nil)
	f.c.fail = map[string]error{"bad": &DependencyError{Dependency: Kubernetes, Op: "create", Kind: KindRejected, Err: errors.New("spec.x: Invalid value")}}
	a, b := sig("a"), sig("bad")
	a.Index, b.Index = 0, 1
	res, err := f.process(t, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcomes[0].Status != StatusCreated || res.Outcomes[1].Status != StatusRejected {
		t.Errorf("outcomes %+v", res.Outcomes)
	}
	if len(res.Rejected) != 1 || res.Rejected[0].Index != 1 || res.Rejected[0].Field != "alerts[1]" || res.Rejected[0].Reason == "" {
		t.Errorf("rejected %+v", res.Rejected)
	}
}

func TestMemberChangeIsWrittenBeforeTheAnswer(t *testing.T) {
	f := newFixture(t, nil)
	f.e.views = map[string]EpisodeView{"a": {Open: 1, Next: 2, Resolved: true}}
	f.e.needs = true
	if _, err := f.process(t, sig("a")); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.c.members, []string{"a"}) {
		t.Errorf("members updated for %v, want a", f.c.members)
	}
	f.c.memberErr = errAPI
	if _, err := f.process(t, sig("a")); err == nil {
		t.Error("answered although the member change could not be written")
	}
}

func TestResolvedWhileItsFiringIsInFlightIs503(t *testing.T) {
	f := newFixture(t, nil)
	f.d.records = map[string]Record{"a": {State: ReservedRecord, Seq: 1}}
	s := sig("a")
	s.Resolved, s.ResolvedAt = true, t0.Add(time.Minute)
	_, err := f.process(t, s)
	if de, ok := AsDependencyError(err); !ok || de.Kind != KindInFlight || !de.Retryable() {
		t.Fatalf("err %v, want a retryable in-flight error", err)
	}
}

func TestResolvedUpdatesTheOpenEpisode(t *testing.T) {
	f := newFixture(t, nil)
	f.e.views = map[string]EpisodeView{"a": {Open: 2, Next: 3}}
	s := sig("a")
	s.Resolved, s.ResolvedAt = true, t0.Add(time.Minute)
	res, err := f.process(t, s, sig("none"))
	if err != nil {
		t.Fatal(err)
	}
	if o := res.Outcomes[0]; o.Status != StatusResolved || o.Name != "rr-a-2" {
		t.Errorf("outcome %+v", o)
	}
	if !reflect.DeepEqual(f.c.members, []string{"a"}) {
		t.Errorf("members updated for %v", f.c.members)
	}
}

func TestLeaseFenceStopsAPausedRequest(t *testing.T) {
	h := Hooks{AfterReserve: func(context.Context, HookPoint, []string) { time.Sleep(60 * time.Millisecond) }}
	f := newFixture(t, h)
	f.p.opts.Lease = fenceMargin + 50*time.Millisecond
	_, err := f.process(t, sig("a"))
	if err == nil || len(f.c.opened) != 0 {
		t.Fatalf("err %v, opened %v: a request that outlived its lease must not create", err, f.c.opened)
	}
	if len(f.d.settles) != 1 || f.d.settles[0][0].Commit {
		t.Errorf("settles %+v, want a release", f.d.settles)
	}
}

// A controller ended the episode between the open and the commit: the
// commit becomes a release, so that Redis never names an ended episode.
func TestCommitOfAnEndedEpisodeReleases(t *testing.T) {
	h := Hooks{BeforeCommit: func(context.Context, HookPoint, []string) {}}
	f := newFixture(t, h)
	f.p.opts.Hooks[BeforeCommit] = func(context.Context, HookPoint, []string) { f.e.set("a", EpisodeView{Next: 2}) }
	if _, err := f.process(t, sig("a")); err != nil {
		t.Fatal(err)
	}
	want := [][]Settlement{{{Fingerprint: "a"}}}
	if !reflect.DeepEqual(f.d.settles, want) {
		t.Errorf("settles %+v, want a release: %+v", f.d.settles, want)
	}
}
