package run

import (
	"testing"
	"time"
)

func TestSummarise(t *testing.T) {
	ms := func(n int) []time.Duration {
		var out []time.Duration
		for i := n; i >= 1; i-- { // reversed: Summarise must sort
			out = append(out, time.Duration(i)*time.Millisecond)
		}
		return out
	}
	for _, c := range []struct {
		n             int
		p50, p99, max time.Duration
	}{
		{1, 1 * time.Millisecond, 1 * time.Millisecond, 1 * time.Millisecond},
		{10, 5 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond},
		{100, 50 * time.Millisecond, 99 * time.Millisecond, 100 * time.Millisecond},
		{1000, 500 * time.Millisecond, 990 * time.Millisecond, 1000 * time.Millisecond},
	} {
		got := Summarise(ms(c.n))
		if got.Count != c.n || got.P50 != c.p50 || got.P99 != c.p99 || got.Max != c.max {
			t.Errorf("n=%d: %+v, want p50 %s p99 %s max %s", c.n, got, c.p50, c.p99, c.max)
		}
	}
	if got := Summarise(nil); got != (Stats{}) {
		t.Errorf("empty: %+v", got)
	}
}
