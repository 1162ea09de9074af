package server

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/alertgate/gateway/internal/auth"
	"github.com/alertgate/gateway/internal/pipeline"
	"github.com/alertgate/gateway/internal/respond"
)

// guard runs, in order: the in-flight bound (503), authentication and
// authorization (401, 403, or 503 when the authority cannot be asked), and
// the per-sender token bucket (503). A refused request stores nothing: it
// never reaches the body. Overload is answered 503 with Retry-After, never
// 429: Alertmanager retries 5xx only and drops a 4xx batch for good.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := requestIDFrom(r.Context())
		select {
		case s.inFlight <- struct{}{}:
			defer func() { <-s.inFlight }()
		default:
			s.refuse(w, r, http.StatusServiceUnavailable, "overloaded", "Overloaded",
				"the gateway is at its bound of concurrent requests; nothing was stored, retry", "in_flight")
			return
		}
		sender := ""
		if s.opts.Guard != nil {
			token := auth.BearerToken(r)
			if token == "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="alertgate"`)
				s.refuse(w, r, http.StatusUnauthorized, "unauthorized", "Unauthorized", "a bearer token is required", "unauthenticated")
				return
			}
			d, err := s.opts.Guard.Check(r.Context(), token)
			switch {
			case err != nil:
				// Never 401/403 for an outage: Alertmanager would drop the
				// alerts for good.
				w.Header().Set("Retry-After", respond.RetryAfterSeconds(s.opts.RetryAfter))
				s.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "authentication unavailable",
					slog.String("request_id", id), slog.String("error", err.Error()))
				s.opts.Metrics.DependencyErrors.WithLabelValues(string(pipeline.Kubernetes), string(pipeline.KindUnavailable)).Inc()
				respond.Write(w, respond.Problem{Type: respond.ProblemType("auth-unavailable"), Title: "Authentication unavailable",
					Status: http.StatusServiceUnavailable, Detail: "the token could not be reviewed; retry", Instance: r.URL.Path, RequestID: id})
				return
			case !d.Authenticated:
				w.Header().Set("WWW-Authenticate", `Bearer realm="alertgate", error="invalid_token"`)
				s.refuse(w, r, http.StatusUnauthorized, "unauthorized", "Unauthorized", "the bearer token is not valid", "unauthenticated")
				return
			case !d.Allowed:
				s.refuse(w, r, http.StatusForbidden, "forbidden", "Forbidden", d.Reason, "forbidden")
				return
			}
			sender = d.User
		}
		if s.senders != nil {
			if sender == "" {
				sender, _, _ = net.SplitHostPort(r.RemoteAddr)
			}
			if !s.senders.allow(sender) {
				s.refuse(w, r, http.StatusServiceUnavailable, "overloaded", "Overloaded",
					"this sender is over its rate; nothing was stored, retry", "sender_rate")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// refuse answers a problem that stores nothing, with its log line and
// metric.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, slug, title, detail, reason string) {
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", respond.RetryAfterSeconds(s.opts.RetryAfter))
	}
	s.opts.Metrics.Rejected.WithLabelValues(reason).Inc()
	s.opts.Logger.LogAttrs(r.Context(), slog.LevelWarn, "request refused", slog.String("request_id", requestIDFrom(r.Context())),
		slog.Int("status", code), slog.String("reason", reason), slog.String("remote", r.RemoteAddr))
	respond.Write(w, respond.Problem{Type: respond.ProblemType(slug), Title: title, Status: code,
		Detail: detail, Instance: r.URL.Path, RequestID: requestIDFrom(r.Context())})
}

// senderLimits is a token bucket per sender, forgotten after ten idle
// minutes and bounded in number.
type senderLimits struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

const maxSenders = 10000

func newSenderLimits(perSecond float64, burst int) *senderLimits {
	return &senderLimits{rate: rate.Limit(perSecond), burst: burst, buckets: map[string]*bucket{}, swept: time.Now()}
}

func (l *senderLimits) allow(sender string) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute || len(l.buckets) >= maxSenders {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > 10*time.Minute {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[sender]
	if b == nil {
		if len(l.buckets) >= maxSenders {
			return false
		}
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[sender] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}
