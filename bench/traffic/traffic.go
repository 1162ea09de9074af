// Package traffic makes the requests of a load test: Alertmanager webhooks
// (payload version 4, 1–20 alerts each, with the label sets kube-prometheus
// alerts really carry) and core/v1 Warning Events, mixing signals never
// sent before with repeats from a fixed pool, and hands them to vegeta as a
// Targeter.
package traffic

import (
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Paths of the gateway's two signal routes.
const (
	PrometheusPath = "/api/v1/signals/prometheus"
	EventPath      = "/api/v1/signals/kubernetes-event"
)

// Options configure a Generator.
type Options struct {
	// RunID makes this run's signals distinct from every other run's (it
	// is hashed into object names). Default: random.
	RunID string
	// Seed of the random choices. Default: random.
	Seed uint64
	// Pool is the number of repeated signals of each source. Default: 1000.
	Pool int
	// NewRatio is the probability that a signal is new (never sent
	// before) rather than drawn from the pool. Default: 0 (every signal is
	// a repeat).
	NewRatio float64
	// BatchMin and BatchMax bound the alerts of one webhook. Default: 1
	// and 20.
	BatchMin, BatchMax int
	// EventRatio is the share of requests that carry one Kubernetes Event
	// instead of a webhook. Default: 0.
	EventRatio float64
	// LabelSets are added to the generated alerts, so that they carry
	// what the receiving side expects (a region, a team): each alert
	// carries one of them, chosen by the alert's identity. Their labels
	// replace generated ones of the same name, except those naming the
	// alert's object, so that distinct alerts stay distinct; they may not
	// set alertname or namespace. Default: none.
	LabelSets []map[string]string
	// Now is the clock of new signals' start times. Default: time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() error {
	if o.RunID == "" {
		var b [4]byte
		_, _ = crand.Read(b[:])
		o.RunID = hex.EncodeToString(b[:])
	}
	if o.Seed == 0 {
		o.Seed = rand2()
	}
	if o.Pool <= 0 {
		o.Pool = 1000
	}
	if o.BatchMin <= 0 {
		o.BatchMin = 1
	}
	if o.BatchMax <= 0 {
		o.BatchMax = 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	for _, set := range o.LabelSets {
		for k := range set {
			if k == "" || k == "alertname" || k == "namespace" {
				return fmt.Errorf("traffic: label set %v: may not set %q", set, k)
			}
		}
	}
	switch {
	case o.BatchMax < o.BatchMin:
		return fmt.Errorf("traffic: batch max %d below batch min %d", o.BatchMax, o.BatchMin)
	case o.NewRatio < 0 || o.NewRatio > 1:
		return fmt.Errorf("traffic: new ratio %g outside [0, 1]", o.NewRatio)
	case o.EventRatio < 0 || o.EventRatio > 1:
		return fmt.Errorf("traffic: event ratio %g outside [0, 1]", o.EventRatio)
	}
	return nil
}

func rand2() uint64 {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// Request is one HTTP delivery.
type Request struct {
	Path string
	Body []byte
	// Signals is the number of alerts or events it carries; New how many
	// of them were never sent before.
	Signals, New int
}

// Stats count what a Generator made.
type Stats struct {
	Requests, Signals, New uint64
}

// Generator makes requests; it is safe for concurrent use.
type Generator struct {
	opts  Options
	start time.Time

	alerts   []*alertSpec
	byNS     map[string][]int
	nsList   []string // namespaces of the pool, by pool entry
	events   [][]byte
	evSeq    atomic.Uint64
	newSeq   atomic.Uint64
	requests atomic.Uint64
	signals  atomic.Uint64
	newSigs  atomic.Uint64

	mu  sync.Mutex
	rng *rand.Rand
}

type alertSpec struct {
	ns   string
	json []byte
	// labels for commonLabels.
	labels map[string]string
}

// New returns a Generator and renders its pool.
func New(opts Options) (*Generator, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	g := &Generator{opts: opts, start: opts.Now().Truncate(time.Second), byNS: map[string][]int{},
		rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))}
	for i := range opts.Pool {
		a := g.alert(uint64(i), false, "")
		g.alerts = append(g.alerts, a)
		g.byNS[a.ns] = append(g.byNS[a.ns], i)
		g.nsList = append(g.nsList, a.ns)
	}
	if opts.EventRatio > 0 {
		for i := range opts.Pool {
			g.events = append(g.events, g.event(uint64(i), false))
		}
	}
	return g, nil
}

// Stats returns what was made so far.
func (g *Generator) Stats() Stats {
	return Stats{Requests: g.requests.Load(), Signals: g.signals.Load(), New: g.newSigs.Load()}
}

// hash derives a stable number from the run, a kind of name and an index.
func (g *Generator) hash(kind string, i uint64, isNew bool) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(g.opts.RunID))
	_, _ = h.Write([]byte(kind))
	if isNew {
		_, _ = h.Write([]byte{'n'})
	}
	var b [8]byte
	for k := range 8 {
		b[k] = byte(i >> (8 * k))
	}
	_, _ = h.Write(b[:])
	return h.Sum64()
}

