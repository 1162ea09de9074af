package load

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// gateway answers 503 to the first fails requests, then code.
func gateway(t *testing.T, fails int64, code int) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= fails {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

var sigs = []Signal{{Name: "KubePodCrashLooping", Namespace: "ns", Pod: "p"}}

func TestSendUntilStoredStopsAtAnAnswerThatEndsRetries(t *testing.T) {
	for _, c := range []struct {
		code, attempts int
	}{{201, 3}, {400, 3}} {
		srv, n := gateway(t, 2, c.code)
		c2 := NewClient(time.Second)
		rs := c2.SendUntilStored(context.Background(), srv.URL, sigs, 10, time.Millisecond)
		if len(rs) != c.attempts || rs[len(rs)-1].Status != c.code || n.Load() != int64(c.attempts) || rs[2].Attempt != 3 {
			t.Errorf("answer %d after two 503s: %d attempts %+v, server saw %d", c.code, len(rs), rs, n.Load())
		}
		if got := len(c2.Records()); got != c.attempts {
			t.Errorf("%d records, want every attempt", got)
		}
	}
	srv, n := gateway(t, 100, 201)
	if rs := NewClient(time.Second).SendUntilStored(context.Background(), srv.URL, sigs, 4, time.Millisecond); len(rs) != 4 || n.Load() != 4 {
		t.Errorf("attempts not bounded: %d", len(rs))
	}
}

// Alertmanager's policy: each retry to the next gateway, backoff doubling
// from 100 ms.
func TestSendBackoffRotatesAndBacksOff(t *testing.T) {
	a, na := gateway(t, 100, 201)
	b, nb := gateway(t, 0, 201)
	start := time.Now()
	r := NewClient(time.Second).SendBackoff(context.Background(), []string{a.URL, b.URL}, 1, sigs, 10, time.Time{})
	// first = 1: the first try goes to gateway 0 (a, 503), the second to b.
	if r.Status != 201 || r.Attempt != 2 || na.Load() != 1 || nb.Load() != 1 {
		t.Fatalf("answer %+v; a saw %d, b %d", r, na.Load(), nb.Load())
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("retried after %s, before the 100 ms backoff", d)
	}
	if r := NewClient(time.Second).SendBackoff(context.Background(), []string{a.URL}, 0, sigs, 3, time.Time{}); r.Attempt != 3 || r.Status != 503 {
		t.Errorf("attempts not bounded: %+v", r)
	}
	if r := NewClient(time.Second).SendBackoff(context.Background(), []string{a.URL}, 0, sigs, 100, time.Now().Add(50*time.Millisecond)); r.Attempt != 1 {
		t.Errorf("a retry started after until: %+v", r)
	}
}
