package testenv

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

var shared struct {
	once sync.Once
	env  *Env
	err  error
}

// Shared is one Env for a test binary, started at the first call (at most
// 2 minutes), so that a package's tests that need no control plane run
// without one; it fails tb when the Env cannot start, or when
// KUBEBUILDER_ASSETS is not set (run the tests with
// KUBEBUILDER_ASSETS=$(./hack/test-binaries.sh)). The package's TestMain
// calls StopShared after its tests.
func Shared(tb testing.TB) *Env {
	tb.Helper()
	shared.once.Do(func() {
		if os.Getenv("KUBEBUILDER_ASSETS") == "" {
			shared.err = errors.New("testenv: KUBEBUILDER_ASSETS is not set; run with KUBEBUILDER_ASSETS=$(./hack/test-binaries.sh)")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.env, shared.err = Start(ctx, Options{})
	})
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.env
}

// StopShared stops the Env Shared started, if it did.
func StopShared() {
	if shared.env != nil {
		shared.env.Stop()
	}
}
