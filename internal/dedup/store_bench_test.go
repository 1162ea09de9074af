package dedup

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/alertgate/gateway/internal/breaker"
	"github.com/alertgate/gateway/internal/pipeline"
)

// replyHook answers every pipelined command with a duplicate's reply
// instead of sending it: the client-side cost of a claim (arguments,
// command building, reply parsing) without a network or a Redis.
type replyHook struct{}

func (replyHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (replyHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (replyHook) ProcessPipelineHook(redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(_ context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			c.(*redis.Cmd).SetVal([]any{int64(0), int64(1), int64(12), int64(1_780_000_000)})
		}
		return nil
	}
}

// BenchmarkClaimClientSide is Store.Claim of a batch of 10 fingerprints,
// all duplicates, with the reply faked in a hook: what the gateway's
// process spends per batch around the one round trip.
func BenchmarkClaimClientSide(b *testing.B) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer rdb.Close()
	rdb.AddHook(replyHook{})
	s, err := New(rdb, Options{Breaker: breaker.New(breaker.Options{Failures: 1 << 20})})
	if err != nil {
		b.Fatal(err)
	}
	claims := make([]pipeline.Claim, 10)
	for i := range claims {
		claims[i] = pipeline.Claim{Fingerprint: fmt.Sprintf("%064x", i), Increment: 1, View: pipeline.EpisodeView{Open: 1, Next: 2}}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := s.Claim(ctx, "0123456789abcdef", t0, claims)
		if err != nil || len(res) != 10 || res[0].State != pipeline.Attached {
			b.Fatal(res, err)
		}
	}
}
