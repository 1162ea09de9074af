// Package metrics holds the gateway's Prometheus metrics, on a registry of
// their own so that several gateways can live in one process (tests).
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"regexp"

	"github.com/alertgate/gateway/internal/pipeline"
)

const namespace = "alertgate"

// RejectReasons label alertgate_requests_rejected_total.
var RejectReasons = []string{"invalid_payload", "body_too_large", "unsupported_media_type", "request_timeout",
	"in_flight", "sender_rate", "unauthenticated", "forbidden"}

// Metrics of one gateway.
type Metrics struct {
	Registry *prometheus.Registry

	SignalsReceived  *prometheus.CounterVec // by source
	ResourcesCreated *prometheus.CounterVec // by source
	Duplicates       *prometheus.CounterVec // by source
	Resolved         *prometheus.CounterVec // by source
	Ignored          *prometheus.CounterVec // by source
	Rejected         *prometheus.CounterVec // by reason
	DependencyErrors *prometheus.CounterVec // by dependency, kind
	RequestDuration  *prometheus.HistogramVec
	BreakerState     *prometheus.GaugeVec // by dependency
	InFlight         prometheus.Gauge
	StatusErrors     prometheus.Counter
	// StatusCalls counts the status projection's API calls, by call and
	// result (their values are the create package's; app starts them at
	// zero).
	StatusCalls *prometheus.CounterVec
	// SignalsRejected counts the items of a request that could not be
	// stored while the others were; SignalsAdjusted the stored signals
	// whose timestamp was clamped or name shortened.
	SignalsRejected *prometheus.CounterVec // by source
	SignalsAdjusted *prometheus.CounterVec // by source
	// RecordsInvalidated counts the Redis records deleted because the
	// episode they named ended.
	RecordsInvalidated prometheus.Counter
}

// EpisodeCache registers alertgate_episode_cache_resources, read from size.
func (m *Metrics) EpisodeCache(size func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace,
		Name: "episode_cache_resources", Help: "RemediationRequests held by the episode cache."}, size))
}

// New returns the metrics registered on a new registry, with the Go and
// process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		SignalsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "signals_received_total", Help: "Signals received, by source."}, []string{"source"}),
		ResourcesCreated: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "resources_created_total", Help: "RemediationRequests created, by source."}, []string{"source"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "signals_duplicate_total", Help: "Signals recorded as duplicates, by source."}, []string{"source"}),
		Resolved: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "signals_resolved_total", Help: "Resolved alerts received, by source."}, []string{"source"}),
		Ignored: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "signals_ignored_total", Help: "Valid but not actionable items (Normal events), by source."}, []string{"source"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "requests_rejected_total", Help: "Requests refused, by reason."}, []string{"reason"}),
		DependencyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "dependency_errors_total", Help: "Failed calls to a dependency, by dependency and kind."}, []string{"dependency", "kind"}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace,
			Name: "http_request_duration_seconds", Help: "HTTP request duration, by handler and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30}},
			[]string{"handler", "code"}),
		BreakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace,
			Name: "breaker_state", Help: "Circuit breaker state by dependency: 0 closed, 1 half-open, 2 open."}, []string{"dependency"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace,
			Name: "http_requests_in_flight", Help: "Signal requests being processed."}),
		StatusErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace,
			Name: "status_update_errors_total", Help: "Failed RemediationRequest status updates (retried)."}),
		StatusCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "status_calls_total", Help: "API calls of the status projection, by call (get, patch) and result (ok, conflict, not_found, error)."},
			[]string{"call", "result"}),
		SignalsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "signals_rejected_total", Help: "Invalid items rejected from a request whose other items were stored, by source."}, []string{"source"}),
		SignalsAdjusted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
			Name: "signals_adjusted_total", Help: "Signals stored with a timestamp clamped to the receive time or a name shortened, by source."}, []string{"source"}),
		RecordsInvalidated: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace,
			Name: "records_invalidated_total", Help: "Redis records deleted because the episode they named ended."}),
	}
	// Known label values start at zero, so that rate() and alerts see
	// them before the first event.
	for _, src := range []pipeline.Source{pipeline.SourcePrometheus, pipeline.SourceKubernetesEvent} {
		for _, c := range []*prometheus.CounterVec{m.SignalsReceived, m.ResourcesCreated, m.Duplicates, m.Resolved, m.Ignored,
			m.SignalsRejected, m.SignalsAdjusted} {
			c.WithLabelValues(string(src))
		}
	}
	for _, r := range RejectReasons {
		m.Rejected.WithLabelValues(r)
	}
	for _, d := range []pipeline.Dependency{pipeline.Redis, pipeline.Kubernetes} {
		m.BreakerState.WithLabelValues(string(d)).Set(0)
		for _, k := range []pipeline.ErrorKind{pipeline.KindUnavailable, pipeline.KindTimeout, pipeline.KindOOM,
			pipeline.KindBreakerOpen, pipeline.KindOverloaded, pipeline.KindRejected, pipeline.KindInFlight,
			pipeline.KindConflict, pipeline.KindNotSynced} {
			m.DependencyErrors.WithLabelValues(string(d), string(k))
		}
	}
	m.Registry.MustRegister(
		// go_gc_heap_live_bytes (the heap the last GC marked live) besides
		// the memstats: what the episode cache costs, without garbage.
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.SignalsReceived, m.ResourcesCreated, m.Duplicates, m.Resolved, m.Ignored, m.Rejected,
		m.DependencyErrors, m.RequestDuration, m.BreakerState, m.InFlight, m.StatusErrors, m.StatusCalls,
		m.SignalsRejected, m.SignalsAdjusted, m.RecordsInvalidated,
	)
	return m
}
