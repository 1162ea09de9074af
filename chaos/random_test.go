package chaos_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alertgate/gateway/chaos/model"
	"github.com/alertgate/gateway/chaos/random"
	"github.com/alertgate/gateway/chaos/run"
	"github.com/alertgate/gateway/internal/app"
	"github.com/alertgate/gateway/internal/pipeline"
)

// A short random run in CI; `gateway-chaos run --random --duration 2m`
// runs the long one. Seed 14's 20 s schedule has a remediation controller
// (with a Redis fault), a Redis OOM, and both dependencies broken at once.
func TestRandomHistory(t *testing.T) {
	const seed, d = 14, 20 * time.Second
	if a, b := random.Describe(random.Schedule(seed, d)), random.Describe(random.Schedule(seed, d)); a != b {
		t.Fatalf("the same seed gave two schedules:\n%s\n%s", a, b)
	}
	res := run.Run(context.Background(), e, random.Scenario(random.Options{Seed: seed, Duration: d}), run.Options{Logf: t.Logf})
	injected, acked := 0, 0
	for _, ev := range res.Timeline {
		if ev.Kind == "inject" {
			injected++
		}
	}
	for _, r := range res.Records {
		if r.Acknowledged() {
			acked += len(r.Signals)
		}
	}
	st := res.Model.Stats
	t.Logf("%d faults, %d requests, %d signals acknowledged, %d episodes (%d ended), %d controller actions, statuses %v",
		injected, len(res.Records), acked, st.Episodes, st.Ended, st.Actions, res.Statuses)
	if injected < 3 || acked < 200 || st.Actions < 3 || st.Ended < 3 {
		t.Errorf("too little happened to mean anything: %d faults, %d acknowledged signals, %d controller actions, %d episodes ended",
			injected, acked, st.Actions, st.Ended)
	}
	for _, v := range res.Violations {
		t.Error(v)
	}
}

// ackFirst is a deliberately broken creator: it answers "created" at once
// and creates a moment later in the background, so the acknowledgement
// comes before the store, and a create that then fails is lost.
type ackFirst struct{ pipeline.Creator }

func (a ackFirst) Open(ctx context.Context, s *pipeline.Signal, m []pipeline.Member, seq int64) (pipeline.OpenResult, error) {
	go func() {
		time.Sleep(2 * time.Second)
		_, _ = a.Creator.Open(context.WithoutCancel(ctx), s, m, seq)
	}()
	return pipeline.OpenResult{Seq: seq, Name: a.Creator.Name(s.Fingerprint, seq), Created: true}, nil
}

// The history checker must catch a gateway that acknowledges before it
// creates, and name the occurrences it acknowledged into no episode.
func TestRandomCatchesAckBeforeCreate(t *testing.T) {
	const seed, d = 1, 8 * time.Second
	res := run.Run(context.Background(), e, random.Scenario(random.Options{Seed: seed, Duration: d}),
		run.Options{Wrap: app.Wrappers{Creator: func(c pipeline.Creator) pipeline.Creator { return ackFirst{c} }}, HistoryDir: historyDir})
	// The model names each occurrence acknowledged into an episode that
	// did not exist yet (M2); the final state may still show the resource,
	// opened later by a repeat.
	var lost []string
	for _, v := range res.Violations {
		if v.Invariant == model.Attached && strings.Contains(v.Detail, "which existed") && strings.Contains(v.Detail, "seed") {
			lost = append(lost, v.Detail)
		}
	}
	if len(lost) == 0 {
		t.Fatalf("seed %d: the checker did not catch a gateway that acknowledges before creating; violations: %v", seed, res.Violations)
	}
	t.Logf("seed %d, %s: %d violation(s) (%s); %d occurrences acknowledged into no episode, e.g. %s",
		seed, d, len(res.Violations), countByInvariant(res.Violations), len(lost), lost[0])
}
