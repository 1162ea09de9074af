package localdeps

import (
	"context"
	"testing"
)

// Freeze returns only once every thread is stopped (kill returns before,
// and a request sent at once was answered by a "paused" process), and a
// frozen redis-server answers nothing until Thaw.
func TestFreezeStopsEveryThread(t *testing.T) {
	r, err := StartRedis(context.Background(), RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Kill()
	for i := 0; i < 20; i++ {
		if err := Freeze(r.PID()); err != nil {
			t.Fatal(err)
		}
		if stopped, err := allStopped(r.PID()); err != nil || !stopped {
			t.Fatalf("round %d: Freeze returned with a thread still running (err %v)", i, err)
		}
		if i == 0 && ping(r.Addr()) == nil {
			t.Fatal("a frozen redis-server answered PING")
		}
		if err := Thaw(r.PID()); err != nil {
			t.Fatal(err)
		}
	}
	if err := ping(r.Addr()); err != nil {
		t.Fatalf("a thawed redis-server does not answer: %v", err)
	}
}
