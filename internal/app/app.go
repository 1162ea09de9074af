// Package app assembles a gateway from its configuration: the Redis client
// and dedup store, the Kubernetes client and creator, the status syncer,
// the processor and the HTTP server. cmd/gateway and testenv (the tests'
// environment) both build gateways here, so tests run it as shipped.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/auth"
	"github.com/alertgate/gateway/internal/breaker"
	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/internal/create"
	"github.com/alertgate/gateway/internal/dedup"
	"github.com/alertgate/gateway/internal/episode"
	"github.com/alertgate/gateway/internal/ingest"
	"github.com/alertgate/gateway/internal/metrics"
	"github.com/alertgate/gateway/internal/pipeline"
	"github.com/alertgate/gateway/internal/server"
)

// Deps are what a caller may provide instead of the configuration's.
type Deps struct {
	// RESTConfig replaces the kubeconfig / in-cluster lookup.
	RESTConfig *rest.Config
	// Logger. Default: JSON on stderr at the configured level.
	Logger *slog.Logger
	// Hooks are test-only timing hooks of the request path.
	Hooks pipeline.Hooks
	// Wrap wraps parts of the gateway: test seams, to build deliberately
	// broken gateways that the chaos checkers must catch. Default: none.
	Wrap Wrappers
	// Clock reads the time the gateway records (receive times, first and
	// last seen): a test seam for replicas whose clocks differ. Timeouts
	// always use the real clock. Default: time.Now.
	Clock func() time.Time
}

// Wrappers wrap parts of a gateway; each is optional.
type Wrappers struct {
	Creator  func(pipeline.Creator) pipeline.Creator
	Deduper  func(pipeline.Deduper) pipeline.Deduper
	Episodes func(pipeline.Episodes) pipeline.Episodes
	// Handler wraps the HTTP handler (after the request ID, before
	// everything else).
	Handler func(http.Handler) http.Handler
}

// Any reports whether any part is wrapped.
func (w Wrappers) Any() bool {
	return w.Creator != nil || w.Deduper != nil || w.Episodes != nil || w.Handler != nil
}

// App is one gateway.
type App struct {
	cfg         config.Config
	log         *slog.Logger
	rdb         *redis.Client
	kube        client.Client
	syncer      *create.StatusSyncer
	episodes    *episode.Cache
	invalidator *dedup.Invalidator
	proc        *pipeline.Processor
	server      *server.Server
	http        *http.Server

	// kubeIdle closes the API client's idle connections at shutdown.
	kubeIdle func()
	certs    *server.CertReloader

	mu sync.Mutex
	ln net.Listener
}

