package app

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
)

// failFast makes client-go answer at once what the API server answered.
// client-go retries by itself, up to ten times with a second between
// tries, a GET that met a reset connection or an EOF, and any request
// answered 429 or 5xx with Retry-After — inside a call the gateway bounds
// with its own timeout, so that a read during an API outage would take
// the whole request deadline. The gateway retries nothing itself: the
// sender retries its 503.
type failFast struct{ next http.RoundTripper }

func (f failFast) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.next.RoundTrip(req)
	if err != nil {
		return nil, &transportError{err: err}
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		resp.Header.Del("Retry-After")
	}
	return resp, nil
}

// transportError carries a transport failure without letting client-go
// recognise it as one to retry (it matches io.EOF and a few messages).
// It is still a net.Error, so that timeouts are classified as such, and a
// cancelled or expired context is still one.
type transportError struct{ err error }

// retried are the phrases client-go retries a GET on.
var retried = strings.NewReplacer("connection reset by peer", "connection reset (by peer)",
	"use of closed network connection", "use of closed connection", "http2: server sent GOAWAY and closed the connection",
	"http2: server sent GOAWAY", "http: can't write HTTP request on broken connection", "http: request on broken connection")

func (e *transportError) Error() string {
	if errors.Is(e.err, io.EOF) || errors.Is(e.err, io.ErrUnexpectedEOF) {
		return "transport: connection closed by the server (EOF)"
	}
	return "transport: " + retried.Replace(e.err.Error())
}

func (e *transportError) Timeout() bool {
	var ne net.Error
	return errors.As(e.err, &ne) && ne.Timeout()
}

func (e *transportError) Temporary() bool { return false }

// Is lets a context error through; anything else stays opaque.
func (e *transportError) Is(target error) bool {
	return (target == context.Canceled || target == context.DeadlineExceeded) && errors.Is(e.err, target)
}
