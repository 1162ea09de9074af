package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// dupStore answers every claim as a committed duplicate, without I/O.
type dupStore struct{}

func (dupStore) Claim(_ context.Context, _ string, now time.Time, cs []Claim) ([]ClaimResult, error) {
	out := make([]ClaimResult, len(cs))
	for i, c := range cs {
		out[i] = ClaimResult{State: Duplicate, Count: 7 + c.Increment, Bucket: c.Bucket, FirstSeen: now.Add(-time.Hour)}
	}
	return out, nil
}
func (dupStore) Settle(context.Context, string, time.Time, []Settlement) error { return nil }
func (dupStore) Renew(context.Context, string, []string) error                 { return nil }
func (dupStore) Lookup(_ context.Context, fps []string) ([]LookupResult, error) {
	return make([]LookupResult, len(fps)), nil
}

type nopCreator struct{}

func (nopCreator) Create(context.Context, *Signal, string) (bool, int64, error) {
	return true, 0, nil
}
func (nopCreator) Resolve(context.Context, *Signal, string) (bool, error) { return true, nil }
func (nopCreator) Available() bool                                        { return true }
func (nopCreator) Namespace() string                                      { return "alerts" }

type nopSink struct{}

func (nopSink) Observe(Observation) {}

// BenchmarkProcessDuplicates is the processor's own work on a webhook of
// 10 alerts that are all duplicates (the hot path), with a store and a
// status sink that cost nothing: grouping, claims, outcomes, observations.
func BenchmarkProcessDuplicates(b *testing.B) {
	p, err := NewProcessor(dupStore{}, nopCreator{}, nopSink{}, Options{})
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
