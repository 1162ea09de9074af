package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// dupStore attaches every claim to the open episode, without I/O.
type dupStore struct{}

func (dupStore) Claim(_ context.Context, _ string, now time.Time, cs []Claim) ([]ClaimResult, error) {
	out := make([]ClaimResult, len(cs))
	for i, c := range cs {
		out[i] = ClaimResult{State: Attached, Seq: c.View.Open, Count: 7 + c.Increment, FirstSeen: now.Add(-time.Hour)}
	}
	return out, nil
}
func (dupStore) Settle(context.Context, string, time.Time, []Settlement) error { return nil }
func (dupStore) Lookup(_ context.Context, fps []string) ([]Record, error) {
	return make([]Record, len(fps)), nil
}

type nopCreator struct{}

func (nopCreator) Open(context.Context, *Signal, []Member, int64) (OpenResult, error) {
	return OpenResult{Created: true}, nil
}
func (nopCreator) Episodes(context.Context, string) (EpisodeView, error) { return EpisodeView{}, nil }
func (nopCreator) UpdateMembers(context.Context, string, int64, []Member, time.Time) (bool, error) {
	return true, nil
}
func (nopCreator) Available() bool                  { return true }
func (nopCreator) Namespace() string                { return "alerts" }
func (nopCreator) Name(fp string, seq int64) string { return fmt.Sprintf("rr-%.32s-%d", fp, seq) }

// openEpisodes knows one open episode of every fingerprint.
type openEpisodes struct{}

func (openEpisodes) View(string) EpisodeView                   { return EpisodeView{Open: 1, Next: 2, Count: 7} }
func (openEpisodes) Synced() bool                              { return true }
func (openEpisodes) Healthy() bool                             { return true }
func (openEpisodes) NeedsMembers(string, int64, []Member) bool { return false }

type nopSink struct{}

func (nopSink) Observe(Observation) {}

// BenchmarkProcessDuplicates is the processor's own work on a webhook of
// 10 alerts that are all duplicates (the hot path), with a store and a
// status sink that cost nothing: grouping, claims, outcomes, observations.
func BenchmarkProcessDuplicates(b *testing.B) {
	p, err := NewProcessor(dupStore{}, nopCreator{}, openEpisodes{}, nopSink{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	req := &Request{Source: SourcePrometheus}
	for i := range 10 {
		req.Signals = append(req.Signals, Signal{Fingerprint: fmt.Sprintf("%064x", i), Source: SourcePrometheus, FiringTime: now.Add(-time.Hour)})
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := p.Process(ctx, req)
		if err != nil || len(res.Outcomes) != 10 {
			b.Fatal(err)
		}
	}
}
