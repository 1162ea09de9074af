package procstat

import (
	"os"
	"testing"
	"time"
)

func TestReadSelf(t *testing.T) {
	// Burn a little CPU so that utime moves.
	end := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(end) {
	}
	s, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.CPU <= 0 || s.RSS <= 0 || s.HWM < s.RSS {
		t.Fatalf("implausible sample %+v", s)
	}
	if _, err := ReadMachine(); err != nil {
		t.Fatal(err)
	}
}

func TestWatch(t *testing.T) {
	w := NewWatch([]int{os.Getpid()}, map[int]string{os.Getpid(): "self"}, 10*time.Millisecond, true)
	w.Start()
	buf := make([]byte, 32<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	// Ten intervals: Start and Stop take one sample each, so a third one
	// shows that the sampling loop ran.
	time.Sleep(100 * time.Millisecond)
	u := w.Stop()
	if len(u) != 1 || u[0].Name != "self" || u[0].MaxRSS < 32<<20 || len(u[0].RSS) < 3 {
		t.Fatalf("usage %+v", u)
	}
	_ = buf[len(buf)-1]
}
