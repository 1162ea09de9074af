package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// Any target outside loopback is refused before a request is made.
func TestRefusesNonLoopbackTargets(t *testing.T) {
	for _, u := range []string{"http://10.1.2.3:8080", "http://example.com", "http://192.168.1.10:8080,http://127.0.0.1:8080"} {
		if code := run([]string{"--url", u, "--max-requests", "1", "--duration", "1s"}); code != 1 {
			t.Errorf("--url %s: exit %d, want 1", u, code)
		}
	}
}

// The attack sends the token of --bearer-token-file with every request
// and the --labels sets in every alert, as a gateway with authentication
// on needs them.
func TestSendsTokenAndLabelSets(t *testing.T) {
	var requests, authorized, labelled atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		requests.Add(1)
		if r.Header.Get("Authorization") == "Bearer t0ken" {
			authorized.Add(1)
		}
		var m struct {
			Alerts []struct{ Labels map[string]string }
		}
		ok := json.Unmarshal(b, &m) == nil && len(m.Alerts) > 0
		for _, a := range m.Alerts {
			ok = ok && (a.Labels["region"] == "eu" && a.Labels["team"] == "sre" || a.Labels["region"] == "us")
		}
		if ok {
			labelled.Add(1)
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--url", srv.URL, "--max-requests", "20", "--duration", "10s", "--pool", "50", "--bearer-token-file", token,
		"--labels", "region=eu,team=sre", "--labels", "region=us"}
	if code := run(args); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if n := requests.Load(); n != 20 || authorized.Load() != n || labelled.Load() != n {
		t.Fatalf("%d requests, %d with the token, %d with a label set on every alert", n, authorized.Load(), labelled.Load())
	}
	if code := run([]string{"--url", srv.URL, "--max-requests", "1", "--bearer-token-file", filepath.Join(t.TempDir(), "missing")}); code != 1 {
		t.Errorf("a missing token file: exit %d, want 1", code)
	}
}
