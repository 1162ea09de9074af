// Package dedup is the gateway's deduplication store in Redis: the fast
// path from a fingerprint to its open episode and occurrence count. One
// atomic script and one round trip per batch attach occurrences or reserve
// opening an episode; one more, after the answer, settles the reservations.
package dedup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertgate/gateway/internal/breaker"
	"github.com/alertgate/gateway/internal/pipeline"
)

// Defaults of Options.
const (
	DefaultKeyPrefix = "alertgate:fp:"
	DefaultWindow    = 5 * time.Minute
	DefaultLease     = 20 * time.Second
	DefaultTimeout   = time.Second
	// MaxLease bounds the lease: a reservation whose holder vanished blocks
	// nothing (others open by the same name), but it is a record that
	// outlives its request.
	MaxLease = 30 * time.Second
)

// Options configure a Store.
type Options struct {
	// KeyPrefix starts every key. Default: "alertgate:fp:".
	KeyPrefix string
	// Window is how long a committed record lives after the last
	// occurrence of its fingerprint. Default: 5m.
	Window time.Duration
	// Lease bounds a reservation whose holder never settles it (crash,
	// Redis unreachable). It must exceed the request deadline so a live
	// request never loses its lease. Default: 20s; at most MaxLease.
	Lease time.Duration
	// Timeout bounds each round trip. Default: 1s.
	Timeout time.Duration
	// Breaker guards Redis. Default: breaker.New with Name "redis".
	Breaker *breaker.Breaker
}

func (o *Options) setDefaults() {
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Breaker == nil {
		o.Breaker = breaker.New(breaker.Options{Name: string(pipeline.Redis)})
	}
}

// ValidLease checks a lease against MaxLease.
func ValidLease(lease time.Duration) error {
	if lease > MaxLease {
		return fmt.Errorf("lease %s exceeds %s", lease, MaxLease)
	}
	return nil
}

// Store implements pipeline.Deduper on Redis.
type Store struct {
	rdb  redis.UniversalClient
	opts Options
	// leaseMs and windowMs are script arguments boxed once, not once per
	// fingerprint.
	leaseMs, windowMs any
}

var _ pipeline.Deduper = (*Store)(nil)

// New returns a Store using rdb.
func New(rdb redis.UniversalClient, opts Options) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("dedup: nil redis client")
	}
	opts.setDefaults()
	if err := ValidLease(opts.Lease); err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	return &Store{rdb: rdb, opts: opts, leaseMs: opts.Lease.Milliseconds(), windowMs: opts.Window.Milliseconds()}, nil
}

// Key returns the Redis key of a fingerprint.
func (s *Store) Key(fingerprint string) string { return s.opts.KeyPrefix + fingerprint }

// Claim implements pipeline.Deduper.
func (s *Store) Claim(ctx context.Context, token string, now time.Time, claims []pipeline.Claim) ([]pipeline.ClaimResult, error) {
	// ARGV of every claim is a window of one slice, and the arguments
	// common to the batch are boxed once.
	const nargs = 10
	tok, nowS := any(token), any(now.Unix())
	argv := make([]any, nargs*len(claims))
	for i, c := range claims {
		a := argv[nargs*i : nargs*(i+1)]
		a[0], a[1], a[2], a[3], a[4] = tok, nowS, s.leaseMs, s.windowMs, c.Increment
		a[5], a[9] = flag(c.Peek), flag(c.View.Authoritative)
		a[6], a[7], a[8] = c.View.Open, max(c.View.Next, 1), c.View.Count
	}
	cmds, err := s.runScripts(ctx, "claim", claimScript, len(claims), func(i int) (string, []any) {
		return claims[i].Fingerprint, argv[nargs*i : nargs*(i+1) : nargs*(i+1)]
	})
	if err != nil {
		return nil, err
	}
	out := make([]pipeline.ClaimResult, len(claims))
	for i, cmd := range cmds {
		var v [4]int64
		if err := int64s(cmd, v[:]); err != nil {
			return nil, s.classify("claim", fmt.Errorf("unexpected reply %v: %w", cmd.Val(), err))
		}
		out[i] = pipeline.ClaimResult{State: pipeline.ClaimState(v[0]), Seq: v[1], Count: v[2]}
		if v[3] > 0 {
			out[i].FirstSeen = time.Unix(v[3], 0)
		}
	}
	return out, nil
}

func flag(b bool) any {
	if b {
		return "1"
	}
	return "0"
}

// int64s reads a script's array reply of exactly len(dst) integers into
// dst, as go-redis' Cmd.Int64Slice does (integers, or decimal strings) but
// without allocating a slice per reply.
func int64s(cmd *redis.Cmd, dst []int64) error {
	vals, err := cmd.Slice()
	if err != nil {
		return err
	}
	if len(vals) != len(dst) {
		return fmt.Errorf("%d elements, want %d", len(vals), len(dst))
	}
	for i, v := range vals {
		switch v := v.(type) {
		case int64:
			dst[i] = v
		case string:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return err
			}
			dst[i] = n
		default:
			return fmt.Errorf("redis: unexpected type=%T for Int64", v)
		}
	}
	return nil
}

