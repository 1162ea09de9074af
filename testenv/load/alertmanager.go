package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/alertgate/gateway/internal/localdeps"
)

// AlertmanagerOptions configure StartAlertmanager.
type AlertmanagerOptions struct {
	// Gateways are the base URLs the Alertmanagers deliver to. Required.
	Gateways []string
	// Instances is the number of Alertmanagers given the same alerts, with
	// clustering disabled: 2 is an HA pair whose members do not gossip, so
	// both deliver every notification. Default: 1.
	Instances int
	// RoundRobin makes each instance's Proxy deliver to every gateway in
	// turn; by default instance i delivers to Gateways[i mod len] only.
	RoundRobin bool
	// Name of the first instance's records' Sender is Name-0, and so on.
	// Default: "alertmanager".
	Name string
	// Timing is the route: group_by (default alertname, namespace),
	// group_wait, group_interval, repeat_interval, as Lifecycle.Schedule
	// reads them (Timing.Route).
	Timing Timing
	// ResolveTimeout resolves an alert that is not pushed again.
	// Default: 5m (Alertmanager's).
	ResolveTimeout time.Duration
	// Resend is how often every alert given and still firing, and every
	// resolution of the last 15 minutes, is pushed again, as Prometheus
	// does (its resend delay is 1m): so that a firing alert outlives
	// ResolveTimeout and an instance that restarted learns again what it
	// lost. Re-pushing a resolution may make Alertmanager deliver it
	// again, as it does for Prometheus. Default: min(1m,
	// ResolveTimeout/3); negative: never.
	Resend time.Duration
	// BearerTokenFile, if set, makes Alertmanager send "Authorization:
	// Bearer <its content>"; the Proxy forwards it.
	BearerTokenFile string
	// Bin is the alertmanager executable. Default: $ALERTMANAGER_BIN
	// (hack/alertmanager.sh prints it).
	Bin string
	// Output receives the processes' logs. Default: discarded.
	Output io.Writer
}

// resolvedRetention is how long Prometheus keeps re-sending a resolution.
const resolvedRetention = 15 * time.Minute

// ErrNotGiven means no Alertmanager accepted a push: the alerts were not
// given.
var ErrNotGiven = errors.New("load: no alertmanager accepted the alerts")

// Alertmanager is one or more real Alertmanager processes, each delivering
// through its own Proxy into one Client's records, given alerts as
// Prometheus gives them: every instance the same. It remembers what it
// was given, with times, for the check that every alert given exists
// once, resolved when it was resolved.
type Alertmanager struct {
	opts    AlertmanagerOptions
	procs   []*localdeps.Alertmanager
	proxies []*Proxy
	stop    chan struct{}
	done    chan struct{} // closed when resend ends; nil until it runs
	once    sync.Once

	op     sync.Mutex // one Fire or Resolve at a time, as from one Prometheus
	mu     sync.Mutex
	given  []GivenAlert
	firing map[string]int // member → its firing in given
}

// GivenAlert is one firing given to the Alertmanagers.
type GivenAlert struct {
	// Signal is the alert as pushed: StartsAt, and once resolved, Resolved
	// and EndsAt.
	Signal Signal `json:"signal"`
	// FiredAt and ResolvedAt are when the pushes were accepted; ResolvedAt
	// is zero while it fires.
	FiredAt    time.Time `json:"firedAt"`
	ResolvedAt time.Time `json:"resolvedAt,omitzero"`
}

// StartAlertmanager starts the Proxies and the Alertmanagers, recording
// into c. It fails with localdeps.ErrNoAlertmanager when no binary is
// configured.
func StartAlertmanager(ctx context.Context, c *Client, o AlertmanagerOptions) (*Alertmanager, error) {
	if len(o.Gateways) == 0 {
		return nil, errors.New("load: StartAlertmanager needs a gateway URL")
	}
	if o.Instances <= 0 {
		o.Instances = 1
	}
	if o.Name == "" {
		o.Name = "alertmanager"
	}
	if o.ResolveTimeout <= 0 {
		o.ResolveTimeout = 5 * time.Minute
	}
	if o.Resend == 0 {
		o.Resend = min(time.Minute, o.ResolveTimeout/3)
	}
	a := &Alertmanager{opts: o, stop: make(chan struct{}), firing: map[string]int{}}
	r := o.Timing.Route()
	for i := range o.Instances {
		targets := o.Gateways
		if !o.RoundRobin {
			targets = []string{o.Gateways[i%len(o.Gateways)]}
		}
		p, err := c.NewProxy(fmt.Sprintf("%s-%d", o.Name, i), targets...)
		if err != nil {
			a.Stop()
			return nil, err
		}
		a.proxies = append(a.proxies, p)
		am, err := localdeps.StartAlertmanager(ctx, localdeps.AlertmanagerOptions{
			Bin: o.Bin, WebhookURL: p.URL() + PathPrometheus, GroupBy: r.GroupBy,
			GroupWait: r.GroupWait, GroupInterval: r.GroupInterval, RepeatInterval: r.RepeatInterval,
			ResolveTimeout: o.ResolveTimeout, BearerTokenFile: o.BearerTokenFile, Output: o.Output,
		})
		if err != nil {
			a.Stop()
			return nil, err
		}
		a.procs = append(a.procs, am)
	}
	a.done = make(chan struct{})
	go a.resend()
	return a, nil
}

