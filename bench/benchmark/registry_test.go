package benchmark

import (
	"strings"
	"testing"
	"time"
)

func TestRegistry(t *testing.T) {
	want := []string{"duplicate", "create", "failfast", "recovery", "memory", "scaling", "profile", "soak", "compare"}
	all := All()
	if len(all) != len(want) {
		t.Fatalf("%d benchmarks, want %d", len(all), len(want))
	}
	for i, b := range all {
		if b.Name != want[i] || b.Description == "" || b.Run == nil {
			t.Errorf("benchmark %d: %q, want %q with a description and a Run", i, b.Name, want[i])
		}
		if _, ok := Get(b.Name); !ok {
			t.Errorf("Get(%q) failed", b.Name)
		}
	}
}

func TestResultMarkdown(t *testing.T) {
	r := &Result{Name: "x", Date: time.Unix(0, 0).UTC(), Machine: "m", Command: "go run ./cmd/gateway-load bench x",
		Summary: "s", Tables: []string{"| a |\n|---|"}, Notes: []string{"n"}, Files: []string{"f.pprof"}}
	md := r.Markdown()
	for _, s := range []string{"### x", "go run ./cmd/gateway-load bench x", "| a |", "- n", "f.pprof"} {
		if !strings.Contains(md, s) {
			t.Errorf("markdown lacks %q:\n%s", s, md)
		}
	}
	if leastSquares([]float64{0, 1, 2}, []float64{1, 3, 5}) != 2 {
		t.Error("least squares slope of y = 2x + 1 is not 2")
	}
}