const alnum = "bcdfghjklmnpqrstvwxz2456789"

func suffix(h uint64, n int) string {
	b := make([]byte, n)
	for k := range b {
		b[k] = alnum[h%uint64(len(alnum))]
		h /= uint64(len(alnum))
	}
	return string(b)
}

// objectName names the object a rule's label points at.
func objectName(target string, h uint64) string {
	w := workloads[h%uint64(len(workloads))]
	switch target {
	case "pod":
		return fmt.Sprintf("%s-%08x%x-%s", w, uint32(h>>8), (h>>40)&0xf, suffix(h>>44, 5))
	case "node":
		return fmt.Sprintf("ip-10-%d-%d-%d.eu-west-1.compute.internal", (h>>8)&0xff, (h>>16)&0xff, (h>>24)&0xff)
	case "persistentvolumeclaim":
		return fmt.Sprintf("data-%s-%s-0", w, suffix(h>>8, 6))
	case "job_name":
		return fmt.Sprintf("%s-%d", w, 29_000_000+(h>>8)%1_000_000)
	case "":
		return fmt.Sprintf("prod-%s", suffix(h>>8, 6))
	}
	return fmt.Sprintf("%s-%s", w, suffix(h>>8, 6))
}

func namespaced(r rule) bool { return r.target != "" && !r.clusterScoped }

// alert renders the i-th pool alert, or the i-th new one in namespace ns
// ("" for node and cluster alerts), so that a batch stays grouped by
// namespace as Alertmanager groups it.
func (g *Generator) alert(i uint64, isNew bool, ns string) *alertSpec {
	h := g.hash("alert", i, isNew)
	var r rule
	if isNew {
		var cands []rule
		for _, c := range rules {
			if namespaced(c) == (ns != "") {
				cands = append(cands, c)
			}
		}
		r = cands[h%uint64(len(cands))]
	} else {
		r = rules[i%uint64(len(rules))]
		ns = ""
		if namespaced(r) {
			ns = namespaces[(h>>3)%uint64(len(namespaces))]
		}
	}
	obj := objectName(r.target, h)
	node := objectName("node", h>>5)
	ip := fmt.Sprintf("10.%d.%d.%d", (h>>12)&0xff, (h>>20)&0xff, (h>>28)&0xff)
	labels := map[string]string{"alertname": r.name, "severity": r.severity}
	for _, kv := range r.labels {
		v := kv[1]
		switch v {
		case "$obj":
			v = obj
		case "$node":
			v = node
		case "$ip:8443", "$ip:10250":
			v = ip + v[3:]
		case "$container":
			v = "app"
		case "$uid":
			v = fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", uint32(h), (h>>32)&0xffff, (h>>48)&0xfff, (h>>20)&0xfff, h&0xffffffffffff)
		}
		labels[kv[0]] = v
	}
	if sets := g.opts.LabelSets; len(sets) > 0 {
		maps.Copy(labels, sets[(h>>9)%uint64(len(sets))])
	}
	if ns != "" {
		labels["namespace"] = ns
	}
	switch r.target {
	case "":
		labels["cluster"] = obj
	case "service":
		labels["service"] = obj
		labels["job"] = obj
	default:
		labels[r.target] = obj
	}
	start := g.start.Add(-time.Duration(h%7200) * time.Second).Add(-time.Duration(h%1000) * time.Millisecond)
	if isNew {
		start = g.opts.Now().Truncate(time.Millisecond)
	}
	a := template.Alert{
		Status: "firing", Labels: labels,
		Annotations: map[string]string{
			"summary":     r.summary,
			"description": fmt.Sprintf(r.description, ns, obj),
			"runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/" + r.group + "/" + strings.ToLower(r.name),
		},
		StartsAt:     start.UTC(),
		GeneratorURL: "http://prometheus-k8s-0:9090/graph?g0.expr=" + url.QueryEscape(`ALERTS{alertname="`+r.name+`"} == 1`) + "&g0.tab=1",
		Fingerprint:  model.LabelSet(toLabelSet(labels)).Fingerprint().String(),
	}
	b, err := json.Marshal(a)
	if err != nil {
		panic(err)
	}
	return &alertSpec{ns: ns, json: b, labels: labels}
}

