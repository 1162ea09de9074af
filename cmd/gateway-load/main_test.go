package main

import "testing"

// Any target outside loopback is refused before a request is made.
func TestRefusesNonLoopbackTargets(t *testing.T) {
	for _, u := range []string{"http://10.1.2.3:8080", "http://example.com", "http://192.168.1.10:8080,http://127.0.0.1:8080"} {
		if code := run([]string{"--url", u, "--max-requests", "1", "--duration", "1s"}); code != 1 {
			t.Errorf("--url %s: exit %d, want 1", u, code)
		}
	}
}
