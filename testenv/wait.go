package testenv

import (
	"context"
	"fmt"
	"time"
)

// Wait polls ok every interval until it reports done, returns an error, ctx
// ends or timeout passes; what names the awaited condition in the timeout
// error. It is the harness's one readiness wait: for a gateway to listen, to
// be ready, for a figure to appear.
func Wait(ctx context.Context, timeout, interval time.Duration, what string, ok func() (done bool, err error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, err := ok()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: %s: not within %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testenv: %s: %w", what, ctx.Err())
		case <-time.After(interval):
		}
	}
}
