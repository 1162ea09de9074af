package fault

import (
	"context"
	"math/rand/v2"

	"github.com/alertgate/gateway/chaos/env"
)

// APIServerStop stops kube-apiserver (etcd keeps the data); Undo starts it
// again on the same port with the same certificates.
type APIServerStop struct{}

func (APIServerStop) String() string         { return "kubernetes-apiserver-stop" }
func (APIServerStop) Target() env.Dependency { return env.Kubernetes }

func (APIServerStop) Inject(_ context.Context, e *env.Env) (Undo, error) {
	if err := e.ControlPlane.StopAPIServer(); err != nil {
		return nil, err
	}
	return func(context.Context) error { return e.ControlPlane.StartAPIServer() }, nil
}

func init() {
	Register(Spec{Name: "apiserver-stop", Description: "stop kube-apiserver; start it again", Targets: []env.Dependency{env.Kubernetes},
		Random: func(*rand.Rand, env.Dependency) Fault { return APIServerStop{} }})
}
