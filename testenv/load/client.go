package load

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alertgate/gateway/internal/pipeline"
)

// Record is one request and its answer.
type Record struct {
	Seq     int    `json:"seq"`
	Gateway string `json:"gateway"`
	// Sender is the Proxy that recorded the request (a sender the harness
	// does not control, such as a real Alertmanager); empty when the
	// Client sent it.
	Sender string `json:"sender,omitempty"`
	// GroupKey is the webhook's groupKey: which Alertmanager group the
	// notification is of. Empty for an Event.
	GroupKey string        `json:"groupKey,omitempty"`
	Signals  []Signal      `json:"signals"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration"`
	// Status is the HTTP status; 0 when no answer came (transport error).
	Status     int                `json:"status"`
	RetryAfter string             `json:"retryAfter,omitempty"`
	RequestID  string             `json:"requestId,omitempty"`
	Err        string             `json:"error,omitempty"`
	Outcomes   []pipeline.Outcome `json:"outcomes,omitempty"`
	// Attempt is the try's number: counted by the Client's retry policies;
	// for a Proxy, inferred as the number of identical bodies forwarded in
	// a row without a final answer (see final), since the sender's retries
	// are invisible otherwise.
	Attempt int `json:"attempt"`
}

// Acknowledged reports whether the gateway said the signals are stored.
func (r *Record) Acknowledged() bool { return r.Status >= 200 && r.Status < 300 }

// Client sends webhooks and Events and records every exchange, its own and
// those of the Proxies made with NewProxy, in one sequence.
type Client struct {
	http *http.Client
	tr   *http.Transport

	open atomic.Int64
	seq  atomic.Int64

	mu      sync.Mutex
	records []Record
	// OnRecord, when set, sees each record as it is made (progress).
	OnRecord func(Record)
}

// NewClient returns a Client whose requests give up after timeout, so that
// a hanging gateway shows as a transport error instead of a stuck test.
func NewClient(timeout time.Duration) *Client {
	c := &Client{}
	d := &net.Dialer{Timeout: time.Second}
	c.tr = &http.Transport{
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			c.open.Add(1)
			return &countedConn{Conn: conn, open: &c.open}, nil
		},
	}
	c.http = &http.Client{Transport: c.tr, Timeout: timeout}
	return c
}

// OpenConns is the number of connections the client has open.
func (c *Client) OpenConns() int64 { return c.open.Load() }

// Close closes idle connections.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// Send posts signals as one request to a gateway's base URL: alerts as one
// webhook to PathPrometheus, or a single Event to PathEvent. Any other mix
// panics (a caller's bug): split it with Batches.
func (c *Client) Send(ctx context.Context, baseURL string, signals []Signal) Record {
	return c.send(ctx, baseURL, signals, 1)
}

// The retry policies below are the two ways the harness's senders retry a
// delivery that was not stored. Both stop at a 2xx or a 4xx (Alertmanager
// never retries a 4xx), and return every attempt or the last one.

// SendUntilStored retries on 5xx and transport errors until a 2xx or
// attempts run out, backoff apart, to one gateway: a sender that insists.
// It returns every attempt; ctx ends the waiting and the request under way.
func (c *Client) SendUntilStored(ctx context.Context, baseURL string, signals []Signal, attempts int, backoff time.Duration) []Record {
	var out []Record
	for i := 1; i <= attempts; i++ {
		r := c.send(ctx, baseURL, signals, i)
		out = append(out, r)
		if final(r) {
			break
		}
		select {
		case <-ctx.Done():
			return out
		case <-time.After(backoff):
		}
	}
	return out
}

// SendBackoff sends signals as Alertmanager does: after a 5xx or no answer
// it tries the next of baseURLs (starting after the first-th) after a
// backoff doubling from 100 ms to 2 s, until a 2xx or 4xx, until attempts
// are spent, or until the next try would start after until (zero: no
// limit) or ctx ends. It returns the last answer; ctx ends the waiting,
// never a request under way.
func (c *Client) SendBackoff(ctx context.Context, baseURLs []string, first int, signals []Signal, attempts int, until time.Time) Record {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		r := c.send(context.WithoutCancel(ctx), baseURLs[(first+attempt)%len(baseURLs)], signals, attempt)
		next := time.Now().Add(backoff)
		if final(r) || attempt >= attempts || (!until.IsZero() && next.After(until)) {
			return r
		}
		select {
		case <-ctx.Done():
			return r
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// final reports whether a sender stops retrying after r.
func final(r Record) bool { return r.Acknowledged() || (r.Status >= 400 && r.Status < 500) }

func (c *Client) send(ctx context.Context, baseURL string, signals []Signal, attempt int) Record {
	path, body, key := request(signals)
	r := Record{Seq: int(c.seq.Add(1)), Gateway: baseURL, GroupKey: key, Signals: signals, Attempt: attempt}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+path, bytes.NewReader(body))
	if err != nil {
		r.Err = err.Error()
		return c.add(r)
	}
	req.Header.Set("Content-Type", "application/json")
	r.Start = time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		r.Duration = time.Since(r.Start)
		r.Err = err.Error()
		return c.add(r)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	r.Duration = time.Since(r.Start)
	answer(&r, resp, b)
	return c.add(r)
}

// answer fills r from the gateway's answer.
func answer(r *Record, resp *http.Response, body []byte) {
	r.Status = resp.StatusCode
	r.RetryAfter = resp.Header.Get("Retry-After")
	r.RequestID = resp.Header.Get("X-Request-ID")
	if r.Acknowledged() {
		var b struct {
			Signals []pipeline.Outcome `json:"signals"`
		}
		if err := json.Unmarshal(body, &b); err == nil {
			r.Outcomes = b.Signals
		}
	} else {
		r.Err = string(body)
	}
}

// add records r; r.Seq must come from c.seq.
func (c *Client) add(r Record) Record {
	c.mu.Lock()
	c.records = append(c.records, r)
	c.mu.Unlock()
	if c.OnRecord != nil {
		c.OnRecord(r)
	}
	return r
}

// Records returns every record so far, in start order.
func (c *Client) Records() []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]Record(nil), c.records...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

type countedConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.open.Add(-1) })
	return c.Conn.Close()
}
