// Package server is the gateway's HTTP surface: the two signal routes, the
// health probes and /metrics, with request IDs, the request deadline,
// panic recovery, metrics and one structured log line per failure.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/alertgate/gateway/internal/auth"
	"github.com/alertgate/gateway/internal/ingest"
	"github.com/alertgate/gateway/internal/metrics"
	"github.com/alertgate/gateway/internal/pipeline"
	"github.com/alertgate/gateway/internal/respond"
)

// Defaults of Options.
const (
	DefaultDeadline    = 15 * time.Second
	DefaultRetryAfter  = 2 * time.Second
	DefaultMaxInFlight = 256
)

// Options configure a Server.
type Options struct {
	// Deadline bounds each signal request; past it the answer is 504.
	// Default: 15s.
	Deadline time.Duration
	// RetryAfter is sent with 503 and 504. Default: 2s.
	RetryAfter time.Duration
	// Logger. Default: slog.Default().
	Logger *slog.Logger
	// Metrics. Default: a new metrics.Metrics.
	Metrics *metrics.Metrics
	// Ready checks the dependencies for /readyz. Default: always ready.
	Ready func(context.Context) error
	// Guard authenticates senders; nil lets everyone in. Default: nil.
	Guard *auth.Guard
	// MaxInFlight bounds concurrent signal requests; above it, 503 with
	// Retry-After. Default: 256.
	MaxInFlight int
	// SenderRate (requests per second) and SenderBurst limit each sender;
	// 0 turns the limit off. Default: off.
	SenderRate  float64
	SenderBurst int
	// Now reads the clock for receive times; a test seam for replicas
	// whose clocks differ. Default: time.Now.
	Now func() time.Time
}

// Server serves the gateway's HTTP API.
type Server struct {
	opts     Options
	reader   *ingest.Reader
	proc     *pipeline.Processor
	draining atomic.Bool
	handler  http.Handler
	inFlight chan struct{}
	senders  *senderLimits
}

// New returns a Server.
func New(reader *ingest.Reader, proc *pipeline.Processor, opts Options) *Server {
	if opts.Deadline <= 0 {
		opts.Deadline = DefaultDeadline
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	if opts.Ready == nil {
		opts.Ready = func(context.Context) error { return nil }
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, reader: reader, proc: proc, inFlight: make(chan struct{}, opts.MaxInFlight)}
	if opts.SenderRate > 0 {
		s.senders = newSenderLimits(opts.SenderRate, max(opts.SenderBurst, 1))
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/signals/prometheus", s.instrument("prometheus", s.guard(s.signals(pipeline.SourcePrometheus, reader.Prometheus))))
	mux.Handle("/api/v1/signals/kubernetes-event", s.instrument("kubernetes-event", s.guard(s.signals(pipeline.SourceKubernetesEvent, reader.KubernetesEvent))))
	mux.Handle("/healthz", s.instrument("healthz", http.HandlerFunc(s.healthz)))
	mux.Handle("/readyz", s.instrument("readyz", http.HandlerFunc(s.readyz)))
	mux.Handle("/metrics", promhttp.HandlerFor(opts.Metrics.Registry, promhttp.HandlerOpts{Registry: opts.Metrics.Registry}))
	mux.Handle("/", s.instrument("other", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		respond.Write(w, respond.Problem{Type: respond.ProblemType("not-found"), Title: "Not found",
			Status: http.StatusNotFound, Instance: r.URL.Path, RequestID: requestIDFrom(r.Context())})
	})))
	s.handler = s.requestID(s.recover(stripIdentity(mux)))
	return s
}

// Handler returns the root handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Drain makes /readyz fail so load balancers stop sending, while in-flight
// and late requests are still served.
func (s *Server) Drain() { s.draining.Store(true) }

type readFunc func(http.ResponseWriter, *http.Request, time.Time) (*pipeline.Request, error)

