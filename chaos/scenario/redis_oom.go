package scenario

import (
	"time"

	"github.com/alertgate/gateway/testenv/fault"
	"github.com/alertgate/gateway/testenv/load"
)

func init() {
	Register(&Scenario{
		Name:        "redis-oom",
		Description: "Redis full (maxmemory, noeviction): 503 with the OOM logged, stored fingerprints intact; new signals succeed once memory is freed",
		Order:       7,
		Run: func(t *T) {
			t.Phase("5 alerts, healthy")
			known := t.Signals("KubePersistentVolumeFillingUp", 5)
			t.ExpectStatuses(t.SendEach(0, known), "healthy", 201)
			before := t.Check(true)

			t.Phase("Redis out of memory")
			f := fault.RedisOOM{}
			t.Inject(f)
			fresh := t.SendEach(0, t.Signals("KubePersistentVolumeFillingUp", 5))
			t.ExpectStatuses(fresh, "new alerts on a full Redis", 503)
			t.ExpectFast(fresh, "full Redis", 5*time.Second)
			t.ExpectRetryAfter(fresh)
			t.ExpectFailureLogged(fresh[0], "redis", "claim", "oom")
			dups := t.SendEach(0, known)
			t.ExpectStatuses(dups, "duplicates on a full Redis", 503)
			st := t.Check(true)
			t.Expect(len(st.Committed()) == len(before.Committed()), "fingerprints changed on a full Redis: %d → %d", len(before.Committed()), len(st.Committed()))
			counts := map[string]int64{}
			for _, k := range before.Committed() {
				counts[k.Fingerprint] = k.Count
			}
			for _, k := range st.Committed() {
				t.Expect(counts[k.Fingerprint] == k.Count, "count of %s changed on a full Redis: %d → %d", k.Fingerprint[:12], counts[k.Fingerprint], k.Count)
			}

			healed := t.Heal(f)
			t.MeasureRecovery(f.String(), healed)
			t.Phase("retry after memory is freed")
			for _, r := range fresh {
				t.ExpectStatuses([]load.Record{t.Retry(0, r.Signals)}, "retry", 201)
			}
			t.ExpectStatuses(t.SendEach(0, known), "duplicates after recovery", 202)
			t.Check(true)
		},
	})
}
