package localdeps

import (
	"context"
	"testing"
)

func TestRedisRestartIsEmptyAndSamePort(t *testing.T) {
	ctx := context.Background()
	r, err := StartRedis(ctx, RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Kill()
	addr := r.Addr()
	r.Kill()
	if ping(addr) == nil {
		t.Fatal("redis still answers after Kill")
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if r.Addr() != addr || ping(addr) != nil {
		t.Fatalf("restarted redis not answering on %s", addr)
	}
}
