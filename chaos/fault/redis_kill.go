package fault

import (
	"context"
	"math/rand/v2"

	"github.com/alertgate/gateway/chaos/env"
)

// RedisKill kills redis-server with SIGKILL; Undo starts a fresh, empty one
// on the same port: every fingerprint and every loaded script is lost.
type RedisKill struct{}

func (RedisKill) String() string         { return "redis-kill" }
func (RedisKill) Target() env.Dependency { return env.Redis }

func (RedisKill) Inject(_ context.Context, e *env.Env) (Undo, error) {
	e.Redis.Kill()
	return func(ctx context.Context) error { return e.Redis.Start(ctx) }, nil
}

func init() {
	Register(Spec{Name: "redis-kill", Description: "kill -9 redis-server; restart it empty (data loss)", Targets: []env.Dependency{env.Redis},
		Random: func(*rand.Rand, env.Dependency) Fault { return RedisKill{} }})
}