// New builds a gateway; it does not contact Redis or the API server.
func New(cfg config.Config, deps Deps) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := deps.Logger
	if log == nil {
		log = NewLogger(os.Stderr, cfg.LogLevel)
	}
	m := metrics.New()
	onState := func(name string, from, to breaker.State) {
		m.BreakerState.WithLabelValues(name).Set(float64(to))
		log.Warn("circuit breaker", "dependency", name, "from", from.String(), "to", to.String())
	}
	bo := breaker.Options{Failures: uint32(cfg.Breaker.Failures), OpenFor: cfg.Breaker.OpenFor.Duration, OnStateChange: onState}

	rdb := NewRedis(cfg)
	// Built but not returned: close what was opened.
	ok := false
	defer func() {
		if !ok {
			_ = rdb.Close()
		}
	}()
	rbo := bo
	rbo.Name = string(pipeline.Redis)
	store, err := dedup.New(rdb, dedup.Options{
		KeyPrefix: cfg.Redis.KeyPrefix, Window: cfg.Dedup.Window.Duration, Lease: cfg.Dedup.Lease.Duration,
		Timeout: cfg.Redis.Timeout.Duration, Breaker: breaker.New(rbo),
	})
	if err != nil {
		return nil, err
	}

	rc := deps.RESTConfig
	if rc == nil {
		if rc, err = RESTConfig(cfg.Kubernetes.Kubeconfig); err != nil {
			return nil, err
		}
	}
	rc, idle := tuneREST(rc, cfg)
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, authnv1.AddToScheme, authzv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	kube, err := client.New(rc, client.Options{Scheme: scheme, Mapper: restMapper()})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	// A watch lasts longer than any call's timeout: its client has none,
	// and its context ends it.
	wrc := rest.CopyConfig(rc)
	wrc.Timeout = 0
	watcher, err := client.NewWithWatch(wrc, client.Options{Scheme: scheme, Mapper: restMapper()})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	terminal := cfg.TerminalPhaseSet()
	invalidator := store.NewInvalidator()
	invalidator.OnDeleted = func(n int) { m.RecordsInvalidated.Add(float64(n)) }
	// The syncer writes through the creator, which tells the cache what
	// it writes; the cache tells the syncer what it sees and which episodes
	// ended (set just below, before anything runs).
	var syncer *create.StatusSyncer
	episodes := episode.New(watcher, episode.Options{
		Namespace: cfg.Kubernetes.Namespace, Terminal: terminal,
		OnEnded: func(fp string, seq int64) {
			invalidator.Enqueue(fp, seq)
			syncer.Ended(fp, seq)
		},
		OnVersion: func(rr *v1alpha1.RemediationRequest) { syncer.Seen(rr) },
		Timeout:   cfg.Kubernetes.Timeout.Duration, Logger: log,
	})
	m.EpisodeCache(func() float64 { return float64(episodes.Len()) })
	kubeBreaker := create.NewBreaker(bo)
	creator, err := create.New(kube, create.Options{
		Namespace: cfg.Kubernetes.Namespace, Timeout: cfg.Kubernetes.Timeout.Duration, Breaker: kubeBreaker,
		Terminal: terminal, Observer: episodes,
	})
	if err != nil {
		return nil, err
	}
	for _, call := range create.StatusCalls {
		for _, r := range create.CallResults {
			m.StatusCalls.WithLabelValues(call, r)
		}
	}
	syncer = create.NewStatusSyncer(creator, create.StatusOptions{
		Interval: cfg.StatusInterval.Duration,
		OnError: func(key types.NamespacedName, err error) {
			m.StatusErrors.Inc()
			log.Debug("status update failed; will retry", "resource", key.String(), "error", err.Error())
		},
		OnCall: func(call, result string) { m.StatusCalls.WithLabelValues(call, result).Inc() },
	})
	var (
		pc pipeline.Creator  = creator
		pd pipeline.Deduper  = store
		pe pipeline.Episodes = episodes
	)
	if deps.Wrap.Creator != nil {
		pc = deps.Wrap.Creator(pc)
	}
	if deps.Wrap.Deduper != nil {
		pd = deps.Wrap.Deduper(pd)
	}
	if deps.Wrap.Episodes != nil {
		pe = deps.Wrap.Episodes(pe)
	}
	proc, err := pipeline.NewProcessor(pd, pc, pe, syncer, pipeline.Options{
		Lease: cfg.Dedup.Lease.Duration, Hooks: deps.Hooks, Now: deps.Clock, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	guard, err := newGuard(cfg, kube, kubeBreaker)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, rdb: rdb, kube: kube, syncer: syncer, episodes: episodes, invalidator: invalidator,
		proc: proc, kubeIdle: idle}
	if cfg.TLS.CertFile != "" {
		if a.certs, err = server.NewCertReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile); err != nil {
			return nil, err
		}
	}
	a.server = server.New(ingest.New(ingest.Options{
		MaxBody: cfg.Request.MaxBody, MaxAlerts: cfg.Request.MaxAlerts, MaxLabels: cfg.Request.MaxLabels,
		MaxClockSkew: cfg.Request.MaxClockSkew.Duration,
	}), proc, server.Options{
		Deadline: cfg.Request.Deadline.Duration, RetryAfter: cfg.Request.RetryAfter.Duration,
		Logger: log, Metrics: m, Ready: a.ready, Guard: guard, Now: deps.Clock,
		MaxInFlight: cfg.Request.MaxInFlight, SenderRate: cfg.Request.SenderRate, SenderBurst: cfg.Request.SenderBurst,
	})
	handler := a.server.Handler()
	if deps.Wrap.Handler != nil {
		handler = deps.Wrap.Handler(handler)
	}
	a.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		// A body must arrive well within the request deadline.
		ReadTimeout:    cfg.Request.Deadline.Duration,
		WriteTimeout:   cfg.Request.Deadline.Duration + 5*time.Second,
		IdleTimeout:    90 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ok = true
	return a, nil
}

