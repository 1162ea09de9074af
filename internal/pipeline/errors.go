package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Dependency names an external system the gateway needs.
type Dependency string

const (
	Redis      Dependency = "redis"
	Kubernetes Dependency = "kubernetes"
)

// ErrorKind classifies a dependency failure for metrics and logs.
type ErrorKind string

const (
	// KindUnavailable: refused, reset, DNS, TLS or any transport failure.
	KindUnavailable ErrorKind = "unavailable"
	// KindTimeout: the per-dependency timeout expired.
	KindTimeout ErrorKind = "timeout"
	// KindOOM: Redis refused a write because it reached maxmemory.
	KindOOM ErrorKind = "oom"
	// KindBreakerOpen: the circuit breaker refused to call the dependency.
	KindBreakerOpen ErrorKind = "breaker_open"
	// KindOverloaded: the dependency answered 429 or 5xx.
	KindOverloaded ErrorKind = "overloaded"
	// KindRejected: the dependency refused the request as invalid; retrying
	// will not help.
	KindRejected ErrorKind = "rejected"
	// KindInFlight: another request is storing what this one needs (a
	// resolution that overtook its firing occurrence's create); retry.
	KindInFlight ErrorKind = "in_flight"
	// KindConflict: the episode changed under the request (it ended while
	// an occurrence attached to it, or opening kept meeting ended
	// episodes); retry.
	KindConflict ErrorKind = "conflict"
	// KindNotSynced: the gateway has not yet read its episodes from the
	// API server.
	KindNotSynced ErrorKind = "not_synced"
)

// DependencyError is a failure of Redis or the Kubernetes API. Every
// retryable kind becomes 503 with Retry-After.
type DependencyError struct {
	Dependency Dependency
	Op         string
	Kind       ErrorKind
	Err        error
}

func (e *DependencyError) Error() string {
	return fmt.Sprintf("%s %s: %s: %v", e.Dependency, e.Op, e.Kind, e.Err)
}

func (e *DependencyError) Unwrap() error { return e.Err }

// Retryable reports whether the same request may succeed later.
func (e *DependencyError) Retryable() bool { return e.Kind != KindRejected }

// DeadlineError means the request's overall deadline expired before every
// signal was stored: the answer is 504.
type DeadlineError struct {
	// Cause is the dependency error seen when the deadline expired, if any.
	Cause error
}

func (e *DeadlineError) Error() string {
	if e.Cause == nil {
		return "request deadline exceeded"
	}
	return fmt.Sprintf("request deadline exceeded: %v", e.Cause)
}

func (e *DeadlineError) Unwrap() error { return e.Cause }

// AsDependencyError returns the DependencyError in err's chain, if any.
func AsDependencyError(err error) (*DependencyError, bool) {
	var de *DependencyError
	ok := errors.As(err, &de)
	return de, ok
}

// deadlineOr returns a DeadlineError when the request context itself is
// done, so that a per-dependency timeout (503) is told apart from the
// request's own deadline (504).
func deadlineOr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	// A socket deadline set from the context can fire a moment before the
	// context's own timer: compare with the deadline itself too.
	if d, ok := ctx.Deadline(); ctx.Err() != nil || (ok && !time.Now().Before(d)) {
		return &DeadlineError{Cause: err}
	}
	return err
}

// InputKind classifies a request the gateway refuses to read.
type InputKind int

const (
	// Malformed: not valid JSON, or valid JSON that breaks the payload's
	// rules (400).
	Malformed InputKind = iota
	// TooLarge: the body exceeds the configured limit (413).
	TooLarge
	// UnsupportedMedia: the body is declared as something other than JSON
	// (415).
	UnsupportedMedia
	// TimedOut: the body did not arrive within the read timeout (408).
	TimedOut
)

// InputError is a refusal of the request itself; resending it unchanged
// cannot succeed.
type InputError struct {
	Kind InputKind
	// Field is the JSON path of the offending field, e.g.
	// "alerts[2].labels.alertname"; empty when the body as a whole is bad.
	Field  string
	Detail string
}

func (e *InputError) Error() string {
	if e.Field == "" {
		return e.Detail
	}
	return e.Field + ": " + e.Detail
}
