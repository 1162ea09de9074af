package fault

import (
	"context"
	"math/rand/v2"

	"github.com/alertgate/gateway/testenv"
)

// APIServerStop stops kube-apiserver (etcd keeps the data); Undo starts it
// again on the same port with the same certificates.
type APIServerStop struct{}

func (APIServerStop) String() string             { return "kubernetes-apiserver-stop" }
func (APIServerStop) Target() testenv.Dependency { return testenv.Kubernetes }

func (APIServerStop) Inject(_ context.Context, e *testenv.Env) (Undo, error) {
	if err := e.ControlPlane.StopAPIServer(); err != nil {
		return nil, err
	}
	return func(context.Context) error { return e.ControlPlane.StartAPIServer() }, nil
}

func init() {
	Register(Spec{Name: "apiserver-stop", Description: "stop kube-apiserver; start it again", Targets: []testenv.Dependency{testenv.Kubernetes},
		Random: func(*rand.Rand, testenv.Dependency) Fault { return APIServerStop{} }})
}
