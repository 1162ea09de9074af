package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/alertgate/gateway/testenv"
)

// junkPrefix names the keys RedisOOM writes to fill memory; it is outside
// every gateway key prefix.
const junkPrefix = "chaos:oom:junk:"

// RedisOOM lowers maxmemory just above what Redis uses and fills the rest,
// so that every write is refused with OOM (noeviction), while reads and
// deletes still work. Undo frees the memory and restores the limit.
type RedisOOM struct{}

func (RedisOOM) String() string             { return "redis-oom" }
func (RedisOOM) Target() testenv.Dependency { return testenv.Redis }

func (RedisOOM) Inject(ctx context.Context, e *testenv.Env) (Undo, error) {
	rdb := e.RDB
	prev, err := rdb.ConfigGet(ctx, "maxmemory").Result()
	if err != nil {
		return nil, err
	}
	used, err := UsedMemory(ctx, rdb)
	if err != nil {
		return nil, err
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", strconv.FormatInt(used+1<<20, 10)).Err(); err != nil {
		return nil, err
	}
	undo := func(ctx context.Context) error {
		if err := deleteJunk(ctx, rdb); err != nil {
			return err
		}
		return rdb.ConfigSet(ctx, "maxmemory", prev["maxmemory"]).Err()
	}
	// Fill with ever smaller values until even a small one is refused:
	// a refused write frees its own buffer, so one size alone leaves room.
	n := 0
	for _, size := range []int{64 << 10, 4 << 10, 256, 16} {
		junk := strings.Repeat("x", size)
		for i := 0; ; i++ {
			if i > 2000 {
				_ = undo(ctx)
				return nil, fmt.Errorf("fault: redis not full after %d writes of %d bytes", i, size)
			}
			err := rdb.Set(ctx, junkPrefix+strconv.Itoa(n), junk, 0).Err()
			n++
			if redis.IsOOMError(err) {
				break
			}
			if err != nil {
				_ = undo(ctx)
				return nil, fmt.Errorf("fault: fill redis: %w", err)
			}
		}
	}
	// Client buffers come and go by a few kilobytes; lower the limit a
	// little below what is used so none of that slack lets a write in.
	used, err = UsedMemory(ctx, rdb)
	if err == nil {
		err = rdb.ConfigSet(ctx, "maxmemory", strconv.FormatInt(used-256<<10, 10)).Err()
	}
	if err != nil {
		_ = undo(ctx)
		return nil, err
	}
	return undo, nil
}

// UsedMemory returns Redis's used_memory from INFO memory, in bytes.
func UsedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("fault: no used_memory in INFO")
}

func deleteJunk(ctx context.Context, rdb *redis.Client) error {
	iter := rdb.Scan(ctx, 0, junkPrefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	return rdb.Del(ctx, keys...).Err()
}

func init() {
	Register(Spec{Name: "redis-oom", Description: "fill Redis to maxmemory (noeviction): writes refused with OOM", Targets: []testenv.Dependency{testenv.Redis},
		Random: func(*rand.Rand, testenv.Dependency) Fault { return RedisOOM{} }})
}