func (s *Server) signals(source pipeline.Source, read readFunc) http.Handler {
	src := string(source)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := requestIDFrom(r.Context())
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			respond.Write(w, respond.Problem{Type: respond.ProblemType("method-not-allowed"), Title: "Method not allowed",
				Status: http.StatusMethodNotAllowed, Detail: "use POST", Instance: r.URL.Path, RequestID: id})
			return
		}
		start := time.Now()
		m := s.opts.Metrics
		m.InFlight.Inc()
		defer m.InFlight.Dec()
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.Deadline)
		defer cancel()

		req, err := read(w, r, s.opts.Now())
		if err != nil {
			p := respond.Error(w, r, id, err, s.opts.RetryAfter)
			m.Rejected.WithLabelValues(reason(p)).Inc()
			s.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "request rejected",
				slog.String("request_id", id), slog.String("source", src), slog.Int("status", p.Status),
				slog.String("field", p.Field), slog.String("error", err.Error()))
			return
		}
		req.ID = id
		m.SignalsReceived.WithLabelValues(src).Add(float64(len(req.Signals)))
		m.Ignored.WithLabelValues(src).Add(float64(req.Ignored))

		res, err := s.proc.Process(ctx, req)
		if err != nil {
			s.fail(ctx, w, r, req, err, start)
			return
		}
		for _, o := range res.Outcomes {
			switch o.Status {
			case pipeline.StatusCreated:
				m.ResourcesCreated.WithLabelValues(src).Inc()
			case pipeline.StatusDuplicate:
				m.Duplicates.WithLabelValues(src).Inc()
			case pipeline.StatusResolved:
				m.Resolved.WithLabelValues(src).Inc()
			}
		}
		code := respond.Result(w, r, id, res)
		if len(res.Rejected) > 0 {
			m.SignalsRejected.WithLabelValues(src).Add(float64(len(res.Rejected)))
			s.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "signals rejected", slog.String("request_id", id),
				slog.String("source", src), slog.Int("status", code), slog.Int("rejected", len(res.Rejected)),
				slog.Any("items", firstRejections(res.Rejected)))
		}
		if n := clamped(res); n > 0 {
			m.SignalsAdjusted.WithLabelValues(src).Add(float64(n))
		}
		if s.opts.Logger.Enabled(ctx, slog.LevelDebug) {
			s.opts.Logger.LogAttrs(ctx, slog.LevelDebug, "request stored", slog.String("request_id", id),
				slog.String("source", src), slog.Int("status", code), slog.Int("signals", len(req.Signals)),
				slog.Float64("duration_ms", ms(time.Since(start))))
		}
	})
}

// fail answers a processing error and writes its one log line.
func (s *Server) fail(ctx context.Context, w http.ResponseWriter, r *http.Request, req *pipeline.Request, err error, start time.Time) {
	code := respond.Error(w, r, req.ID, err, s.opts.RetryAfter).Status
	fps := make([]string, len(req.Signals))
	for i := range req.Signals {
		fps[i] = req.Signals[i].Fingerprint
	}
	attrs := []slog.Attr{
		slog.String("request_id", req.ID), slog.String("source", string(req.Source)), slog.Int("status", code),
		slog.Any("fingerprints", fps),
	}
	if d, ok := pipeline.AsDependencyError(err); ok {
		attrs = append(attrs, slog.String("dependency", string(d.Dependency)), slog.String("operation", d.Op), slog.String("kind", string(d.Kind)))
		s.opts.Metrics.DependencyErrors.WithLabelValues(string(d.Dependency), string(d.Kind)).Inc()
	}
	var de *pipeline.DeadlineError
	if errors.As(err, &de) {
		attrs = append(attrs, slog.Bool("deadline_exceeded", true))
	}
	attrs = append(attrs, slog.String("error", err.Error()), slog.Float64("duration_ms", ms(time.Since(start))))
	s.opts.Logger.LogAttrs(context.WithoutCancel(ctx), slog.LevelError, "signals not stored", attrs...)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("shutting down\n"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.opts.Ready(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(err.Error() + "\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

func reason(p respond.Problem) string {
	switch p.Status {
	case http.StatusRequestEntityTooLarge:
		return "body_too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusRequestTimeout:
		return "request_timeout"
	}
	return "invalid_payload"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// firstRejections bounds the rejections one log line lists.
func firstRejections(rs []pipeline.Rejection) []pipeline.Rejection {
	if len(rs) > 20 {
		return rs[:20]
	}
	return rs
}

// clamped counts the stored signals that carry a warning (a timestamp
// clamped, a name shortened).
func clamped(res *pipeline.Result) int {
	n := 0
	for _, o := range res.Outcomes {
		if len(o.Warnings) > 0 {
			n++
		}
	}
	return n
}

// stripIdentity drops identity-claiming headers from every request.
func stripIdentity(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.StripIdentityHeaders(r.Header)
		next.ServeHTTP(w, r)
	})
}

type ctxKey struct{}

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestID takes the sender's X-Request-ID when it is sane, makes one
// otherwise, and echoes it on every response.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if !validRequestID.MatchString(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-ID", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
	})
}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// recover turns a panic into a 500 problem and a log line; the server
// keeps running.
func (s *Server) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.opts.Logger.Error("panic", "request_id", requestIDFrom(r.Context()), "panic", v)
				respond.Write(w, respond.Problem{Type: respond.ProblemType("internal"), Title: "Internal error",
					Status: http.StatusInternalServerError, RequestID: requestIDFrom(r.Context())})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// instrument observes the duration of each request by handler and code.
func (s *Server) instrument(name string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		s.opts.Metrics.RequestDuration.WithLabelValues(name, strconv.Itoa(rec.code)).Observe(time.Since(start).Seconds())
	})
}