// Settle implements pipeline.Deduper.
func (s *Store) Settle(ctx context.Context, token string, _ time.Time, st []pipeline.Settlement) error {
	if len(st) == 0 {
		return nil
	}
	tok := any(token)
	_, err := s.runIdempotent(ctx, "settle", settleScript, len(st), func(i int) (string, []any) {
		c := st[i]
		return c.Fingerprint, []any{tok, s.windowMs, c.Seq, c.Count, flag(c.Commit)}
	})
	return err
}

// Ended is an episode that has ended.
type Ended struct {
	Fingerprint string
	Seq         int64
}

// Invalidate deletes the committed records that name ended episodes; it
// reports how many it deleted.
func (s *Store) Invalidate(ctx context.Context, ended []Ended) (int, error) {
	if len(ended) == 0 {
		return 0, nil
	}
	cmds, err := s.runIdempotent(ctx, "invalidate", invalidateScript, len(ended), func(i int) (string, []any) {
		return ended[i].Fingerprint, []any{ended[i].Seq}
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cmds {
		if v, _ := c.Int(); v == 1 {
			n++
		}
	}
	return n, nil
}

// Lookup implements pipeline.Deduper.
func (s *Store) Lookup(ctx context.Context, fingerprints []string) ([]pipeline.Record, error) {
	var cmds []*redis.SliceCmd
	err := s.call(ctx, "lookup", func(ctx context.Context) error {
		pipe := s.rdb.Pipeline()
		cmds = make([]*redis.SliceCmd, len(fingerprints))
		for i, fp := range fingerprints {
			cmds[i] = pipe.HMGet(ctx, s.Key(fp), "s", "q", "n")
		}
		_, err := pipe.Exec(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]pipeline.Record, len(fingerprints))
	for i, cmd := range cmds {
		v := cmd.Val()
		if len(v) != 3 {
			continue
		}
		switch v[0] {
		case "c":
			out[i].State = pipeline.CommittedRecord
		case "r":
			out[i].State = pipeline.ReservedRecord
		default:
			continue
		}
		// HMGET answers bulk strings, or nil for a missing field.
		q, _ := v[1].(string)
		n, _ := v[2].(string)
		out[i].Seq, _ = strconv.ParseInt(q, 10, 64)
		out[i].Count, _ = strconv.ParseInt(n, 10, 64)
	}
	return out, nil
}

// runIdempotent is runScripts retried, on a new connection, after a
// transport failure: a settle or an invalidation applied twice is applied
// once. A claim counts an occurrence and is never retried.
func (s *Store) runIdempotent(ctx context.Context, op string, script *redis.Script, n int, args func(i int) (string, []any)) ([]*redis.Cmd, error) {
	var cmds []*redis.Cmd
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		cmds, err = s.runScripts(ctx, op, script, n, args)
		de, ok := pipeline.AsDependencyError(err)
		if err == nil || !ok || de.Kind != pipeline.KindUnavailable || ctx.Err() != nil {
			return cmds, err
		}
	}
	return cmds, err
}

// runScripts runs one script per item in a single pipeline (one round trip)
// by its SHA; if Redis lost its script cache (restart, failover) the
// affected items run once more after loading it, which is safe because a
// NOSCRIPT reply means the script did not run.
func (s *Store) runScripts(ctx context.Context, op string, script *redis.Script, n int, args func(i int) (string, []any)) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, n)
	// One slice backs every command's KEYS.
	keys := make([]string, n)
	err := s.call(ctx, op, func(ctx context.Context) error {
		pipe := s.rdb.Pipeline()
		for i := range n {
			key, a := args(i)
			keys[i] = s.Key(key)
			cmds[i] = script.EvalSha(ctx, pipe, keys[i:i+1:i+1], a...)
		}
		_, err := pipe.Exec(ctx)
		if err == nil || !redis.HasErrorPrefix(err, "NOSCRIPT") {
			return err
		}
		pipe = s.rdb.Pipeline()
		for i, c := range cmds {
			if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
				_, a := args(i)
				cmds[i] = script.Eval(ctx, pipe, keys[i:i+1:i+1], a...)
			}
		}
		_, err = pipe.Exec(ctx)
		return err
	})
	return cmds, err
}

// call runs fn through the breaker with the per-round-trip timeout and
// classifies its error.
func (s *Store) call(ctx context.Context, op string, fn func(context.Context) error) error {
	err := s.opts.Breaker.Call(ctx, s.opts.Timeout, fn)
	if err == nil {
		return nil
	}
	return s.classify(op, err)
}

func (s *Store) classify(op string, err error) error {
	kind := pipeline.KindUnavailable
	var ne net.Error
	switch {
	case errors.Is(err, breaker.ErrOpen):
		kind = pipeline.KindBreakerOpen
	case redis.IsOOMError(err):
		kind = pipeline.KindOOM
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		kind = pipeline.KindTimeout
	}
	return &pipeline.DependencyError{Dependency: pipeline.Redis, Op: op, Kind: kind, Err: err}
}
