// Package testenv is the test environment of the gateway's verification
// side, a library as envtest is: a real redis-server, a real control plane
// (kube-apiserver + etcd) with the RemediationRequest CRD, an embedded
// Toxiproxy with one proxy in front of each, and gateways wired through the
// proxies. The chaos suite, the benchmarks and both of their commands start
// it here; testenv/fault breaks it and testenv/load sends to it.
//
//	gateway ──► toxiproxy "redis" ──► redis-server
//	        └─► toxiproxy "kubernetes" ──► kube-apiserver ──► etcd
//
// Verifiers read Redis and the API server directly, never through the
// proxies and never through the gateway.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/localdeps"
)

// Dependency names what a fault acts on: one of the proxied dependencies,
// the gateway process itself, or the gateway's resources as a remediation
// controller sees them.
type Dependency string

const (
	Redis      Dependency = "redis"
	Kubernetes Dependency = "kubernetes"
	// GatewayProcess is a gateway process (paused, not its dependencies).
	GatewayProcess Dependency = "gateway"
	// Controller is the remediation controller: it blinds no dependency,
	// it acts on the gateway's resources through the API.
	Controller Dependency = "controller"
)

// Dependencies lists the proxied dependencies, in a stable order.
var Dependencies = []Dependency{Redis, Kubernetes}

// Options configure an Env.
type Options struct {
	// AssetsDir holds kube-apiserver and etcd (Assets finds or builds
	// them). Default: $KUBEBUILDER_ASSETS.
	AssetsDir string
	// CRDDir holds the CRD. Default: config/crd of the repository (Root).
	CRDDir string
	// RedisMaxMemory is redis' maxmemory with the noeviction policy.
	// Default: "256mb".
	RedisMaxMemory string
	// Output receives the logs of the processes. Default: discarded.
	Output io.Writer
}

// Env is a running test environment.
type Env struct {
	opts Options

	Redis        *localdeps.RedisServer
	ControlPlane *localdeps.ControlPlane
	// Kube reads and writes the API server directly (not proxied).
	Kube client.Client
	// RDB talks to Redis directly (not proxied).
	RDB *redis.Client

	kubeHTTP *http.Client
	toxi     *toxiproxy.ApiServer
	proxies  map[Dependency]*toxiproxy.Proxy

	gwMu     sync.Mutex
	gateways []*Gateway
}

// Start starts Redis, the control plane and Toxiproxy. Stop it when done.
func Start(ctx context.Context, opts Options) (*Env, error) {
	if opts.RedisMaxMemory == "" {
		opts.RedisMaxMemory = "256mb"
	}
	localdeps.ReapOrphans()
	e := &Env{opts: opts, proxies: map[Dependency]*toxiproxy.Proxy{}}
	ok := false
	defer func() {
		if !ok {
			e.Stop()
		}
	}()
	var err error
	e.Redis, err = localdeps.StartRedis(ctx, localdeps.RedisOptions{MaxMemory: opts.RedisMaxMemory})
	if err != nil {
		return nil, err
	}
	e.ControlPlane, err = localdeps.StartControlPlane(ctx, localdeps.ControlPlaneOptions{
		AssetsDir: opts.AssetsDir, CRDDir: opts.CRDDir, Output: opts.Output,
	})
	if err != nil {
		return nil, err
	}
	e.kubeHTTP, err = rest.HTTPClientFor(e.ControlPlane.Config)
	if err != nil {
		return nil, err
	}
	e.Kube, err = client.New(e.ControlPlane.Config, client.Options{Scheme: e.ControlPlane.Scheme, HTTPClient: e.kubeHTTP})
	if err != nil {
		return nil, err
	}
	e.RDB = redis.NewClient(&redis.Options{Addr: e.Redis.Addr(), ClientName: "alertgate-chaos", MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: 5 * time.Second, ContextTimeoutEnabled: true, DialerRetries: 1, Protocol: 2})
	// Toxiproxy logs a line per connection, and some toxics log through
	// zerolog's global logger: keep both quiet.
	zerolog.SetGlobalLevel(zerolog.Disabled)
	e.toxi = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	for dep, upstream := range map[Dependency]string{Redis: e.Redis.Addr(), Kubernetes: e.ControlPlane.APIServerAddr()} {
		p := toxiproxy.NewProxy(e.toxi, string(dep), "127.0.0.1:0", upstream)
		if err := p.Start(); err != nil {
			return nil, fmt.Errorf("testenv: start %s proxy: %w", dep, err)
		}
		e.proxies[dep] = p
	}
	if err := e.warmUp(ctx); err != nil {
		return nil, err
	}
	ok = true
	return e, nil
}

