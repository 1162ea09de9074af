// Package breaker wraps sony/gobreaker with the gateway's policy: open after
// a few consecutive failures, stay open briefly (so a returning dependency
// is used again within about a second), and count only the dependency's own
// failures, not a caller that gave up.
package breaker

import (
	"context"
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"
)

// ErrOpen is returned without calling the dependency while the breaker is
// open, or while its half-open probe is in flight.
var ErrOpen = errors.New("circuit breaker open")

// Defaults of Options.
const (
	DefaultFailures = 3
	DefaultOpenFor  = time.Second
)

// Options configure a Breaker.
type Options struct {
	// Name appears in metrics and logs.
	Name string
	// Failures is the number of consecutive failures that opens the
	// breaker. Default: 3.
	Failures uint32
	// OpenFor is how long the breaker stays open before one probe call is
	// let through. Default: 1s.
	OpenFor time.Duration
	// IsFailure decides whether an error counts against the dependency.
	// Default: every error except context.Canceled.
	IsFailure func(error) bool
	// OnStateChange is called on every transition. Default: none.
	OnStateChange func(name string, from, to State)
}

// State of a breaker.
type State = gobreaker.State

// States, re-exported so callers need not import gobreaker.
const (
	Closed   = gobreaker.StateClosed
	HalfOpen = gobreaker.StateHalfOpen
	Open     = gobreaker.StateOpen
)

// Breaker guards calls to one dependency.
type Breaker struct {
	cb *gobreaker.CircuitBreaker[struct{}]
}

// New returns a closed Breaker.
func New(o Options) *Breaker {
	if o.Failures == 0 {
		o.Failures = DefaultFailures
	}
	if o.OpenFor <= 0 {
		o.OpenFor = DefaultOpenFor
	}
	isFailure := o.IsFailure
	if isFailure == nil {
		isFailure = func(err error) bool { return !errors.Is(err, context.Canceled) }
	}
	s := gobreaker.Settings{
		Name:        o.Name,
		MaxRequests: 1,
		Timeout:     o.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= o.Failures },
		IsSuccessful: func(err error) bool {
			return err == nil || !isFailure(err)
		},
	}
	if o.OnStateChange != nil {
		s.OnStateChange = func(name string, from, to gobreaker.State) { o.OnStateChange(name, from, to) }
	}
	return &Breaker{cb: gobreaker.NewCircuitBreaker[struct{}](s)}
}

// Do calls fn unless the breaker is open.
func (b *Breaker) Do(fn func() error) error {
	_, err := b.cb.Execute(func() (struct{}, error) { return struct{}{}, fn() })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return ErrOpen
	}
	return err
}

// State returns the current state.
func (b *Breaker) State() State { return b.cb.State() }

// Open reports whether calls are currently refused.
func (b *Breaker) Open() bool { return b.cb.State() == gobreaker.StateOpen }

// Call runs fn through the breaker with its own timeout below ctx: the one
// way the gateway calls a dependency.
func (b *Breaker) Call(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	return b.Do(func() error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return fn(ctx)
	})
}
