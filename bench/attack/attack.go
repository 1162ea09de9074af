// Package attack runs one bounded vegeta attack against loopback targets
// and summarises it: throughput, exact latency quantiles (overall and per
// status code), status counts, and the CPU and memory the watched
// processes used meanwhile.
package attack

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/alertgate/gateway/bench/procstat"
)

// Options configure an attack.
type Options struct {
	// Targeter makes each request; its URLs must be on a loopback
	// address (checked for every request).
	Targeter vegeta.Targeter
	// Rate is requests per second; 0 runs closed-loop: Connections
	// workers each send a request as soon as the previous one answered.
	// Default: 0.
	Rate int
	// Connections is the number of workers and of connections in
	// closed-loop mode; at a fixed rate it bounds both (vegeta adds
	// workers while answers are slow). Default: 10.
	Connections int
	// Duration bounds the attack. Default: 10s; at most 1h.
	Duration time.Duration
	// MaxRequests bounds the number of requests. Default: 0 (Duration
	// only).
	MaxRequests uint64
	// Timeout bounds each request. Default: 30s.
	Timeout time.Duration
	// Watch are the processes whose CPU and memory are reported, with
	// their names. Default: none.
	Watch map[int]string
	// KeepRSS keeps the RSS samples of watched processes. Default: false.
	KeepRSS bool
	// KeepSamples keeps every request's start, latency and status.
	// Default: false.
	KeepSamples bool
	// BearerToken is sent as "Authorization: Bearer <token>" with every
	// request, as a sender of a gateway with authentication on sends it.
	// Default: none.
	BearerToken string
	// Name labels the attack in reports.
	Name string
}

// MaxDuration bounds any attack.
const MaxDuration = time.Hour