// NewRedis returns the Redis client for the configuration: the master found
// through Sentinel when a master name is set, else the address.
func NewRedis(cfg config.Config) *redis.Client {
	if cfg.Redis.SentinelMaster == "" {
		return redis.NewClient(RedisOptions(cfg))
	}
	o := RedisOptions(cfg)
	return redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: cfg.Redis.SentinelMaster, SentinelAddrs: cfg.Redis.SentinelAddrs, SentinelPassword: cfg.Redis.SentinelPassword,
		Password: o.Password, DB: o.DB, ClientName: o.ClientName, Protocol: o.Protocol,
		DialTimeout: o.DialTimeout, DialerRetries: o.DialerRetries, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		PoolTimeout: o.PoolTimeout, ContextTimeoutEnabled: o.ContextTimeoutEnabled, MaxRetries: o.MaxRetries, PoolSize: o.PoolSize,
	})
}

// RedisOptions are the go-redis options for the configuration: fail fast,
// never retry (a claim is not idempotent), honour context deadlines.
func RedisOptions(cfg config.Config) *redis.Options {
	t := cfg.Redis.Timeout.Duration
	return &redis.Options{
		Addr:                  cfg.Redis.Addr,
		Password:              cfg.Redis.Password,
		DB:                    cfg.Redis.DB,
		ClientName:            "alertgate-gateway",
		DialTimeout:           t,
		DialerRetries:         1,
		ReadTimeout:           t,
		WriteTimeout:          t,
		PoolTimeout:           t,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		PoolSize:              cfg.Redis.PoolSize,
		Protocol:              2,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	}
}

// restMapper knows the one kind the gateway writes. The default mapper
// discovers kinds from the API server on first use, without the request's
// context and with client-go's retries: a first request during an API
// outage would hang for many seconds in discovery.
func restMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper([]schema.GroupVersion{v1alpha1.GroupVersion})
	m.Add(v1alpha1.GroupVersion.WithKind("RemediationRequest"), meta.RESTScopeNamespace)
	m.Add(v1alpha1.GroupVersion.WithKind("RemediationRequestList"), meta.RESTScopeNamespace)
	m.Add(authnv1.SchemeGroupVersion.WithKind("TokenReview"), meta.RESTScopeRoot)
	m.Add(authzv1.SchemeGroupVersion.WithKind("SubjectAccessReview"), meta.RESTScopeRoot)
	return m
}

// newGuard builds sender authentication for the configured mode; nil for
// none.
func newGuard(cfg config.Config, kube client.Client, b *breaker.Breaker) (*auth.Guard, error) {
	switch cfg.Auth.Mode {
	case auth.ModeKubernetes:
		return auth.NewGuard(&auth.KubernetesReviewer{
			Client: kube, Breaker: b, Namespace: cfg.Kubernetes.Namespace,
			Verb: cfg.Auth.Verb, Group: v1alpha1.GroupVersion.Group, Resource: cfg.Auth.Resource,
		}, cfg.Auth.CacheTTL.Duration), nil
	case auth.ModeStatic:
		rev, err := auth.NewStaticReviewer(cfg.Auth.TokenFile)
		if err != nil {
			return nil, err
		}
		return auth.NewGuard(rev, cfg.Auth.CacheTTL.Duration), nil
	}
	return nil, nil
}

// RESTConfig loads a kubeconfig (path, else $KUBECONFIG and ~/.kube/config)
// or the in-cluster configuration.
func RESTConfig(path string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err == nil {
		return rc, nil
	}
	if in, ierr := rest.InClusterConfig(); ierr == nil {
		return in, nil
	}
	return nil, fmt.Errorf("kubernetes: no kubeconfig and not in a cluster: %w", err)
}

// tuneREST sets the client's rate limits and timeouts, never retries (see
// failFast), and speaks HTTP/1.1:
// with HTTP/2 every request shares one connection, and a connection that
// lost packets under a network fault stalls all of them until a health
// ping (tens of seconds); an HTTP/1.1 request that times out takes only its
// own connection down. Its own dialer gives the gateway a transport of its
// own (client-go shares transports between equal configurations), whose
// idle connections the returned func closes at shutdown.
func tuneREST(in *rest.Config, cfg config.Config) (*rest.Config, func()) {
	rc := rest.CopyConfig(in)
	rc.QPS = float32(cfg.Kubernetes.QPS)
	rc.Burst = cfg.Kubernetes.Burst
	rc.Timeout = cfg.Kubernetes.Timeout.Duration
	rc.UserAgent = "alertgate-gateway"
	rc.NextProtos = []string{"http/1.1"}
	d := &net.Dialer{Timeout: cfg.Kubernetes.Timeout.Duration, KeepAlive: 30 * time.Second}
	rc.Dial = d.DialContext
	var mu sync.Mutex
	var rts []http.RoundTripper
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		mu.Lock()
		rts = append(rts, rt)
		mu.Unlock()
		return failFast{next: rt}
	})
	return rc, func() {
		mu.Lock()
		defer mu.Unlock()
		for _, rt := range rts {
			utilnet.CloseIdleConnectionsFor(rt)
		}
	}
}