func toLabelSet(m map[string]string) model.LabelSet {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}

// event renders the i-th pool event, or the i-th new one.
func (g *Generator) event(i uint64, isNew bool) []byte {
	h := g.hash("event", i, isNew)
	k := eventKinds[h%uint64(len(eventKinds))]
	if !isNew {
		k = eventKinds[i%uint64(len(eventKinds))]
	}
	target := "pod"
	switch k.kind {
	case "Node":
		target = "node"
	case "ReplicaSet":
		target = "replicaset"
	}
	obj := objectName(target, h)
	ns := namespaces[(h>>3)%uint64(len(namespaces))]
	objNS := ns
	if k.kind == "Node" {
		objNS = ""
	}
	first := g.start.Add(-time.Duration(h%3600) * time.Second)
	last := first.Add(time.Duration(h%600) * time.Second)
	if isNew {
		first = g.opts.Now().Truncate(time.Second)
		last = first
	}
	host := objectName("node", h>>5)
	e := corev1.Event{
		TypeMeta: metav1.TypeMeta{Kind: "Event", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("%s.%016x", obj, h), Namespace: ns, UID: types.UID(fmt.Sprintf("%08x-%04x-4%03x-b%03x-%012x", uint32(h>>3), (h>>17)&0xffff, (h>>33)&0xfff, (h>>45)&0xfff, h&0xffffffffffff)),
			ResourceVersion: strconv.FormatUint(h%10_000_000, 10), CreationTimestamp: metav1.NewTime(first),
		},
		InvolvedObject: corev1.ObjectReference{Kind: k.kind, Namespace: objNS, Name: obj, APIVersion: apiVersionOf(k.kind),
			UID: types.UID(fmt.Sprintf("%08x-%04x-4%03x-c%03x-%012x", uint32(h>>7), (h>>19)&0xffff, (h>>31)&0xfff, (h>>43)&0xfff, h&0xffffffffffff))},
		Reason:              k.reason,
		Message:             fmt.Sprintf(k.message, ns, obj),
		Source:              corev1.EventSource{Component: k.component, Host: host},
		FirstTimestamp:      metav1.NewTime(first),
		LastTimestamp:       metav1.NewTime(last),
		Count:               int32(1 + h%40),
		Type:                corev1.EventTypeWarning,
		ReportingController: k.component,
		ReportingInstance:   host,
	}
	if k.kind == "Pod" {
		e.InvolvedObject.FieldPath = "spec.containers{app}"
	}
	b, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	return b
}

func apiVersionOf(kind string) string {
	if kind == "ReplicaSet" {
		return "apps/v1"
	}
	return "v1"
}

// choice is what Next decided under the lock; the rendering happens
// outside it.
type choice struct {
	event bool
	// pool entries (index >= 0) and new signals (index < 0 → new seq).
	picks []int
	ns    string
}

// Next makes the next request.
func (g *Generator) Next() Request {
	c := g.choose()
	g.requests.Add(1)
	if c.event {
		g.signals.Add(1)
		if c.picks[0] >= 0 {
			return Request{Path: EventPath, Body: g.events[c.picks[0]], Signals: 1}
		}
		g.newSigs.Add(1)
		return Request{Path: EventPath, Body: g.event(g.evSeq.Add(1), true), Signals: 1, New: 1}
	}
	specs := make([]*alertSpec, len(c.picks))
	n := 0
	for k, p := range c.picks {
		if p >= 0 {
			specs[k] = g.alerts[p]
			continue
		}
		n++
		specs[k] = g.newAlertIn(c.ns)
	}
	g.signals.Add(uint64(len(specs)))
	g.newSigs.Add(uint64(n))
	return Request{Path: PrometheusPath, Body: webhook(specs, c.ns), Signals: len(specs), New: n}
}

// newAlertIn renders a new alert in namespace ns.
func (g *Generator) newAlertIn(ns string) *alertSpec {
	return g.alert(g.newSeq.Add(1), true, ns)
}

