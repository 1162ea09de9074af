package fault

import (
	"context"
	"math/rand/v2"

	"github.com/alertgate/gateway/testenv"
)

// RedisKill kills redis-server with SIGKILL; Undo starts a fresh, empty one
// on the same port: every fingerprint and every loaded script is lost.
type RedisKill struct{}

func (RedisKill) String() string             { return "redis-kill" }
func (RedisKill) Target() testenv.Dependency { return testenv.Redis }

func (RedisKill) Inject(_ context.Context, e *testenv.Env) (Undo, error) {
	e.Redis.Kill()
	return func(ctx context.Context) error { return e.Redis.Start(ctx) }, nil
}

func init() {
	Register(Spec{Name: "redis-kill", Description: "kill -9 redis-server; restart it empty (data loss)", Targets: []testenv.Dependency{testenv.Redis},
		Random: func(*rand.Rand, testenv.Dependency) Fault { return RedisKill{} }})
}
