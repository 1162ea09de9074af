package attack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestCheckLoopback(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080", "http://127.5.0.1/x", "http://localhost:1", "http://[::1]:80"} {
		if err := CheckLoopback(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	for _, u := range []string{"http://10.0.0.1:8080", "http://192.168.1.1", "http://example.com", "http://0.0.0.0:8080", "ftp://127.0.0.1", "http://127.0.0.1.nip.io"} {
		if err := CheckLoopback(u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
}

func static(url string) vegeta.Targeter {
	return func(t *vegeta.Target) error {
		t.Method, t.URL = http.MethodPost, url
		t.Body = []byte(`{}`)
		return nil
	}
}

func TestClosedLoopBoundedByCount(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%5 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	r, err := Run(context.Background(), Options{Targeter: static(srv.URL), Connections: 4, MaxRequests: 50, Duration: 10 * time.Second,
		Watch: map[int]string{os.Getpid(): "self"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 50 || r.Codes[202] != 40 || r.Codes[503] != 10 || n.Load() != 50 {
		t.Fatalf("report %+v, server saw %d", r, n.Load())
	}
	if len(r.Processes) != 1 || r.Processes[0].PeakRSS == 0 {
		t.Fatalf("processes %+v", r.Processes)
	}
	t.Log(r.Text())
}

// The bearer token goes with every request, without changing the
// targeter's shared headers.
func TestBearerToken(t *testing.T) {
	var with, without atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer s3cret" && r.Header.Get("Content-Type") == "application/json" {
			with.Add(1)
		} else {
			without.Add(1)
		}
	}))
	defer srv.Close()
	shared := http.Header{"Content-Type": []string{"application/json"}}
	tr := func(t *vegeta.Target) error {
		t.Method, t.URL, t.Header = http.MethodPost, srv.URL, shared
		return nil
	}
	if _, err := Run(context.Background(), Options{Targeter: tr, Connections: 2, MaxRequests: 10, Duration: 10 * time.Second, BearerToken: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	if with.Load() != 10 || without.Load() != 0 || shared.Get("Authorization") != "" {
		t.Fatalf("%d requests with the token, %d without; shared header %v", with.Load(), without.Load(), shared)
	}
}

func TestFixedRateBoundedByTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	r, err := Run(context.Background(), Options{Targeter: static(srv.URL), Rate: 100, Duration: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The bound is the point: never more than the rate allows in the
	// duration. Fewer is the machine being busy (the race detector, CI).
	if r.Requests < 1 || r.Requests > 51 {
		t.Fatalf("%d requests at 100/s for 0.5s, want 1 to 51", r.Requests)
	}
}

func TestRefusesNonLoopbackTarget(t *testing.T) {
	_, err := Run(context.Background(), Options{Targeter: static("http://192.0.2.1:8080/x"), MaxRequests: 1, Duration: time.Second})
	if err == nil || !strings.Contains(err.Error(), ErrNotLoopback.Error()) {
		t.Fatalf("non-loopback target: %v", err)
	}
}
