package testenv

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	n := 0
	if err := Wait(context.Background(), time.Second, time.Millisecond, "third poll", func() (bool, error) { n++; return n == 3, nil }); err != nil || n != 3 {
		t.Fatalf("done on the third poll: %v after %d polls", err, n)
	}
	if err := Wait(context.Background(), 20*time.Millisecond, time.Millisecond, "never", func() (bool, error) { return false, nil }); err == nil || !strings.Contains(err.Error(), "never: not within 20ms") {
		t.Fatalf("timeout: %v", err)
	}
	boom := errors.New("boom")
	if err := Wait(context.Background(), time.Second, time.Millisecond, "x", func() (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Fatalf("error from the condition: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Wait(ctx, time.Minute, time.Millisecond, "x", func() (bool, error) { return false, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