// Name is AlertmanagerOptions.Name.
func (a *Alertmanager) Name() string { return a.opts.Name }

// Instances is the number of Alertmanagers.
func (a *Alertmanager) Instances() int { return len(a.procs) }

// Process is instance i, to kill, pause or restart it.
func (a *Alertmanager) Process(i int) *localdeps.Alertmanager { return a.procs[i] }

// Proxy is the Proxy instance i delivers through.
func (a *Alertmanager) Proxy(i int) *Proxy { return a.proxies[i] }

// Fire pushes sigs as firing alerts (their labels; StartsAt, zero: now,
// truncated to milliseconds) to every instance. A signal already firing
// is pushed again, as Prometheus re-sends, and must carry its StartsAt or
// none; one that fired before starts a new firing, after its last EndsAt.
// Events and Resolved signals are refused, and nothing is pushed then.
// The alerts are given when any instance accepted them; the error lists
// the instances that did not, and is ErrNotGiven when none did.
func (a *Alertmanager) Fire(ctx context.Context, sigs []Signal) error {
	a.op.Lock()
	defer a.op.Unlock()
	now := time.Now().Truncate(time.Millisecond)
	pushed := make([]Signal, len(sigs))
	fresh := make([]bool, len(sigs))
	seen := map[string]bool{}
	a.mu.Lock()
	for i, s := range sigs {
		if s.IsEvent() || s.Resolved || seen[s.Member()] {
			a.mu.Unlock()
			return fmt.Errorf("load: Fire: %s is not a firing alert, or twice in the push", s)
		}
		seen[s.Member()] = true
		s = Signal{Name: s.Name, Namespace: s.Namespace, Pod: s.Pod, Container: s.Container, Severity: s.Severity, StartsAt: s.StartsAt.Truncate(time.Millisecond)}
		if k, ok := a.firing[s.Member()]; ok {
			was := a.given[k].Signal.StartsAt
			if !s.StartsAt.IsZero() && !s.StartsAt.Equal(was) {
				a.mu.Unlock()
				return fmt.Errorf("load: Fire: %s fires since %s already; Alertmanager would merge a firing since %s into it", s.Member(), was, s.StartsAt)
			}
			s.StartsAt = was
		} else {
			if s.StartsAt.IsZero() {
				s.StartsAt = now
			}
			if last := a.lastEnd(s.Member()); !last.IsZero() && !s.StartsAt.After(last) {
				a.mu.Unlock()
				return fmt.Errorf("load: Fire: %s starting %s does not start after its last firing ended (%s)", s.Member(), s.StartsAt, last)
			}
			fresh[i] = true
		}
		pushed[i] = s
	}
	a.mu.Unlock()
	err := a.push(ctx, pushed)
	if errors.Is(err, ErrNotGiven) {
		return err
	}
	at := time.Now()
	a.mu.Lock()
	for i, s := range pushed {
		if fresh[i] {
			a.firing[s.Member()] = len(a.given)
			a.given = append(a.given, GivenAlert{Signal: s, FiredAt: at})
		}
	}
	a.mu.Unlock()
	return err
}

// lastEnd is the EndsAt of the member's last resolved firing; a.mu held.
func (a *Alertmanager) lastEnd(member string) time.Time {
	for i := len(a.given) - 1; i >= 0; i-- {
		if g := a.given[i]; g.Signal.Member() == member {
			return g.Signal.EndsAt
		}
	}
	return time.Time{}
}

// Resolve pushes the resolution of each signal's firing (its member must
// fire) with EndsAt (zero: now, truncated to milliseconds) to every
// instance; errors as for Fire.
func (a *Alertmanager) Resolve(ctx context.Context, sigs []Signal) error {
	a.op.Lock()
	defer a.op.Unlock()
	now := time.Now().Truncate(time.Millisecond)
	pushed := make([]Signal, len(sigs))
	idx := make([]int, len(sigs))
	seen := map[string]bool{}
	a.mu.Lock()
	for i, s := range sigs {
		k, ok := a.firing[s.Member()]
		if s.IsEvent() || !ok || seen[s.Member()] {
			a.mu.Unlock()
			return fmt.Errorf("load: Resolve: %s is not a firing alert given, or twice in the push", s)
		}
		seen[s.Member()] = true
		end := s.EndsAt.Truncate(time.Millisecond)
		if end.IsZero() {
			end = now
		}
		g := a.given[k].Signal
		if end.Before(g.StartsAt) {
			a.mu.Unlock()
			return fmt.Errorf("load: Resolve: %s would end at %s before it started", g, end)
		}
		pushed[i], idx[i] = g.Resolve(end), k
	}
	a.mu.Unlock()
	err := a.push(ctx, pushed)
	if errors.Is(err, ErrNotGiven) {
		return err
	}
	at := time.Now()
	a.mu.Lock()
	for i, s := range pushed {
		a.given[idx[i]].Signal, a.given[idx[i]].ResolvedAt = s, at
		delete(a.firing, s.Member())
	}
	a.mu.Unlock()
	return err
}

