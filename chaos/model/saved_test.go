package model

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/alertgate/gateway/testenv/history"
)

// savedHistory is one entry of testdata/histories/index.json: a history a
// real run saved, and the invariants the model must find broken in it (none
// for a healthy gateway's).
type savedHistory struct {
	History  string   `json:"history"`
	Origin   string   `json:"origin"`
	Violates []string `json:"violates"`
}

// Saved histories of real runs, as etcd's robustness tests keep theirs: a
// change to the model must still find exactly the defects each one holds,
// and still pass the healthy ones. Add one with `gateway-chaos run
// --keep-histories` (or a failed run's NAME.history.json) and a line in
// the index.
func TestSavedHistories(t *testing.T) {
	dir := filepath.Join("testdata", "histories")
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index []savedHistory
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.history.json"))
	listed := map[string]bool{}
	for _, s := range index {
		listed[s.History] = true
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s is not in index.json: say what it must violate", f)
		}
	}
	healthy, broken := 0, 0
	for _, s := range index {
		t.Run(s.History, func(t *testing.T) {
			h, err := history.Load(filepath.Join(dir, s.History))
			if err != nil {
				t.Fatal(err)
			}
			r := Check(h, Options{})
			var got []string
			for _, v := range r.Violations {
				if !slices.Contains(got, v.Invariant) {
					got = append(got, v.Invariant)
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(s.Violates))
			if !slices.Equal(got, want) {
				t.Errorf("%s (%s): violated %q, want %q", s.History, s.Origin, got, want)
				for i, v := range r.Violations {
					if i == 5 {
						break
					}
					t.Log(v)
				}
			}
			if r.Stats.Requests == 0 {
				t.Errorf("%s holds no requests", s.History)
			}
			t.Logf("%d requests, %d occurrences, %d episodes, %d actions, %d faults: %d violation(s)",
				r.Stats.Requests, r.Stats.Occurrences, r.Stats.Episodes, r.Stats.Actions, r.Stats.Faults, len(r.Violations))
		})
		if len(s.Violates) == 0 {
			healthy++
		} else {
			broken++
		}
	}
	if healthy == 0 || broken == 0 {
		t.Errorf("index.json holds %d healthy and %d broken histories; the test needs both to mean anything", healthy, broken)
	}
}