// warmUp makes the API server's first RemediationRequest write (about 2 s
// after a start) happen here rather than inside a measured scenario.
func (e *Env) warmUp(ctx context.Context) error {
	const ns = "chaos-warmup"
	if err := e.CreateNamespace(ctx, ns); err != nil {
		return fmt.Errorf("testenv: warm up: %w", err)
	}
	rr := &v1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "warmup"},
		Spec: v1alpha1.RemediationRequestSpec{
			Fingerprint: strings.Repeat("0", 64), SignalName: "Warmup", Severity: "info", Source: "prometheus",
			FiringTime: metav1.Now(), ReceivedTime: metav1.Now(), Episode: 1,
		},
	}
	if err := e.Kube.Create(ctx, rr); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("testenv: warm up: %w", err)
	}
	if err := e.Kube.Delete(ctx, rr); err != nil {
		return fmt.Errorf("testenv: warm up: %w", err)
	}
	return nil
}

// WatchClient returns a client of its own that reads the API server
// directly, for watches: without the configuration's request timeout,
// which would cut every watch after that time.
func (e *Env) WatchClient() (client.WithWatch, error) {
	cfg := rest.CopyConfig(e.ControlPlane.Config)
	cfg.Timeout = 0
	return client.NewWithWatch(cfg, client.Options{Scheme: e.ControlPlane.Scheme})
}

// CloseIdle closes the verifiers' idle connections to the API server, so
// that connection counts and goroutine snapshots show the gateways' alone.
func (e *Env) CloseIdle() { utilnet.CloseIdleConnectionsFor(e.kubeHTTP.Transport) }

// ProxyAddr is the address a gateway uses to reach dep.
func (e *Env) ProxyAddr(dep Dependency) string {
	p := e.proxies[dep]
	p.Lock()
	defer p.Unlock()
	return p.Listen
}

// Proxy returns the Toxiproxy proxy in front of dep.
func (e *Env) Proxy(dep Dependency) *toxiproxy.Proxy { return e.proxies[dep] }

// CreateNamespace creates a namespace for a scenario's resources.
func (e *Env) CreateNamespace(ctx context.Context, name string) error {
	err := e.Kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// Heal removes every fault: toxics removed, proxies enabled, Redis running
// with its memory limit back, the API server running.
func (e *Env) Heal(ctx context.Context) error {
	var errs []error
	if !e.Redis.Running() {
		if err := e.Redis.Start(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := e.RDB.ConfigSet(ctx, "maxmemory", e.opts.RedisMaxMemory).Err(); err != nil {
		errs = append(errs, fmt.Errorf("testenv: reset maxmemory: %w", err))
	}
	if !e.APIServerUp() {
		if err := e.ControlPlane.StartAPIServer(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, dep := range Dependencies {
		p := e.proxies[dep]
		p.Toxics.ResetToxics(ctx)
		p.Lock()
		enabled := p.Enabled
		p.Unlock()
		if !enabled {
			if err := p.Start(); err != nil && !errors.Is(err, toxiproxy.ErrProxyAlreadyStarted) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// APIServerUp reports whether the API server accepts connections (enough to
// tell a stopped server from a running one).
func (e *Env) APIServerUp() bool {
	c, err := net.DialTimeout("tcp", e.ControlPlane.APIServerAddr(), 200*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// Stop stops everything the Env started.
func (e *Env) Stop() {
	for _, p := range e.proxies {
		p.Stop()
	}
	if e.RDB != nil {
		_ = e.RDB.Close()
	}
	if e.ControlPlane != nil {
		e.ControlPlane.Stop()
	}
	if e.Redis != nil {
		e.Redis.Kill()
	}
}

// GatewayRedisClients counts the connections Redis has from gateways
// (CLIENT LIST, by client name).
func (e *Env) GatewayRedisClients(ctx context.Context) (int, error) {
	s, err := e.RDB.ClientList(ctx).Result()
	if err != nil {
		return 0, err
	}
	return strings.Count(s, "name=alertgate-gateway"), nil
}