// NewLogger returns the gateway's JSON logger.
func NewLogger(w *os.File, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// ready answers /readyz: Redis and the API server must both answer, and
// the gateway must have read its episodes.
func (a *App) ready(ctx context.Context) error {
	if !a.episodes.Synced() {
		return errors.New("episodes: not yet read from the API server")
	}
	var wg sync.WaitGroup
	var rerr, kerr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		rerr = a.rdb.Ping(ctx).Err()
	}()
	go func() {
		defer wg.Done()
		var l v1alpha1.RemediationRequestList
		kerr = a.kube.List(ctx, &l, client.InNamespace(a.cfg.Kubernetes.Namespace), client.Limit(1))
	}()
	wg.Wait()
	var errs []error
	if rerr != nil {
		errs = append(errs, fmt.Errorf("redis: %w", rerr))
	}
	if kerr != nil {
		errs = append(errs, fmt.Errorf("kubernetes: %w", kerr))
	}
	return errors.Join(errs...)
}

// Listen binds the configured address.
func (a *App) Listen() error {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", a.cfg.Listen, err)
	}
	a.mu.Lock()
	a.ln = ln
	a.mu.Unlock()
	return nil
}

// Addr is the bound address (after Listen).
func (a *App) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Run serves until ctx is done, then shuts down gracefully: /readyz fails,
// in-flight requests drain (bounded by the shutdown timeout), pending
// status updates are flushed, and connections are closed.
func (a *App) Run(ctx context.Context) error {
	if a.Addr() == "" {
		if err := a.Listen(); err != nil {
			return err
		}
	}
	syncCtx, stopSync := context.WithCancel(context.Background())
	var background sync.WaitGroup
	background.Add(3)
	go func() {
		defer background.Done()
		a.syncer.Run(syncCtx, a.cfg.ShutdownTimeout.Duration/2)
	}()
	go func() {
		defer background.Done()
		a.episodes.Run(syncCtx)
	}()
	go func() {
		defer background.Done()
		a.invalidator.Run(syncCtx)
	}()
	serveErr := make(chan error, 1)
	if a.certs != nil {
		a.http.TLSConfig = &tls.Config{GetCertificate: a.certs.GetCertificate, MinVersion: tls.VersionTLS12}
		go func() { serveErr <- a.http.ServeTLS(a.ln, "", "") }()
	} else {
		go func() { serveErr <- a.http.Serve(a.ln) }()
	}
	a.log.Info("gateway listening", "addr", a.Addr(), "tls", a.cfg.TLS.CertFile != "", "auth", a.cfg.Auth.Mode,
		"redis", a.cfg.Redis.Addr, "sentinel_master", a.cfg.Redis.SentinelMaster, "namespace", a.cfg.Kubernetes.Namespace)

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	a.server.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout.Duration)
	defer cancel()
	if serr := a.http.Shutdown(sctx); serr != nil {
		a.log.Warn("shutdown: in-flight requests did not drain in time", "error", serr.Error())
		_ = a.http.Close()
	}
	// Commits and releases still running end within their grace.
	a.proc.Wait()
	stopSync()
	background.Wait()
	_ = a.rdb.Close()
	a.kubeIdle()
	a.log.Info("gateway stopped")
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// RouteLibraryLogs sends the logs of go-redis and client-go (klog) to log,
// so that everything the process prints is JSON. go-redis reports each
// failed dial, which the request path already logs once per request with
// its context: those lines go to debug.
func RouteLibraryLogs(log *slog.Logger) {
	redis.SetLogger(redisLogger{log})
	klog.SetSlogLogger(log)
}

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...), "component", "go-redis")
}
