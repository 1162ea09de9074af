package floor

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/alertgate/gateway/bench/traffic"
	"github.com/alertgate/gateway/internal/localdeps"
)

// The floor claims each alert in Redis: a pool delivered once is created,
// delivered again it is a duplicate.
func TestFloorClaimsInRedis(t *testing.T) {
	rs, err := localdeps.StartRedis(context.Background(), localdeps.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Kill()
	s, err := Start(Options{RedisAddr: rs.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	g, err := traffic.New(traffic.Options{Pool: 50, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	post := func(r traffic.Request) int {
		resp, err := http.Post(s.URL()+r.Path, "application/json", bytes.NewReader(r.Body))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	for _, r := range g.PoolRequests(20) {
		if c := post(r); c != http.StatusCreated {
			t.Fatalf("first delivery: %d", c)
		}
	}
	for range 20 {
		if c := post(g.Next()); c != http.StatusAccepted {
			t.Fatalf("repeat: %d", c)
		}
	}
}
