// Package random is the Jepsen-style mode of the chaos suite: a seeded
// random schedule of faults from the whole catalogue, while a realistic load
// of new and repeated alerts flows with Alertmanager-like retries; the full
// history is recorded and checked at the end. It is a scenario like the
// others, so `go test` and the CLI run it the same way.
package random

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/alertgate/gateway/testenv"
	"github.com/alertgate/gateway/testenv/fault"
)

// Step is one fault of the schedule.
type Step struct {
	At    time.Duration
	For   time.Duration
	Fault fault.Fault
}

func (s Step) String() string {
	return fmt.Sprintf("%6.1fs +%4.1fs %s", s.At.Seconds(), s.For.Seconds(), s.Fault)
}

// Schedule draws the faults for a run of the given duration from seed: one
// fault (sometimes one per dependency at once) every few seconds, each
// lasting 1–6 s, with quiet gaps between them so recovery shows. The same
// seed and duration always give the same schedule.
func Schedule(seed int64, d time.Duration) []Step { return ScheduleOf(seed, d, fault.Catalog()) }

// ScheduleOf draws the schedule from specs instead of the catalogue, e.g.
// the catalogue and fault.PauseSpec when the gateways are processes. A
// second fault drawn with one on the gateway or the controller breaks
// Redis.
func ScheduleOf(seed int64, d time.Duration, specs []fault.Spec) []Step {
	r := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	var steps []Step
	at := 2 * time.Second
	for {
		dur := time.Duration(1000+r.IntN(5000)) * time.Millisecond
		if at+dur > d-3*time.Second {
			return steps
		}
		spec := specs[r.IntN(len(specs))]
		dep := spec.Targets[r.IntN(len(spec.Targets))]
		f := spec.Random(r, dep)
		// One time in four, break the other dependency too.
		if r.IntN(4) == 0 {
			other := testenv.Redis
			if dep == testenv.Redis {
				other = testenv.Kubernetes
			}
			var second fault.Fault
			// Bounded for specs that break neither dependency.
			for i := 0; second == nil && i < 1000; i++ {
				s2 := specs[r.IntN(len(specs))]
				for _, t := range s2.Targets {
					if t == other {
						second = s2.Random(r, other)
					}
				}
			}
			if second != nil {
				f = fault.Together{f, second}
			}
		}
		steps = append(steps, Step{At: at, For: dur, Fault: f})
		at += dur + time.Duration(1500+r.IntN(2500))*time.Millisecond
	}
}

// Describe renders a schedule, one step a line.
func Describe(steps []Step) string {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString(s.String())
		b.WriteByte('\n')
	}
	return b.String()
}