func (g *Generator) choose() choice {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.opts.EventRatio > 0 && g.rng.Float64() < g.opts.EventRatio {
		if g.rng.Float64() < g.opts.NewRatio {
			return choice{event: true, picks: []int{-1}}
		}
		return choice{event: true, picks: []int{g.rng.IntN(len(g.events))}}
	}
	ns := g.nsList[g.rng.IntN(len(g.nsList))]
	pool := g.byNS[ns]
	n := g.opts.BatchMin + g.rng.IntN(g.opts.BatchMax-g.opts.BatchMin+1)
	picks := make([]int, 0, n)
	// Draw pool signals without replacement (a partial Fisher-Yates
	// shuffle of a copy), one roll of NewRatio per slot.
	perm := append([]int(nil), pool...)
	taken := 0
	for len(picks) < n {
		if g.rng.Float64() < g.opts.NewRatio {
			picks = append(picks, -1)
			continue
		}
		if taken == len(perm) {
			// The namespace's pool is exhausted: a smaller batch, rather
			// than one topped up with new signals (which would raise their
			// share above NewRatio).
			break
		}
		j := taken + g.rng.IntN(len(perm)-taken)
		perm[taken], perm[j] = perm[j], perm[taken]
		picks = append(picks, perm[taken])
		taken++
	}
	return choice{picks: picks, ns: ns}
}

// webhook renders alerts as one Alertmanager webhook, grouped by
// namespace as kube-prometheus' Alertmanager configuration groups them.
func webhook(specs []*alertSpec, ns string) []byte {
	size := 400
	for _, s := range specs {
		size += len(s.json) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, `{"receiver":"alertgate","status":"firing","alerts":[`...)
	for k, s := range specs {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, s.json...)
	}
	group := map[string]string{}
	if ns != "" {
		group["namespace"] = ns
	}
	common := map[string]string{}
	if len(specs) > 0 {
		for k, v := range specs[0].labels {
			same := true
			for _, s := range specs[1:] {
				if s.labels[k] != v {
					same = false
					break
				}
			}
			if same {
				common[k] = v
			}
		}
	}
	gl, _ := json.Marshal(group)
	cl, _ := json.Marshal(common)
	key, _ := json.Marshal(`{}/{severity=~"warning|critical|info"}:` + groupKey(group))
	b = append(b, `],"groupLabels":`...)
	b = append(b, gl...)
	b = append(b, `,"commonLabels":`...)
	b = append(b, cl...)
	b = append(b, `,"commonAnnotations":{},"externalURL":"http://alertmanager-main.monitoring.svc:9093","version":"4","groupKey":`...)
	b = append(b, key...)
	b = append(b, `,"truncatedAlerts":0}`...)
	return b
}

func groupKey(m map[string]string) string {
	s := "{"
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			s += ","
		}
		s += k + "=" + strconv.Quote(m[k])
	}
	return s + "}"
}

// PoolRequests returns requests that deliver every pool signal exactly
// once, alerts in webhooks of up to batch alerts of one namespace, then
// each pool event: sending them first makes every later repeat a
// duplicate.
func (g *Generator) PoolRequests(batch int) []Request {
	if batch <= 0 {
		batch = 20
	}
	var out []Request
	for _, ns := range slices.Sorted(maps.Keys(g.byNS)) {
		idx := g.byNS[ns]
		for i := 0; i < len(idx); i += batch {
			j := min(i+batch, len(idx))
			specs := make([]*alertSpec, 0, j-i)
			for _, p := range idx[i:j] {
				specs = append(specs, g.alerts[p])
			}
			out = append(out, Request{Path: PrometheusPath, Body: webhook(specs, ns), Signals: len(specs)})
		}
	}
	for _, e := range g.events {
		out = append(out, Request{Path: EventPath, Body: e, Signals: 1})
	}
	return out
}

var jsonHeader = http.Header{"Content-Type": []string{"application/json"}}

// Targeter returns a vegeta Targeter of Next's requests, spread round-robin
// over the base URLs (e.g. http://127.0.0.1:8080).
func (g *Generator) Targeter(bases []string) vegeta.Targeter {
	var n atomic.Uint64
	return func(t *vegeta.Target) error {
		r := g.Next()
		t.Method = http.MethodPost
		t.URL = bases[(n.Add(1)-1)%uint64(len(bases))] + r.Path
		t.Body = r.Body
		t.Header = jsonHeader
		return nil
	}
}

// Static returns a vegeta Targeter that sends reqs once each, in order,
// round-robin over the base URLs, then reports vegeta.ErrNoTargets.
func Static(reqs []Request, bases []string) vegeta.Targeter {
	var mu sync.Mutex
	i := 0
	return func(t *vegeta.Target) error {
		mu.Lock()
		defer mu.Unlock()
		if i >= len(reqs) {
			return vegeta.ErrNoTargets
		}
		r := reqs[i]
		t.Method = http.MethodPost
		t.URL = bases[i%len(bases)] + r.Path
		t.Body = r.Body
		t.Header = jsonHeader
		i++
		return nil
	}
}