// Given returns every firing given, in the order given.
func (a *Alertmanager) Given() []GivenAlert {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]GivenAlert(nil), a.given...)
}

func postable(s Signal) localdeps.PostableAlert {
	return localdeps.PostableAlert{Labels: s.Labels(), Annotations: s.annotations(), StartsAt: s.StartsAt, EndsAt: s.EndsAt,
		GeneratorURL: "http://prometheus.monitoring:9090/graph?g0.expr=up"}
}

// push gives sigs to every instance, all at once.
func (a *Alertmanager) push(ctx context.Context, sigs []Signal) error {
	alerts := make([]localdeps.PostableAlert, len(sigs))
	for i, s := range sigs {
		alerts[i] = postable(s)
	}
	errs := make([]error, len(a.procs))
	var wg sync.WaitGroup
	for i, am := range a.procs {
		wg.Go(func() {
			if err := am.Push(ctx, alerts); err != nil {
				errs[i] = fmt.Errorf("%s-%d: %w", a.opts.Name, i, err)
			}
		})
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	switch {
	case failed == 0:
		return nil
	case failed == len(errs):
		return errors.Join(append([]error{ErrNotGiven}, errs...)...)
	}
	return errors.Join(errs...)
}

// resend re-pushes what Prometheus would still be sending.
func (a *Alertmanager) resend() {
	defer close(a.done)
	if a.opts.Resend < 0 {
		<-a.stop
		return
	}
	t := time.NewTicker(a.opts.Resend)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
		a.op.Lock()
		a.mu.Lock()
		var sigs []Signal
		for _, g := range a.given {
			if g.ResolvedAt.IsZero() || time.Since(g.ResolvedAt) < resolvedRetention {
				sigs = append(sigs, g.Signal)
			}
		}
		a.mu.Unlock()
		if len(sigs) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			// A failure is what Prometheus shrugs off too: the next
			// resend tries again.
			_ = a.push(ctx, sigs)
			cancel()
		}
		a.op.Unlock()
	}
}

// Stop stops the resends, the Alertmanagers and the Proxies.
func (a *Alertmanager) Stop() {
	a.once.Do(func() {
		close(a.stop)
		if a.done != nil {
			<-a.done
		}
		for _, am := range a.procs {
			am.Stop()
		}
		for _, p := range a.proxies {
			p.Close()
		}
	})
}

// Deliveries indexes the requests of some senders (an Alertmanager's
// Proxies) by the alerts they carried, each alert in one state
// (Signal.Delivery).
type Deliveries struct {
	// Acked are the alerts a 2xx answer gave an outcome for.
	Acked map[string]bool
	// Carried are the requests that carried each alert, in order.
	Carried map[string][]Record
}

// IndexDeliveries indexes the records whose Sender is one of senders.
func IndexDeliveries(records []Record, senders []string) Deliveries {
	d := Deliveries{Acked: map[string]bool{}, Carried: map[string][]Record{}}
	for _, r := range records {
		if !slices.Contains(senders, r.Sender) {
			continue
		}
		for _, s := range r.Signals {
			d.Carried[s.Delivery()] = append(d.Carried[s.Delivery()], r)
		}
		if !r.Acknowledged() {
			continue
		}
		for _, o := range r.Outcomes {
			if o.Index >= 0 && o.Index < len(r.Signals) {
				d.Acked[r.Signals[o.Index].Delivery()] = true
			}
		}
	}
	return d
}

// Answers lists the status codes of the requests that carried s.
func (d Deliveries) Answers(s Signal) string {
	rs := d.Carried[s.Delivery()]
	if len(rs) == 0 {
		return "(none was made)"
	}
	codes := make([]int, len(rs))
	for i, r := range rs {
		codes[i] = r.Status
	}
	return fmt.Sprint(codes)
}

// Superseded reports whether a later alert given is the same member: only
// a member's latest firing is judged, since Alertmanager sends a group's
// current state and a resolution overtaken by a re-fire may never go out.
func Superseded(given []GivenAlert, i int) bool {
	m := given[i].Signal.Member()
	return slices.ContainsFunc(given[i+1:], func(o GivenAlert) bool { return o.Signal.Member() == m })
}

// Senders are the Sender names of the Alertmanagers' deliveries.
func (a *Alertmanager) Senders() []string {
	out := make([]string, len(a.proxies))
	for i, p := range a.proxies {
		out[i] = p.Name()
	}
	return out
}
