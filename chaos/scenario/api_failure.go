package scenario

import (
	"time"

	"github.com/alertgate/gateway/internal/pipeline"
	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/fault"
	"github.com/alertgate/gateway/testenv/load"
)

func init() {
	Register(&Scenario{
		Name:        "kubernetes-api-failure",
		Description: "Kubernetes API unreachable at the create, then stopped: 503, the reservation is rolled back (or expires if Redis is lost too), the retry creates once",
		Order:       3,
		InProcess:   true,
		Configure:   shortLease,
		Phases: []Phase{{PhaseAPIDownAtCreate, func(t *T) {
			sig := t.Signals("KubeDeploymentReplicasMismatch", 1)
			api := fault.Down{Dep: testenv.Kubernetes}
			t.InjectAt(pipeline.BeforeCreate, api)
			r := t.Send(0, sig)
			t.ClearHooks()
			t.ExpectStatuses([]load.Record{r}, "API down at create", 503)
			t.ExpectFast([]load.Record{r}, "API down at create", 5*time.Second)
			t.ExpectFailureLogged(r, "kubernetes", "create", "")
			st := t.Check(true)
			t.Expect(len(st.Keys) == 0, "the reservation was not rolled back: %d keys in Redis", len(st.Keys))
			healed := t.Heal(api)
			t.MeasureRecovery(api.String(), healed)
			r = t.Retry(0, sig)
			t.ExpectStatuses([]load.Record{r}, "retry", 201)
			t.Check(true)
		}}, {"API and Redis lost at the create: the reservation expires by itself", func(t *T) {
			sig := t.Signals("KubeDeploymentReplicasMismatch", 1)
			api, rd := fault.Down{Dep: testenv.Kubernetes}, fault.Down{Dep: testenv.Redis}
			t.InjectAt(pipeline.BeforeCreate, fault.Together{api, rd})
			r := t.Send(0, sig)
			t.ClearHooks()
			t.ExpectStatuses([]load.Record{r}, "API and Redis down at create", 503)
			st := t.Check(true)
			t.Expect(len(st.Reserved()) == 1, "want the unreleased reservation in Redis until its lease ends, found %+v", st.Reserved())
			// Redis is read directly: the lease runs out while the gateway
			// still cannot reach it.
			t.WaitLease()
			t.Heal(fault.Together{api, rd})
			r = t.Retry(0, sig)
			t.ExpectStatuses([]load.Record{r}, "retry", 201)
		}}, {"API server stopped", func(t *T) {
			stop := fault.APIServerStop{}
			t.Inject(stop)
			rs := t.SendEach(0, t.Signals("KubeDeploymentReplicasMismatch", 5))
			t.ExpectStatuses(rs, "API server stopped", 503)
			t.ExpectFast(rs, "API server stopped", 5*time.Second)
			t.ExpectRetryAfter(rs)
			rst := t.ReadRedis()
			t.Expect(len(rst.Reserved()) == 0, "a failed create left %d reservations", len(rst.Reserved()))
			healed := t.Heal(stop)
			t.MeasureRecovery(stop.String(), healed)
			for _, r := range rs {
				t.ExpectStatuses([]load.Record{t.Retry(0, r.Signals)}, "retry after restart", 201)
			}
			t.Check(true)
		}}},
	})
}

// PhaseAPIDownAtCreate is kubernetes-api-failure's first phase.
const PhaseAPIDownAtCreate = "API unreachable at the create"
