package scenario

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/alertgate/gateway/testenv/load"
)

// Sender sends a scenario's signals to its gateways, gateway i being
// Gateways[i mod len], through one load client that records every request
// and its answer (the history the checks read), and retries them as
// Alertmanager would.
type Sender struct {
	t         *T
	client    *load.Client
	namespace string

	mu  sync.Mutex
	seq int
}

func (s *Sender) url(i int) string { return s.t.Gateways[i%len(s.t.Gateways)].URL }

// Namespace is where the scenario's signals and resources live.
func (s *Sender) Namespace() string { return s.namespace }

// Signals makes n new signals unique to this scenario and call.
func (s *Sender) Signals(name string, n int) []load.Signal {
	s.mu.Lock()
	s.seq++
	prefix := fmt.Sprintf("pod-%d", s.seq)
	s.mu.Unlock()
	return load.Pods(name, s.namespace, prefix, n, time.Now().Truncate(time.Second))
}

// Send sends signals as one webhook to gateway i.
func (s *Sender) Send(i int, sigs []load.Signal) load.Record {
	return s.client.Send(s.t.Ctx, s.url(i), sigs)
}

// SendEach sends each signal as its own webhook to gateway i, one after
// the other.
func (s *Sender) SendEach(i int, sigs []load.Signal) []load.Record {
	out := make([]load.Record, len(sigs))
	for k, sig := range sigs {
		out[k] = s.Send(i, []load.Signal{sig})
	}
	return out
}

// SendSpaced sends each signal as its own webhook, gap apart.
func (s *Sender) SendSpaced(i int, sigs []load.Signal, gap time.Duration) []load.Record {
	out := make([]load.Record, len(sigs))
	for k, sig := range sigs {
		if k > 0 {
			time.Sleep(gap)
		}
		out[k] = s.Send(i, []load.Signal{sig})
	}
	return out
}

// Concurrently runs n sends at once and returns their records.
func (s *Sender) Concurrently(n int, send func(i int) load.Record) []load.Record {
	out := make([]load.Record, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = send(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// Retry sends signals to gateway i until stored (load.SendUntilStored: 60
// attempts, 250 ms apart) and returns the last answer.
func (s *Sender) Retry(i int, sigs []load.Signal) load.Record {
	rs := s.client.SendUntilStored(s.t.Ctx, s.url(i), sigs, 60, 250*time.Millisecond)
	return rs[len(rs)-1]
}

// RetryBackoff sends sigs as Alertmanager does (load.SendBackoff), the
// first try to gateway i+1, each retry to the next gateway.
func (s *Sender) RetryBackoff(ctx context.Context, i int, sigs []load.Signal, attempts int, until time.Time) load.Record {
	urls := make([]string, len(s.t.Gateways))
	for k, g := range s.t.Gateways {
		urls[k] = g.URL
	}
	return s.client.SendBackoff(ctx, urls, i, sigs, attempts, until)
}

// History is every request so far with its answer, in start order.
func (s *Sender) History() []load.Record { return s.client.Records() }

// statuses lists the status of each record, sorted.
func statuses(rs []load.Record) string {
	var out []int
	for _, r := range rs {
		out = append(out, r.Status)
	}
	slices.Sort(out)
	return fmt.Sprint(out)
}
