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

func TestClaimReserveCommitDuplicate(t *testing.T) {
	_, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	ctx := context.Background()
	r := claim(t, s, "a", pipeline.Claim{Fingerprint: fp, Bucket: 42, Increment: 1})
	if r.State != pipeline.Reserved || r.Count != 1 || r.Bucket != 42 || !r.FirstSeen.Equal(t0) {
		t.Fatalf("first claim: %+v", r)
	}
	if ttl := rdb.PTTL(ctx, s.Key(fp)).Val(); ttl <= 0 || ttl > 2*time.Second {
		t.Fatalf("reservation TTL %s, want the 2s lease", ttl)
	}
	// A concurrent request sees the reservation and learns its bucket.
	r = claim(t, s, "b", pipeline.Claim{Fingerprint: fp, Bucket: 43, Increment: 1})
	if r.State != pipeline.InFlight || r.Count != 2 || r.Bucket != 42 {
		t.Fatalf("claim during reservation: %+v", r)
	}
	// A peek never counts an uncommitted fingerprint.
	r = claim(t, s, "c", pipeline.Claim{Fingerprint: fp, Bucket: 42, Increment: 1, Peek: true})
	if r.State != pipeline.Absent {
		t.Fatalf("peek during reservation: %+v", r)
	}
	if err := s.Settle(ctx, "a", t0, []pipeline.Settlement{{Fingerprint: fp, Bucket: 42, Commit: true, Count: 1}}); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, s.Key(fp)).Val(); ttl <= 2*time.Second {
		t.Fatalf("committed TTL %s, want the 1m window", ttl)
	}
	r = claim(t, s, "d", pipeline.Claim{Fingerprint: fp, Bucket: 99, Increment: 3, Peek: true})
	if r.State != pipeline.Duplicate || r.Count != 5 || r.Bucket != 42 {
		t.Fatalf("duplicate after commit: %+v", r)
	}
	if h := rdb.HGetAll(ctx, s.Key(fp)).Val(); h["t"] != "" || h["s"] != "c" {
		t.Fatalf("committed hash still holds a token or state: %v", h)
	}
	l, err := s.Lookup(ctx, []string{fp, "0000"})
	if err != nil || !l[0].Found || l[0].Bucket != 42 || l[0].Count != 5 || l[1].Found {
		t.Fatalf("lookup: %+v %v", l, err)
	}
}

func TestReleaseOnlyByItsToken(t *testing.T) {
	_, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	ctx := context.Background()
	claim(t, s, "a", pipeline.Claim{Fingerprint: fp, Bucket: 1, Increment: 1})
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
	claim(t, s, "a", pipeline.Claim{Fingerprint: fp, Bucket: 1, Increment: 1})
	deadline := time.Now().Add(5 * time.Second)
	for rdb.Exists(context.Background(), s.Key(fp)).Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("reservation outlived its 2s lease by 3s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A commit after the reservation vanished (lease expired, Redis restarted)
// records the fingerprint, because the resource exists.
func TestCommitRecreatesVanishedReservation(t *testing.T) {
	_, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	ctx := context.Background()
	if err := s.Settle(ctx, "a", t0, []pipeline.Settlement{{Fingerprint: fp, Bucket: 7, Commit: true, Count: 11}}); err != nil {
		t.Fatal(err)
	}
	r := claim(t, s, "b", pipeline.Claim{Fingerprint: fp, Bucket: 8, Increment: 1})
	if r.State != pipeline.Duplicate || r.Count != 12 || r.Bucket != 7 {
		t.Fatalf("after recreating commit: %+v", r)
	}
}

func TestBatchIsOneRoundTrip(t *testing.T) {
	_, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	ctx := context.Background()
	// Warm up: the connection handshake and the first load of the script
	// (NOSCRIPT, then EVAL) happen once per connection and script cache.
	claim(t, s, "w", pipeline.Claim{Fingerprint: fp, Bucket: 1, Increment: 1})
	var calls int
	rdb.AddHook(countHook{&calls})
	claims := make([]pipeline.Claim, 20)
	for i := range claims {
		claims[i] = pipeline.Claim{Fingerprint: fp[:60] + string(rune('a'+i%26)) + "000", Bucket: 1, Increment: 1}
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
	claim(t, s, "a", pipeline.Claim{Fingerprint: fp, Bucket: 1, Increment: 1})
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if r := claim(t, s, "b", pipeline.Claim{Fingerprint: fp, Bucket: 1, Increment: 1}); r.State != pipeline.InFlight {
		t.Fatalf("claim after SCRIPT FLUSH: %+v", r)
	}
}

func TestOOMIsClassified(t *testing.T) {
	_, rdb := startRedis(t, "")
	s := newStore(t, rdb)
	ctx := context.Background()
	claim(t, s, "a", pipeline.Claim{Fingerprint: fp, Bucket: 1, Increment: 1})
	if err := rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Claim(ctx, "b", t0, []pipeline.Claim{{Fingerprint: fp[:63] + "0", Bucket: 1, Increment: 1}})
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
	_, err := s.Claim(context.Background(), "a", t0, []pipeline.Claim{{Fingerprint: fp, Bucket: 1, Increment: 1}})
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
			cs = append(cs, pipeline.Claim{Fingerprint: fp, Bucket: 5_985_800, Increment: 1})
			st = append(st, pipeline.Settlement{Fingerprint: fp, Bucket: 5_985_800, Commit: true, Count: 1})
		}
		if _, err := s.Claim(ctx, "tok", t0, cs); err != nil {
			t.Fatal(err)
		}
		if err := s.Settle(ctx, "tok", t0, st); err != nil {
			t.Fatal(err)
		}
	}
	// A duplicate later raises the count and last-seen: measure that shape.
	if _, err := s.Claim(ctx, "tok2", t0.Add(time.Minute), []pipeline.Claim{{Fingerprint: fmt.Sprintf("%064x", 7), Bucket: 1, Increment: 1}}); err != nil {
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
