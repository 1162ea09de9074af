// Package dedup is the gateway's deduplication store in Redis: one atomic
// script and one round trip per batch to count duplicates or reserve new
// fingerprints, and one more to commit or release them.
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

// Options configure a Store.
type Options struct {
	// KeyPrefix starts every key. Default: "alertgate:fp:".
	KeyPrefix string
	// Window is how long a committed fingerprint counts duplicates after
	// its last occurrence. Default: 5m.
	Window time.Duration
	// Lease bounds a reservation whose holder never commits or releases
	// it (crash, Redis unreachable at rollback). It must exceed the
	// request deadline so a live request never loses its lease. Default:
	// 20s; at most 30s.
	Lease time.Duration
	// Timeout bounds each round trip. Default: 1s.
	Timeout time.Duration
	// Breaker guards Redis. Default: breaker.New with Name "redis".
	Breaker *breaker.Breaker
}

func (o *Options) setDefaults() {
	if o.KeyPrefix == "" {
		o.KeyPrefix = "alertgate:fp:"
	}
	if o.Window <= 0 {
		o.Window = 5 * time.Minute
	}
	if o.Lease <= 0 {
		o.Lease = 20 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.Breaker == nil {
		o.Breaker = breaker.New(breaker.Options{Name: string(pipeline.Redis)})
	}
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
	if opts.Lease > 30*time.Second {
		return nil, fmt.Errorf("dedup: lease %s exceeds 30s", opts.Lease)
	}
	return &Store{rdb: rdb, opts: opts, leaseMs: opts.Lease.Milliseconds(), windowMs: opts.Window.Milliseconds()}, nil
}

// Key returns the Redis key of a fingerprint.
func (s *Store) Key(fingerprint string) string { return s.opts.KeyPrefix + fingerprint }

// Claim implements pipeline.Deduper.
func (s *Store) Claim(ctx context.Context, token string, now time.Time, claims []pipeline.Claim) ([]pipeline.ClaimResult, error) {
	// ARGV of every claim is a window of one slice, and the arguments
	// common to the batch are boxed once: a batch's arguments cost one
	// allocation plus one per bucket, not seven per fingerprint.
	const nargs = 7
	tok, nowS := any(token), any(now.Unix())
	argv := make([]any, nargs*len(claims))
	for i, c := range claims {
		a := argv[nargs*i : nargs*(i+1)]
		a[0], a[1], a[2], a[3], a[4], a[5], a[6] = tok, nowS, s.leaseMs, s.windowMs, c.Bucket, c.Increment, "0"
		if c.Peek {
			a[6] = "1"
		}
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
		out[i] = pipeline.ClaimResult{State: pipeline.ClaimState(v[0]), Count: v[1], Bucket: v[2]}
		if v[3] > 0 {
			out[i].FirstSeen = time.Unix(v[3], 0)
		}
	}
	return out, nil
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
func (s *Store) Settle(ctx context.Context, token string, now time.Time, st []pipeline.Settlement) error {
	if len(st) == 0 {
		return nil
	}
	// The arguments common to the batch are boxed once, as in Claim.
	tok, nowS := any(token), any(now.Unix())
	_, err := s.runIdempotent(ctx, "settle", settleScript, len(st), func(i int) (string, []any) {
		c := st[i]
		commit := "0"
		if c.Commit {
			commit = "1"
		}
		return c.Fingerprint, []any{tok, nowS, s.windowMs, c.Bucket, c.Count, commit}
	})
	return err
}

// Renew implements pipeline.Deduper.
func (s *Store) Renew(ctx context.Context, token string, fingerprints []string) error {
	tok := any(token)
	_, err := s.runIdempotent(ctx, "renew", renewScript, len(fingerprints), func(i int) (string, []any) {
		return fingerprints[i], []any{tok, s.leaseMs}
	})
	return err
}

// Lookup implements pipeline.Deduper.
func (s *Store) Lookup(ctx context.Context, fingerprints []string) ([]pipeline.LookupResult, error) {
	var cmds []*redis.SliceCmd
	err := s.call(ctx, "lookup", func(ctx context.Context) error {
		pipe := s.rdb.Pipeline()
		cmds = make([]*redis.SliceCmd, len(fingerprints))
		for i, fp := range fingerprints {
			cmds[i] = pipe.HMGet(ctx, s.Key(fp), "s", "b", "n")
		}
		_, err := pipe.Exec(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]pipeline.LookupResult, len(fingerprints))
	for i, cmd := range cmds {
		v := cmd.Val()
		if len(v) != 3 || v[0] != "c" {
			continue
		}
		// HMGET answers bulk strings, or nil for a missing field (which
		// parses as 0, as before).
		b, _ := v[1].(string)
		n, _ := v[2].(string)
		out[i].Found = true
		out[i].Bucket, _ = strconv.ParseInt(b, 10, 64)
		out[i].Count, _ = strconv.ParseInt(n, 10, 64)
	}
	return out, nil
}

// runIdempotent is runScripts retried, on a new connection, after a
// transport failure: a settle or a renew applied twice is applied once, and
// a commit that gets through after a reset spares the sender a retry. A
// claim counts an occurrence and is never retried.
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
	err := s.opts.Breaker.Do(func() error {
		ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		defer cancel()
		return fn(ctx)
	})
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
