package run

import (
	"regexp"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2/stream"
	"go.uber.org/goleak"
)

// A Toxiproxy link reader stalled on a stage that no longer reads is the
// environment's, not a gateway's (random mode reported it as a leak, seeds
// 6 and 7); any other blocked goroutine still is one.
func TestLeaksIgnoreOnlyTheEnvironment(t *testing.T) {
	baseline := goleak.IgnoreCurrent()
	stalled := make(chan *stream.StreamChunk) // nobody reads it
	go func() { _, _ = stream.NewChanWriter(stalled).Write([]byte("PING\r\n")) }()
	mine := make(chan struct{})
	defer close(mine)
	go func() { <-mine }()
	time.Sleep(50 * time.Millisecond)

	reported := func(opts ...goleak.Option) int {
		err := goleak.Find(append([]goleak.Option{baseline}, opts...)...)
		if err == nil {
			return 0
		}
		return len(regexp.MustCompile(`Goroutine \d+ in state`).FindAllString(err.Error(), -1))
	}
	if n := reported(); n != 2 {
		t.Fatalf("%d goroutines reported without ignores, want 2 (the stalled reader and ours)", n)
	}
	if n := reported(notTheGateways...); n != 1 {
		t.Errorf("%d goroutines reported, want only ours: the stalled Toxiproxy reader is not a gateway's", n)
	}
}
