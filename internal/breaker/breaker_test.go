package breaker

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestOpensAfterConsecutiveFailuresAndProbes(t *testing.T) {
	b := New(Options{Failures: 2, OpenFor: 50 * time.Millisecond})
	boom := errors.New("boom")
	calls := 0
	fail := func() error { calls++; return boom }
	_ = b.Do(fail)
	if b.Open() {
		t.Fatal("open after one failure")
	}
	_ = b.Do(fail)
	if !b.Open() {
		t.Fatal("closed after two consecutive failures")
	}
	if err := b.Do(fail); !errors.Is(err, ErrOpen) || calls != 2 {
		t.Fatalf("open breaker called the dependency (calls %d, err %v)", calls, err)
	}
	time.Sleep(60 * time.Millisecond)
	if err := b.Do(func() error { return nil }); err != nil || b.State() != Closed {
		t.Fatalf("the probe after the open period did not close it: %v %v", err, b.State())
	}
}

func TestCancelledCallerIsNotAFailure(t *testing.T) {
	b := New(Options{Failures: 1})
	_ = b.Do(func() error { return context.Canceled })
	if b.Open() {
		t.Fatal("a caller that gave up opened the breaker")
	}
}
