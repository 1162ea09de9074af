package dedup

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertgate/gateway/internal/breaker"
	"github.com/alertgate/gateway/internal/localdeps"
	"github.com/alertgate/gateway/internal/pipeline"
)

// These tests run the scripts on a real redis-server: the atomicity and
// the OOM behaviour are properties of Redis, not of a fake.

func startRedis(t *testing.T, maxmemory string) (*localdeps.RedisServer, *redis.Client) {
	t.Helper()
	srv, err := localdeps.StartRedis(context.Background(), localdeps.RedisOptions{MaxMemory: maxmemory})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, ContextTimeoutEnabled: true, DialerRetries: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	return srv, rdb
}

const fp = "89a240f103e2151705deb037f2e435389559907b949c7b5844a385d563218e41"

var t0 = time.Unix(1_780_000_000, 0)

func newStore(t *testing.T, rdb *redis.Client) *Store {
	t.Helper()
	s, err := New(rdb, Options{Window: time.Minute, Lease: 2 * time.Second, Breaker: breaker.New(breaker.Options{Failures: 1000})})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claim(t *testing.T, s *Store, token string, c pipeline.Claim) pipeline.ClaimResult {
	t.Helper()
	r, err := s.Claim(context.Background(), token, t0, []pipeline.Claim{c})
	if err != nil {
		t.Fatal(err)
	}
	return r[0]
}

// view is what the gateway's watch cache knows of the fingerprint.
func view(open, next int64) pipeline.EpisodeView { return pipeline.EpisodeView{Open: open, Next: next} }

func commit(t *testing.T, s *Store, token string, seq, count int64) {
	t.Helper()
	if err := s.Settle(context.Background(), token, t0, []pipeline.Settlement{{Fingerprint: fp, Seq: seq, Commit: true, Count: count}}); err != nil {
		t.Fatal(err)
	}
}

func TestClaimReserveCommitAttach(t *testing.T) {
	_, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	ctx := context.Background()
	r := claim(t, s, "a", pipeline.Claim{Fingerprint: fp, Increment: 1, View: view(0, 1)})
	if r.State != pipeline.Reserved || r.Count != 1 || r.Seq != 1 || !r.FirstSeen.Equal(t0) {
		t.Fatalf("first claim: %+v", r)
	}
	if ttl := rdb.PTTL(ctx, s.Key(fp)).Val(); ttl <= 0 || ttl > 2*time.Second {
		t.Fatalf("reservation TTL %s, want the 2s lease", ttl)
	}
	// A concurrent request sees the reservation of an episode its view does
	// not know yet, and opens the same number.
	r = claim(t, s, "b", pipeline.Claim{Fingerprint: fp, Increment: 1, View: view(0, 1)})
	if r.State != pipeline.InFlight || r.Count != 2 || r.Seq != 1 {
		t.Fatalf("claim during reservation: %+v", r)
	}
	// A peek never reserves, nor follows a reservation.
	r = claim(t, s, "c", pipeline.Claim{Fingerprint: fp, Increment: 1, Peek: true, View: view(0, 1)})
	if r.State != pipeline.Absent {
		t.Fatalf("peek during reservation: %+v", r)
	}
	commit(t, s, "a", 1, 1)
	if ttl := rdb.PTTL(ctx, s.Key(fp)).Val(); ttl <= 2*time.Second {
		t.Fatalf("committed TTL %s, want the 1m window", ttl)
	}
	// The view now knows episode 1 is open: attach, even as a peek.
	r = claim(t, s, "d", pipeline.Claim{Fingerprint: fp, Increment: 3, Peek: true, View: view(1, 2)})
	if r.State != pipeline.Attached || r.Count != 5 || r.Seq != 1 {
		t.Fatalf("attach after commit: %+v", r)
	}
	h := rdb.HGetAll(ctx, s.Key(fp)).Val()
	if h["t"] != "" || h["s"] != "c" || h["q"] != "1" {
		t.Fatalf("committed hash: %v", h)
	}
	if w, _ := strconv.ParseInt(h["w"], 10, 64); w < time.Now().Add(-time.Minute).Unix() {
		t.Fatalf("write time %q is not Redis' clock", h["w"])
	}
	l, err := s.Lookup(ctx, []string{fp, "0000"})
	if err != nil || l[0].State != pipeline.CommittedRecord || l[0].Seq != 1 || l[0].Count != 5 || l[1].State != pipeline.NoRecord {
		t.Fatalf("lookup: %+v %v", l, err)
	}
}

// The record is trusted only where the gateway's view agrees with it: an
// episode the view knows has ended never absorbs an occurrence.
func TestRecordOfAnEndedEpisodeIsNeverTrusted(t *testing.T) {
	_, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	claim(t, s, "a", pipeline.Claim{Fingerprint: fp, Increment: 1, View: view(0, 1)})
	commit(t, s, "a", 1, 1)
	// Episode 1 ended (a controller completed it): the next occurrence
	// reserves episode 2.
	r := claim(t, s, "b", pipeline.Claim{Fingerprint: fp, Increment: 1, View: view(0, 2)})
	if r.State != pipeline.Reserved || r.Seq != 2 || r.Count != 1 {
		t.Fatalf("claim after the episode ended: %+v", r)
	}
	commit(t, s, "b", 2, 1)
	// Redis names episode 2, the view knows episode 3 is open (opened by a
	// replica whose commit was lost): adopt it, continuing its count.
	r = claim(t, s, "c", pipeline.Claim{Fingerprint: fp, Increment: 1, View: pipeline.EpisodeView{Open: 3, Next: 4, Count: 9}})
	if r.State != pipeline.Attached || r.Seq != 3 || r.Count != 10 {
		t.Fatalf("claim while another episode is open: %+v", r)
	}
}

// A record naming an episode the view has not seen (the watch lags, or the
// episode ended before this gateway started) is verified, not trusted:
// nothing is written until the caller claims again with the API's view.
func TestRecordAheadOfTheViewIsVerified(t *testing.T) {
	_, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	claim(t, s, "a", pipeline.Claim{Fingerprint: fp, Increment: 1, View: view(0, 3)})
	commit(t, s, "a", 3, 4)
	r := claim(t, s, "b", pipeline.Claim{Fingerprint: fp, Increment: 1, View: view(0, 2)})
	if r.State != pipeline.Verify || r.Seq != 3 {
		t.Fatalf("claim with a lagging view: %+v", r)
	}
	if n := rdb.HGet(context.Background(), s.Key(fp), "n").Val(); n != "4" {
		t.Fatalf("a verify wrote the count: %s", n)
	}
	// The API says episode 3 does not exist (deleted): open it anew.
	auth := view(0, 3)
	auth.Authoritative = true
	r = claim(t, s, "b", pipeline.Claim{Fingerprint: fp, Increment: 1, View: auth})
	if r.State != pipeline.Reserved || r.Seq != 3 || r.Count != 1 {
		t.Fatalf("claim with the API's view: %+v", r)
	}
}

// Defect 1 of the time-grid design, at the store: a settlement changes
// only the reservation of the token that holds it, never another
// request's, never an absent key.
func TestSettleNeverAdoptsAnotherReservation(t *testing.T) {
	_, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	ctx := context.Background()
	claim(t, s, "A", pipeline.Claim{Fingerprint: fp, Increment: 1, View: view(0, 1)})
	if err := s.Settle(ctx, "A", t0, []pipeline.Settlement{{Fingerprint: fp}}); err != nil {
		t.Fatal(err)
	}
	claim(t, s, "C", pipeline.Claim{Fingerprint: fp, Increment: 1, View: view(0, 1)})
	// A, late, commits what it thinks it holds; B, a follower, too.
	commit(t, s, "A", 1, 5)
	commit(t, s, "B", 1, 5)
	if h := rdb.HGetAll(ctx, s.Key(fp)).Val(); h["s"] != "r" || h["t"] != "C" || h["n"] != "1" {
		t.Fatalf("another token's commit changed C's reservation: %v", h)
	}
	if err := s.Settle(ctx, "C", t0, []pipeline.Settlement{{Fingerprint: fp}}); err != nil {
		t.Fatal(err)
	}
	commit(t, s, "A", 1, 5)
	if rdb.Exists(ctx, s.Key(fp)).Val() != 0 {
		t.Fatal("a commit wrote an absent key")
	}
}

func TestReleaseOnlyByItsToken(t *testing.T) {
	_, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	ctx := context.Background()
	claim(t, s, "a", pipeline.Claim{Fingerprint: fp, Increment: 1, View: view(0, 1)})
	if err := s.Settle(ctx, "other", t0, []pipeline.Settlement{{Fingerprint: fp}}); err != nil {
		t.Fatal(err)
	}
	if rdb.Exists(ctx, s.Key(fp)).Val() != 1 {
		t.Fatal("a release with another token removed the reservation")
	}
	if err := s.Settle(ctx, "a", t0, []pipeline.Settlement{{Fingerprint: fp}}); err != nil {
		t.Fatal(err)
	}
	if rdb.Exists(ctx, s.Key(fp)).Val() != 0 {
		t.Fatal("the holder's release left the reservation")
	}
}

func TestLeaseExpires(t *testing.T) {
	_, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	claim(t, s, "a", pipeline.Claim{Fingerprint: fp, Increment: 1, View: view(0, 1)})
	deadline := time.Now().Add(5 * time.Second)
	for rdb.Exists(context.Background(), s.Key(fp)).Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("reservation outlived its 2s lease by 3s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestInvalidateDeletesOnlyARecordOfTheEndedEpisode(t *testing.T) {
	_, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	ctx := context.Background()
	claim(t, s, "a", pipeline.Claim{Fingerprint: fp, Increment: 1, View: view(0, 2)})
	// A reservation is never invalidated: its holder moves on by itself.
	if n, err := s.Invalidate(ctx, []Ended{{fp, 2}}); err != nil || n != 0 {
		t.Fatalf("invalidate a reservation: %d %v", n, err)
	}
	commit(t, s, "a", 2, 1)
	if n, err := s.Invalidate(ctx, []Ended{{fp, 1}}); err != nil || n != 0 {
		t.Fatalf("invalidate another episode: %d %v", n, err)
	}
	if n, err := s.Invalidate(ctx, []Ended{{fp, 2}}); err != nil || n != 1 || rdb.Exists(ctx, s.Key(fp)).Val() != 0 {
		t.Fatalf("invalidate the episode: %d %v", n, err)
	}
}

// The invalidator retries while Redis is away, and checks again a second
// later for a commit that raced the end.
func TestInvalidatorRetriesAndChecksAgain(t *testing.T) {
	srv, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v := s.NewInvalidator()
	deleted := make(chan int, 10)
	v.OnDeleted = func(n int) { deleted <- n }
	done := make(chan struct{})
	go func() { defer close(done); v.Run(ctx) }()
	defer func() { cancel(); <-done }()

	srv.Kill()
	v.Enqueue(fp, 1)
	time.Sleep(300 * time.Millisecond)
	if v.Pending() != 1 {
		t.Fatalf("pending %d while Redis is down, want 1", v.Pending())
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The record is written (a late commit) after the episode ended.
	claim(t, s, "a", pipeline.Claim{Fingerprint: fp, Increment: 1, View: view(0, 1)})
	commit(t, s, "a", 1, 1)
	select {
	case n := <-deleted:
		if n != 1 {
			t.Fatalf("deleted %d", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the record of the ended episode was not deleted within 5 s of Redis' return")
	}
	deadline := time.Now().Add(5 * time.Second)
	for v.Pending() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the invalidation never finished")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBatchIsOneRoundTrip(t *testing.T) {
	_, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	ctx := context.Background()
	// Warm up: the connection handshake and the first load of the script
	// (NOSCRIPT, then EVAL) happen once per connection and script cache.
	claim(t, s, "w", pipeline.Claim{Fingerprint: fp, Increment: 1, View: view(0, 1)})
	var calls int
	rdb.AddHook(countHook{&calls})
	claims := make([]pipeline.Claim, 20)
	for i := range claims {
		claims[i] = pipeline.Claim{Fingerprint: fp[:60] + string(rune('a'+i%26)) + "000", Increment: 1, View: view(0, 1)}
	}
	if _, err := s.Claim(ctx, "a", t0, claims); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("20 claims took %d round trips, want 1", calls)
	}
}

// After a restart Redis has lost its script cache: the store must reload
// the scripts, not fail.
func TestScriptCacheLoss(t *testing.T) {
	_, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	ctx := context.Background()
	claim(t, s, "a", pipeline.Claim{Fingerprint: fp, Increment: 1, View: view(0, 1)})
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if r := claim(t, s, "b", pipeline.Claim{Fingerprint: fp, Increment: 1, View: view(0, 1)}); r.State != pipeline.InFlight {
		t.Fatalf("claim after SCRIPT FLUSH: %+v", r)
	}
}

func TestOOMIsClassified(t *testing.T) {
	_, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	ctx := context.Background()
	claim(t, s, "a", pipeline.Claim{Fingerprint: fp, Increment: 1, View: view(0, 1)})
	if err := rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Claim(ctx, "b", t0, []pipeline.Claim{{Fingerprint: fp[:63] + "0", Increment: 1, View: view(0, 1)}})
	var de *pipeline.DependencyError
	if !errors.As(err, &de) || de.Kind != pipeline.KindOOM || de.Dependency != pipeline.Redis {
		t.Fatalf("claim on a full Redis: %v, want an OOM DependencyError", err)
	}
	// Releasing frees memory and must work on a full Redis.
	if err := s.Settle(ctx, "a", t0, []pipeline.Settlement{{Fingerprint: fp}}); err != nil {
		t.Fatalf("release on a full Redis: %v", err)
	}
}

func TestUnreachableAndTimeout(t *testing.T) {
	srv, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	srv.Kill()
	_, err := s.Claim(context.Background(), "a", t0, []pipeline.Claim{{Fingerprint: fp, Increment: 1, View: view(0, 1)}})
	var de *pipeline.DependencyError
	if !errors.As(err, &de) || de.Kind != pipeline.KindUnavailable {
		t.Fatalf("claim on a stopped Redis: %v", err)
	}
}

type countHook struct{ n *int }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { *h.n++; return next(ctx, cmd) }
}
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { *h.n++; return next(ctx, cmds) }
}

// TestMemoryPerFingerprint measures what one committed fingerprint costs
// Redis (MEMORY USAGE of its key, and used_memory growth over 10,000 of
// them); the goal is at most 256 bytes. The figure is in the README.
func TestMemoryPerFingerprint(t *testing.T) {
	_, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	ctx := context.Background()
	used := func() int64 {
		info := rdb.Info(ctx, "memory").Val()
		for _, l := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		t.Fatal("no used_memory")
		return 0
	}
	const n = 10000
	before := used()
	for i := 0; i < n; i += 500 {
		var cs []pipeline.Claim
		var st []pipeline.Settlement
		for j := i; j < i+500; j++ {
			fp := fmt.Sprintf("%064x", j)
			cs = append(cs, pipeline.Claim{Fingerprint: fp, Increment: 1, View: view(0, 1)})
			st = append(st, pipeline.Settlement{Fingerprint: fp, Seq: 1, Commit: true, Count: 1})
		}
		if _, err := s.Claim(ctx, "tok", t0, cs); err != nil {
			t.Fatal(err)
		}
		if err := s.Settle(ctx, "tok", t0, st); err != nil {
			t.Fatal(err)
		}
	}
	// A duplicate later raises the count and last-seen: measure that shape.
	if _, err := s.Claim(ctx, "tok2", t0.Add(time.Minute), []pipeline.Claim{{Fingerprint: fmt.Sprintf("%064x", 7), Increment: 1, View: view(1, 2)}}); err != nil {
		t.Fatal(err)
	}
	perKey := rdb.MemoryUsage(ctx, s.Key(fmt.Sprintf("%064x", 7))).Val()
	growth := (used() - before) / n
	t.Logf("MEMORY USAGE of one committed fingerprint: %d bytes; used_memory growth per fingerprint over %d: %d bytes", perKey, n, growth)
	// The goal is stated for MEMORY USAGE; used_memory also counts the
	// main and expires dictionaries' entries and their growth slack.
	if perKey > 256 {
		t.Errorf("a fingerprint costs %d bytes (MEMORY USAGE), over the 256-byte goal", perKey)
	}
}
