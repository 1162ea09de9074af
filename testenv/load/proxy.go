package load

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is an HTTP server on loopback that forwards every request to a
// gateway and records each exchange in its Client's list, in the Client's
// sequence, as the Client records its own: the way to see what a sender
// the harness does not control (a real Alertmanager) delivered and how it
// was answered. The signals are read back from the forwarded body
// (webhook or Event), the outcomes from the gateway's answer, which the
// sender gets unchanged; a gateway that does not answer is a record with
// status 0 and a 502 to the sender.
type Proxy struct {
	c    *Client
	name string
	ln   net.Listener
	srv  *http.Server
	tr   *http.Transport
	fwd  *http.Client
	up   atomic.Int64 // open connections to gateways
	down atomic.Int64 // open connections from senders
	n    atomic.Uint64

	mu      sync.Mutex
	targets []string
	closed  bool
	pending map[[sha256.Size]byte]int // identical bodies forwarded without a final answer
	wg      sync.WaitGroup
}

// maxProxyBody bounds a forwarded body; the gateway's own limit is 1 MiB.
const maxProxyBody = 8 << 20

// NewProxy starts a Proxy named name (its records' Sender) on
// 127.0.0.1:0 that forwards to the gateway base URL targets: always to the
// one given, or to several in turn, one request each. An HA pair of
// Alertmanagers each pointed at its own replica has one Proxy per
// Alertmanager with one target each.
func (c *Client) NewProxy(name string, targets ...string) (*Proxy, error) {
	if len(targets) == 0 {
		return nil, errors.New("load: proxy needs a gateway URL")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{c: c, name: name, ln: ln, targets: append([]string(nil), targets...), pending: map[[sha256.Size]byte]int{}}
	d := &net.Dialer{Timeout: time.Second}
	p.tr = &http.Transport{
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
		TLSClientConfig:     c.tr.TLSClientConfig,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			p.up.Add(1)
			return &countedConn{Conn: conn, open: &p.up}, nil
		},
	}
	p.fwd = &http.Client{Transport: p.tr, Timeout: c.http.Timeout}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 5 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				p.down.Add(1)
			case http.StateClosed, http.StateHijacked:
				p.down.Add(-1)
			}
		},
	}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is the Proxy's base URL; a sender posts to URL()+PathPrometheus or
// URL()+PathEvent as it would to a gateway.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Name is its records' Sender.
func (p *Proxy) Name() string { return p.name }

// SetTargets changes where the next requests go, as a Service's endpoints
// change.
func (p *Proxy) SetTargets(targets ...string) {
	if len(targets) == 0 {
		panic("load: proxy needs a gateway URL")
	}
	p.mu.Lock()
	p.targets = append([]string(nil), targets...)
	p.mu.Unlock()
}

// OpenConns is the number of connections the Proxy has open, to senders
// and to gateways.
func (p *Proxy) OpenConns() int64 { return p.up.Load() + p.down.Load() }

// Close stops the Proxy: it refuses new requests, closes every
// connection, which cancels the forwards under way, and waits for them
// to be recorded and for the connections to be gone (at most 2 s).
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.srv.Close()
	p.wg.Wait()
	p.tr.CloseIdleConnections()
	// The server's connections count as closed when their goroutines
	// notice; that takes a scheduling round.
	for i := 0; i < 200 && p.OpenConns() > 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *Proxy) target() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.targets[int(p.n.Add(1)-1)%len(p.targets)]
}

// attempt counts identical bodies in a row until a final answer: the
// sender's retries, which it does not number.
func (p *Proxy) attempt(path string, body []byte, done bool) int {
	k := sha256.Sum256(append([]byte(path+"\n"), body...))
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) > 1024 { // senders that gave up
		clear(p.pending)
	}
	p.pending[k]++
	n := p.pending[k]
	if done {
		delete(p.pending, k)
	}
	return n
}

// hopHeaders are not forwarded (RFC 9110, 7.6.1).
var hopHeaders = map[string]bool{"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true}

func copyHeaders(dst, src http.Header) {
	for k, vs := range src {
		if !hopHeaders[http.CanonicalHeaderKey(k)] {
			dst[k] = append([]string(nil), vs...)
		}
	}
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		http.Error(w, "load: proxy closed", http.StatusServiceUnavailable)
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()

	body, err := io.ReadAll(io.LimitReader(req.Body, maxProxyBody+1))
	if err != nil || len(body) > maxProxyBody {
		http.Error(w, fmt.Sprintf("load: proxy: reading the body: %v (limit %d bytes)", err, maxProxyBody), http.StatusBadRequest)
		return
	}
	target := p.target()
	sigs, key, perr := parseRequest(req.URL.Path, body)
	r := Record{Seq: int(p.c.seq.Add(1)), Gateway: target, Sender: p.name, GroupKey: key, Signals: sigs}
	out, err := http.NewRequestWithContext(req.Context(), req.Method, target+req.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		r.Err = err.Error()
		p.c.add(r)
		http.Error(w, "load: proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	copyHeaders(out.Header, req.Header)
	r.Start = time.Now()
	resp, err := p.fwd.Do(out)
	if err != nil {
		r.Duration = time.Since(r.Start)
		r.Err = err.Error()
		r.Attempt = p.attempt(req.URL.Path, body, false)
		p.c.add(r)
		http.Error(w, "load: proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	r.Duration = time.Since(r.Start)
	answer(&r, resp, b)
	if perr != nil && r.Err == "" {
		r.Err = "load: proxy could not read the signals: " + perr.Error()
	}
	r.Attempt = p.attempt(req.URL.Path, body, final(r))
	// Recorded before the sender has its answer, so that a test that saw
	// the sender act on it finds the record.
	p.c.add(r)
	copyHeaders(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(b)
}
