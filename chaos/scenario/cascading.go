package scenario

import (
	"time"

	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/fault"
	"github.com/alertgate/gateway/testenv/load"
)

func init() {
	Register(&Scenario{
		Name:        "cascading",
		Description: "Redis and the API both down, in three orderings: 503 within 5 s and no writes; partial recovery serves what it can; full recovery",
		Order:       4,
		Run: func(t *T) {
			redis, api := fault.Down{Dep: testenv.Redis}, fault.Down{Dep: testenv.Kubernetes}
			orderings := []struct {
				name  string
				first fault.Fault
				then  fault.Fault // nil: both at once
				// back is what returns first, alone.
				back fault.Fault
			}{
				{"Redis first, then the API; Redis returns first", redis, api, redis},
				{"the API first, then Redis; the API returns first", api, redis, api},
				{"both at once; both return at once", fault.Together{redis, api}, nil, nil},
			}
			for _, o := range orderings {
				t.Phase(o.name)
				known := t.Signals("KubePodNotReady", 1)
				t.ExpectStatuses([]load.Record{t.Send(0, known)}, "before the faults", 201)
				before := t.Check(true)

				t.Inject(o.first)
				if o.then != nil {
					between := t.SendEach(0, t.Signals("KubePodNotReady", 2))
					t.ExpectStatuses(between, "one dependency down", 503)
					t.Inject(o.then)
				}
				// Hold both down for a second of traffic: every answer must
				// stay fast, not only the first.
				down := t.Signals("KubePodNotReady", 5)
				rs := t.SendSpaced(0, down, 200*time.Millisecond)
				t.ExpectStatuses(rs, "both down", 503)
				t.ExpectFast(rs, "both down", 5*time.Second)
				t.ExpectRetryAfter(rs)
				st := t.Check(true)
				t.Expect(len(st.Resources) == len(before.Resources) && len(st.Committed()) == len(before.Committed()),
					"writes while both were down: %d→%d resources, %d→%d fingerprints",
					len(before.Resources), len(st.Resources), len(before.Committed()), len(st.Committed()))

				if o.back != nil {
					healed := t.Heal(o.back)
					// The gateway notices within a breaker period.
					time.Sleep(1500 * time.Millisecond)
					fresh := t.SendEach(0, t.Signals("KubePodNotReady", 2))
					t.ExpectStatuses(fresh, "one dependency back, new signals", 503)
					dup := t.Send(0, known)
					if o.back == redis {
						// Duplicates need Redis only.
						t.ExpectStatuses([]load.Record{dup}, "Redis back, a duplicate", 202)
					} else {
						t.ExpectStatuses([]load.Record{dup}, "API back, a duplicate", 503)
					}
					t.Note("partial recovery (%s back %s ago): new %s, duplicate %d", o.back, time.Since(healed).Round(time.Millisecond), statuses(fresh), dup.Status)
					t.Check(true)
					other := o.first
					if o.back == o.first {
						other = o.then
					}
					healed = t.Heal(other)
					t.MeasureRecovery(other.String(), healed)
				} else {
					healed := t.Heal(o.first)
					t.MeasureRecovery(o.first.String(), healed)
				}
				for _, r := range rs {
					t.ExpectStatuses([]load.Record{t.Retry(0, r.Signals)}, "retry after recovery", 201)
				}
				t.Check(true)
			}
		},
	})
}
