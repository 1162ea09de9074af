package load

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// requireAlertmanager fails, never skips, without the binary: these tests
// are the only check that the harness's Alertmanager behaves as assumed.
func requireAlertmanager(t *testing.T) {
	t.Helper()
	if os.Getenv("ALERTMANAGER_BIN") == "" {
		t.Fatal("ALERTMANAGER_BIN is not set: ALERTMANAGER_BIN=$(./hack/alertmanager.sh) go test ./testenv/load")
	}
}

// groupGateway answers by the alertname of a webhook's first alert and
// the number of requests for it so far.
func groupGateway(t *testing.T, code func(alertname string, n int) int) *httptest.Server {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		sigs, _, err := parseRequest(r.URL.Path, b)
		if err != nil || len(sigs) == 0 {
			t.Errorf("gateway got %s: %v", b, err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen[sigs[0].Name]++
		n := seen[sigs[0].Name]
		mu.Unlock()
		c := code(sigs[0].Name, n)
		w.WriteHeader(c)
		if c < 300 {
			_, _ = w.Write([]byte(`{"signals":[]}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func startAM(t *testing.T, c *Client, o AlertmanagerOptions) *Alertmanager {
	t.Helper()
	requireAlertmanager(t)
	o.Output = t.Output()
	start := time.Now()
	am, err := StartAlertmanager(t.Context(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d alertmanager(s) ready in %s", am.Instances(), time.Since(start).Round(time.Millisecond))
	t.Cleanup(am.Stop)
	return am
}

// waitRecords polls until cond holds for c's records, failing after
// timeout.
func waitRecords(t *testing.T, c *Client, timeout time.Duration, what string, cond func([]Record) bool) []Record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rs := c.Records()
		if cond(rs) {
			return rs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; records:\n%s", what, timeout, describeRecords(rs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func describeRecords(rs []Record) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "  %s %s %s attempt %d → %d:", r.Start.Format("15:04:05.000"), r.Sender, r.GroupKey, r.Attempt, r.Status)
		for _, s := range r.Signals {
			fmt.Fprintf(&b, " [%s]", s)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func byName(rs []Record, name string) []Record {
	var out []Record
	for _, r := range rs {
		if len(r.Signals) > 0 && r.Signals[0].Name == name {
			out = append(out, r)
		}
	}
	return out
}

// One real Alertmanager through a Proxy: one POST per group, the resolved
// notification, a 503 retried within the flush and a 429 not; Given
// remembers what was pushed.
func TestAlertmanagerThroughTheProxy(t *testing.T) {
	gw := groupGateway(t, func(name string, n int) int {
		switch {
		case name == "Retry503" && n <= 2:
			return http.StatusServiceUnavailable
		case name == "Refused429":
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	})
	c := NewClient(5 * time.Second)
	defer c.Close()
	// A long group interval separates a retry within a flush from the
	// next flush.
	const groupInterval = 2500 * time.Millisecond
	am := startAM(t, c, AlertmanagerOptions{Gateways: []string{gw.URL}, Name: "am",
		Timing: Timing{GroupWait: 100 * time.Millisecond, GroupInterval: groupInterval, RepeatInterval: time.Hour}})
	ctx := t.Context()

	crash := Signal{Name: "KubePodCrashLooping", Namespace: "ns", Pod: "api-0"}
	crash1 := crash
	crash1.Pod = "api-1"
	other := crash
	other.Namespace = "other"
	notReady := Signal{Name: "KubePodNotReady", Namespace: "ns", Pod: "api-0", Severity: "warning"}
	retry := Signal{Name: "Retry503", Namespace: "ns", Pod: "api-0"}
	refused := Signal{Name: "Refused429", Namespace: "ns", Pod: "api-0"}
	if err := am.Fire(ctx, []Signal{crash, crash1, other, notReady, retry, refused}); err != nil {
		t.Fatal(err)
	}
	fired := time.Now()
	rs := waitRecords(t, c, 5*time.Second, "first notifications", func(rs []Record) bool {
		return len(byName(rs, "KubePodCrashLooping")) >= 2 && len(byName(rs, "KubePodNotReady")) >= 1 && len(byName(rs, "Retry503")) >= 3 && len(byName(rs, "Refused429")) >= 1
	})
	given := map[string]Signal{}
	for _, g := range am.Given() {
		given[g.Signal.Member()] = g.Signal
	}
	if len(given) != 6 {
		t.Fatalf("given %v", am.Given())
	}
	// Grouped by alertname and namespace, each alert as given.
	groups := map[string][]string{}
	for _, r := range rs {
		if r.Sender != "am-0" || r.Gateway != gw.URL {
			t.Errorf("record from %q to %q", r.Sender, r.Gateway)
		}
		var ms []string
		for _, s := range r.Signals {
			ms = append(ms, s.Member())
			if g := given[s.Member()]; s.Resolved || !s.Equal(g) {
				t.Errorf("delivered %+v, given %+v", s, g)
			}
		}
		sort.Strings(ms)
		groups[r.GroupKey] = ms
	}
	want := map[string][]string{
		`{}:{alertname="KubePodCrashLooping", namespace="ns"}`:    {crash.Member(), crash1.Member()},
		`{}:{alertname="KubePodCrashLooping", namespace="other"}`: {other.Member()},
		`{}:{alertname="KubePodNotReady", namespace="ns"}`:        {notReady.Member()},
		`{}:{alertname="Retry503", namespace="ns"}`:               {retry.Member()},
		`{}:{alertname="Refused429", namespace="ns"}`:             {refused.Member()},
	}
	if fmt.Sprint(groups) != fmt.Sprint(want) {
		t.Errorf("groups %v\nwant %v", groups, want)
	}
	// 503: retried with the same body within the flush until stored.
	re := byName(rs, "Retry503")
	if len(re) != 3 || re[0].Status != 503 || re[1].Status != 503 || re[2].Status != 200 || re[2].Attempt != 3 || re[2].Start.Sub(re[0].Start) >= groupInterval {
		t.Errorf("503 twice then 200:\n%s", describeRecords(re))
	}
	// 429: not retried before the next flush.
	first := byName(rs, "Refused429")[0]
	time.Sleep(time.Until(first.Start.Add(groupInterval - 500*time.Millisecond)))
	if n := byName(c.Records(), "Refused429"); len(n) != 1 || n[0].Status != 429 {
		t.Errorf("429 within one group interval:\n%s", describeRecords(n))
	}

	// Resolving one alert of a group: the group is notified with it
	// resolved, at its endsAt, and the other still firing.
	end := time.Now().Truncate(time.Millisecond)
	if err := am.Resolve(ctx, []Signal{crash.Resolve(end)}); err != nil {
		t.Fatal(err)
	}
	rs = waitRecords(t, c, 2*groupInterval, "the resolved notification", func(rs []Record) bool { return len(byName(rs, "KubePodCrashLooping")) >= 3 })
	last := byName(rs, "KubePodCrashLooping")[2]
	if len(last.Signals) != 2 || !last.Signals[0].Equal(crash.Refire(given[crash.Member()].StartsAt).Resolve(end)) || last.Signals[1].Resolved {
		t.Errorf("after resolving %s: %s", crash.Member(), describeRecords([]Record{last}))
	}
	var resolvedGiven GivenAlert
	for _, g := range am.Given() {
		if g.Signal.Member() == crash.Member() {
			resolvedGiven = g
		}
	}
	if !resolvedGiven.Signal.Resolved || !resolvedGiven.Signal.EndsAt.Equal(end) || resolvedGiven.ResolvedAt.Before(fired) {
		t.Errorf("given after Resolve: %+v", resolvedGiven)
	}
	// What the harness refuses to push, since Alertmanager would merge it.
	if err := am.Fire(ctx, []Signal{crash1.Refire(time.Now())}); err == nil {
		t.Error("a second firing of a firing member was pushed")
	}
	if err := am.Fire(ctx, []Signal{crash.Refire(end)}); err == nil {
		t.Error("a firing starting at its previous end was pushed")
	}
	if err := am.Resolve(ctx, []Signal{crash}); err == nil {
		t.Error("a resolved member was resolved again")
	}
	if errs := checkStream(recordBatches(c.Records()), time.Time{}, nil); len(errs) > 0 {
		t.Errorf("the delivered stream is inconsistent: %s", strings.Join(errs, "\n"))
	}
}

func recordBatches(rs []Record) [][]Signal {
	var out [][]Signal
	for _, r := range rs {
		out = append(out, r.Signals)
	}
	return out
}

// notification is what a lifecycle comparison looks at: the time from
// Start and the alerts, described without the (exact) timing.
type notification struct {
	at     time.Duration
	alerts string
}

func notifications(start time.Time, steps []Step) map[string][]notification {
	out := map[string][]notification{}
	for _, st := range steps {
		var parts []string
		for _, s := range st.Signals {
			parts = append(parts, s.String())
		}
		sort.Strings(parts)
		g := groupOf(st.Signals[0], defaultGroupBy)
		out[g] = append(out[g], notification{st.At, strings.Join(parts, " ")})
	}
	return out
}

// The simulation in Lifecycle.Schedule against the real thing: an HA pair
// driven through a lifecycle delivers, each instance through its own
// Proxy to its own gateway, exactly the notifications Schedule predicts,
// at about the predicted times. Flushes are at 400 + 1200k ms after a
// group's first alert; every change lies at least 300 ms from a flush, so
// that scheduling jitter cannot move it across one, and the times are
// long enough that a stall of the loaded machine (seen: 200 ms) stays
// within the tolerance while a wrong model (a new group with group_wait
// for the re-fire: 500 ms early) does not.
func TestLifecycleScheduleMatchesAlertmanager(t *testing.T) {
	tm := Timing{GroupWait: 400 * time.Millisecond, GroupInterval: 1200 * time.Millisecond, RepeatInterval: 3 * time.Second}
	gwA := groupGateway(t, func(string, int) int { return 200 })
	gwB := groupGateway(t, func(string, int) int { return 200 })
	c := NewClient(5 * time.Second)
	defer c.Close()
	am := startAM(t, c, AlertmanagerOptions{Gateways: []string{gwA.URL, gwB.URL}, Instances: 2, Name: "ha", Timing: tm})

	start := time.Now().Add(300 * time.Millisecond).Truncate(time.Millisecond)
	a := func(name string) Signal { return Signal{Name: name, Namespace: "ns", Pod: "api-0", StartsAt: start} }
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	l := Merge(
		// Resolved at 2200 (notified at 2800), firing again at 3100 in
		// the empty group Alertmanager still keeps, so notified at its
		// 4000 flush, not group_wait after 3100; repeated at 7600.
		Refire(tm, a("KubePodCrashLooping"), ms(2200), ms(900)),
		// Two containers: 400, 1600 both, 2800 app resolved, 4000 both
		// resolved.
		PerContainer(tm, a("KubeContainerWaiting"), []string{"app", "sidecar"}, ms(1200)),
		// warning → critical in one notification at 2800.
		Escalation(tm, a("KubePodNotReady"), ms(2200)),
		// Repeats at 4000 and 7600 (more than 3 s after the last).
		KeepsFiring(tm, a("KubeJobFailed"), ms(8000)),
	)
	want := l.Schedule()
	t.Logf("predicted:\n%s", describe(want))
	if err := l.Drive(t.Context(), am); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(start.Add(l.Until + 400*time.Millisecond)))
	const tolerance = 300 * time.Millisecond
	rs := c.Records()
	for i, gw := range []string{gwA.URL, gwB.URL} {
		sender := fmt.Sprintf("ha-%d", i)
		var got []Step
		for _, r := range rs {
			if r.Sender == sender && r.Start.Sub(start) <= l.Until+tolerance {
				if r.Gateway != gw || r.Status != 200 {
					t.Errorf("%s: record to %s answered %d", sender, r.Gateway, r.Status)
				}
				got = append(got, Step{At: r.Start.Sub(start), Signals: r.Signals})
			}
		}
		g, w := notifications(start, got), notifications(start, want.Steps)
		var worst time.Duration
		for key, wn := range w {
			gn := g[key]
			ok := len(gn) == len(wn)
			for k := 0; ok && k < len(wn); k++ {
				d := (gn[k].at - wn[k].at).Abs()
				worst = max(worst, d)
				ok = gn[k].alerts == wn[k].alerts && d < tolerance
			}
			if !ok {
				t.Errorf("%s, group %s:\ngot  %v\nwant %v", sender, key, gn, wn)
			}
		}
		if len(g) != len(w) {
			t.Errorf("%s: %d groups notified, want %d", sender, len(g), len(w))
		}
		t.Logf("%s: %d notifications, at most %s from the predicted time", sender, len(got), worst)
	}
	if t.Failed() {
		t.Logf("records:\n%s", describeRecords(rs))
	}
	given := am.Given()
	if len(given) != len(l.Firings) {
		t.Errorf("%d firings given, want %d", len(given), len(l.Firings))
	}
	am.Stop()
	for i := range am.Instances() {
		if am.Process(i).PID() != 0 || am.Proxy(i).OpenConns() != 0 {
			t.Errorf("instance %d left pid %d, %d connections", i, am.Process(i).PID(), am.Proxy(i).OpenConns())
		}
	}
}

// Without a binary the start fails with localdeps' error, which names the
// script to run, and leaves nothing behind.
func TestStartAlertmanagerWithoutBinary(t *testing.T) {
	t.Setenv("ALERTMANAGER_BIN", "")
	c := NewClient(time.Second)
	_, err := StartAlertmanager(t.Context(), c, AlertmanagerOptions{Gateways: []string{"http://127.0.0.1:1"}})
	if err == nil || !strings.Contains(err.Error(), "hack/alertmanager.sh") {
		t.Fatalf("start without a binary: %v", err)
	}
	if _, err := StartAlertmanager(t.Context(), c, AlertmanagerOptions{}); err == nil {
		t.Fatal("started without a gateway")
	}
}