func (o *Options) setDefaults() error {
	if o.Targeter == nil {
		return errors.New("attack: no targeter")
	}
	if o.Connections <= 0 {
		o.Connections = 10
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Duration > MaxDuration {
		return fmt.Errorf("attack: duration %s over the %s bound", o.Duration, MaxDuration)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Rate < 0 {
		return fmt.Errorf("attack: negative rate %d", o.Rate)
	}
	return nil
}

// ErrNotLoopback refuses a target outside this machine.
var ErrNotLoopback = errors.New("only loopback targets (127.0.0.0/8, ::1, localhost) are allowed")

// CheckLoopback returns an error unless rawURL is an http URL whose host is
// a loopback address or "localhost". Names are not resolved: a name that
// resolves to loopback today may not tomorrow.
func CheckLoopback(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("attack: target %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("attack: target %q: scheme %q is not http or https", rawURL, u.Scheme)
	}
	if !loopbackHost(u.Hostname()) {
		return fmt.Errorf("attack: target %q: host %q: %w", rawURL, u.Hostname(), ErrNotLoopback)
	}
	return nil
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// targeter checks each target's URL before vegeta sends it, and adds the
// bearer token.
func targeter(o Options) vegeta.Targeter {
	return func(t *vegeta.Target) error {
		if err := o.Targeter(t); err != nil {
			return err
		}
		if o.BearerToken != "" {
			// Targeters share one header map between targets.
			t.Header = t.Header.Clone()
			if t.Header == nil {
				t.Header = http.Header{}
			}
			t.Header.Set("Authorization", "Bearer "+o.BearerToken)
		}
		return CheckLoopback(t.URL)
	}
}

// client never leaves loopback: no proxy from the environment, no
// redirects, and a dialer that refuses any other address.
func client(o Options) *http.Client {
	d := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if !loopbackHost(host) {
				return nil, fmt.Errorf("attack: dial %s: %w", addr, ErrNotLoopback)
			}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if ta, ok := c.RemoteAddr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
				_ = c.Close()
				return nil, fmt.Errorf("attack: %s resolved to %s: %w", addr, c.RemoteAddr(), ErrNotLoopback)
			}
			return c, nil
		},
		MaxIdleConnsPerHost: o.Connections,
		MaxConnsPerHost:     o.Connections,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Quantiles of a latency distribution, in milliseconds.
type Quantiles struct {
	Count int     `json:"count"`
	Mean  float64 `json:"meanMs"`
	P50   float64 `json:"p50Ms"`
	P95   float64 `json:"p95Ms"`
	P99   float64 `json:"p99Ms"`
	Max   float64 `json:"maxMs"`
}

// Of returns the quantiles of ds (nearest rank).
func Of(ds []time.Duration) Quantiles {
	if len(ds) == 0 {
		return Quantiles{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	q := func(p float64) float64 {
		i := int(p*float64(len(s))+0.999999) - 1
		i = max(0, min(i, len(s)-1))
		return ms(s[i])
	}
	return Quantiles{Count: len(s), Mean: ms(sum / time.Duration(len(s))), P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Sample is one request.
type Sample struct {
	Start   time.Time     `json:"start"`
	Latency time.Duration `json:"latency"`
	// Code is the HTTP status; 0 for a transport error.
	Code int `json:"code"`
}

// End is when the answer arrived.
func (s Sample) End() time.Time { return s.Start.Add(s.Latency) }

// Report summarises an attack.
type Report struct {
	Name        string    `json:"name,omitempty"`
	Start       time.Time `json:"start"`
	Rate        int       `json:"rate"`
	Connections int       `json:"connections"`
	// Seconds is the wall time from the first request to the last answer.
	Seconds  float64 `json:"seconds"`
	Requests int     `json:"requests"`
	// Throughput is answered requests per second (any status).
	Throughput float64 `json:"throughput"`
	// Success counts 2xx answers; SuccessRate is their rate per second.
	Success     int               `json:"success"`
	SuccessRate float64           `json:"successRate"`
	Latency     Quantiles         `json:"latency"`
	ByCode      map[int]Quantiles `json:"byCode"`
	Codes       map[int]int       `json:"codes"`
	Errors      map[string]int    `json:"errors,omitempty"`
	BytesIn     uint64            `json:"bytesIn"`
	BytesOut    uint64            `json:"bytesOut"`
	Processes   []procstat.Usage  `json:"processes,omitempty"`
	// MachineCores is the average number of busy cores of the whole
	// machine during the attack (from /proc/stat): more than the watched
	// processes' sum means other work shared the CPU.
	MachineCores float64  `json:"machineCores"`
	Samples      []Sample `json:"samples,omitempty"`
	byCode       map[int][]time.Duration
}

// Run attacks until Duration, MaxRequests, ctx or the targeter (returning
// vegeta.ErrNoTargets) ends it.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	opts := []func(*vegeta.Attacker){
		vegeta.Client(client(o)),
		vegeta.Workers(uint64(o.Connections)),
		vegeta.MaxWorkers(uint64(o.Connections)),
		vegeta.KeepAlive(true),
	}
	if o.Rate > 0 {
		// At a fixed rate vegeta starts with few workers and adds them
		// while answers lag; Connections bounds them.
		opts[1] = vegeta.Workers(uint64(min(o.Connections, 10)))
	}
	atk := vegeta.NewAttacker(opts...)
	var pacer vegeta.Pacer = vegeta.ConstantPacer{Freq: o.Rate, Per: time.Second}
	if o.MaxRequests > 0 {
		inner := pacer
		pacer = bounded{Pacer: inner, max: o.MaxRequests}
	}
	var watch *procstat.Watch
	if len(o.Watch) > 0 {
		watch = procstat.NewWatch(slices.Sorted(maps.Keys(o.Watch)), o.Watch, 0, o.KeepRSS)
		watch.Start()
	}
	machine, _ := procstat.ReadMachine()
	r := &Report{Name: o.Name, Start: time.Now(), Rate: o.Rate, Connections: o.Connections,
		Codes: map[int]int{}, Errors: map[string]int{}, ByCode: map[int]Quantiles{}, byCode: map[int][]time.Duration{}}
	var all []time.Duration
	var first, last time.Time
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	for res := range atk.Attack(targeter(o), pacer, o.Duration, o.Name) {
		if res.Error != "" && res.Code == 0 && (res.Method == "" || strings.Contains(res.Error, ErrNotLoopback.Error())) {
			// The targeter stopped the attack (no more targets) or
			// refused a target: nothing was sent.
			if strings.Contains(res.Error, ErrNotLoopback.Error()) {
				atk.Stop()
				return nil, errors.New(res.Error)
			}
			continue
		}
		if first.IsZero() || res.Timestamp.Before(first) {
			first = res.Timestamp
		}
		if e := res.End(); e.After(last) {
			last = e
		}
		code := int(res.Code)
		r.Requests++
		r.Codes[code]++
		if code >= 200 && code < 300 {
			r.Success++
		}
		if code == 0 {
			r.Errors[trim(res.Error)]++
		}
		r.BytesIn += res.BytesIn
		r.BytesOut += res.BytesOut
		all = append(all, res.Latency)
		r.byCode[code] = append(r.byCode[code], res.Latency)
		if o.KeepSamples {
			r.Samples = append(r.Samples, Sample{Start: res.Timestamp, Latency: res.Latency, Code: code})
		}
	}
	if watch != nil {
		r.Processes = watch.Stop()
	}
	r.MachineCores = machine.CoresSince()
	if !first.IsZero() {
		r.Start = first
		r.Seconds = last.Sub(first).Seconds()
	}
	if r.Seconds > 0 {
		r.Throughput = float64(r.Requests) / r.Seconds
		r.SuccessRate = float64(r.Success) / r.Seconds
	}
	r.Latency = Of(all)
	for c, ds := range r.byCode {
		r.ByCode[c] = Of(ds)
	}
	if len(r.Errors) == 0 {
		r.Errors = nil
	}
	return r, ctx.Err()
}

func trim(s string) string {
	if len(s) > 120 {
		return s[:120]
	}
	return s
}

// bounded stops a pacer after max hits.
type bounded struct {
	vegeta.Pacer
	max uint64
}

func (b bounded) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if hits >= b.max {
		return 0, true
	}
	return b.Pacer.Pace(elapsed, hits)
}

// Text renders the report for a terminal.
func (r *Report) Text() string {
	var b strings.Builder
	mode := fmt.Sprintf("closed loop, %d connections", r.Connections)
	if r.Rate > 0 {
		mode = fmt.Sprintf("%d req/s, at most %d connections", r.Rate, r.Connections)
	}
	if r.Name != "" {
		fmt.Fprintf(&b, "%s: ", r.Name)
	}
	fmt.Fprintf(&b, "%d requests in %.2fs (%s): %.1f req/s, %.1f 2xx/s\n", r.Requests, r.Seconds, mode, r.Throughput, r.SuccessRate)
	l := r.Latency
	fmt.Fprintf(&b, "  latency ms: p50 %.2f  p95 %.2f  p99 %.2f  max %.2f  mean %.2f\n", l.P50, l.P95, l.P99, l.Max, l.Mean)
	for _, c := range slices.Sorted(maps.Keys(r.Codes)) {
		q := r.ByCode[c]
		fmt.Fprintf(&b, "  status %3d: %7d  (p50 %.2f  p99 %.2f  max %.2f ms)\n", c, r.Codes[c], q.P50, q.P99, q.Max)
	}
	for e, n := range r.Errors {
		fmt.Fprintf(&b, "  error x%d: %s\n", n, e)
	}
	if len(r.Processes) > 0 {
		sum := 0.0
		for _, p := range r.Processes {
			sum += p.CPUCores
		}
		fmt.Fprintf(&b, "  machine: %.2f cores busy, %.2f of them outside the watched processes\n", r.MachineCores, max(r.MachineCores-sum, 0))
	}
	for _, p := range r.Processes {
		if p.Err != "" {
			fmt.Fprintf(&b, "  %s (pid %d): %s\n", p.Name, p.PID, p.Err)
			continue
		}
		peak := "peak RSS"
		if !p.PeakIsRun {
			peak = "peak RSS since start"
		}
		fmt.Fprintf(&b, "  %s (pid %d): CPU %.2fs (%.2f cores), %s %s, RSS %s → %s\n", p.Name, p.PID, p.CPUSeconds, p.CPUCores,
			peak, procstat.MiB(p.PeakRSS), procstat.MiB(p.StartRSS), procstat.MiB(p.EndRSS))
	}
	return b.String()
}
