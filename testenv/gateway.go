package testenv

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/alertgate/gateway/internal/app"
	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/internal/localdeps"
	"github.com/alertgate/gateway/internal/pipeline"
)

// GatewayOptions configure one gateway.
type GatewayOptions struct {
	// Namespace where it creates resources. Default: the shipped one.
	Namespace string
	// KeyPrefix of its Redis keys. Default: the shipped one.
	KeyPrefix string
	// Configure changes the shipped defaults (e.g. a short deadline).
	// Default: none.
	Configure func(*config.Config)
	// Hooks are the request path's timing hooks; in-process only.
	// Default: none.
	Hooks pipeline.Hooks
	// Wrap wraps parts of the gateway (a deliberately broken one);
	// in-process only. Default: none.
	Wrap app.Wrappers
	// Clock is the clock the gateway records times with (app.Deps.Clock),
	// e.g. SkewedClock for a replica whose clock is off; in-process only.
	// Default: time.Now.
	Clock func() time.Time
	// Bin runs the gateway as a process from this binary instead of in
	// this process. Default: in-process.
	Bin string
	// ListenOnly makes StartGateway return once the gateway listens,
	// rather than once /readyz answers 200 (at most ReadyTimeout): a
	// gateway is ready once it reaches both dependencies and has read its
	// episodes, and until then it answers 503. Default: wait until ready.
	ListenOnly bool
	// ReadyTimeout bounds the wait until ready (a gateway lists all its
	// resources first: 100k take longer). Default: ReadyTimeout.
	ReadyTimeout time.Duration
}

// Bounds of a gateway's start.
const (
	ListenTimeout = 15 * time.Second
	ReadyTimeout  = 20 * time.Second
)

// Gateway is a running gateway, in this process or as a child process.
type Gateway struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234.
	URL    string
	Config config.Config
	Logs   *LogBuffer

	env    *Env
	cancel context.CancelFunc
	done   chan error
	cmd    *exec.Cmd
	dir    string
}

// SkewedClock is a clock d ahead of the real one (behind when d < 0).
func SkewedClock(d time.Duration) func() time.Time {
	return func() time.Time { return time.Now().Add(d) }
}

// Gateways returns the gateways started by StartGateway and not stopped
// yet, in start order: what a fault that needs no dependency but the
// gateways' (their namespace, their processes) finds them by.
func (e *Env) Gateways() []*Gateway {
	e.gwMu.Lock()
	defer e.gwMu.Unlock()
	return append([]*Gateway(nil), e.gateways...)
}

func (e *Env) forget(g *Gateway) {
	e.gwMu.Lock()
	defer e.gwMu.Unlock()
	for i, x := range e.gateways {
		if x == g {
			e.gateways = append(e.gateways[:i], e.gateways[i+1:]...)
			return
		}
	}
}

// GatewayConfig returns the configuration a gateway of the Env runs with:
// the shipped defaults, wired through the proxies, then o.Configure.
func (e *Env) GatewayConfig(o GatewayOptions) config.Config {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.Redis.Addr = e.ProxyAddr(Redis)
	// Scenarios test resilience; the auth tests turn authentication on.
	cfg.Auth.Mode = "none"
	cfg.Kubernetes.Namespace = o.Namespace
	if o.KeyPrefix != "" {
		cfg.Redis.KeyPrefix = o.KeyPrefix
	}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	return cfg
}

// StartGateway starts a gateway wired through the proxies and waits until
// it is ready (or, with o.ListenOnly, until it listens).
func (e *Env) StartGateway(ctx context.Context, o GatewayOptions) (*Gateway, error) {
	g, err := e.startGateway(ctx, o)
	if err != nil {
		return nil, err
	}
	g.env = e
	e.gwMu.Lock()
	e.gateways = append(e.gateways, g)
	e.gwMu.Unlock()
	if o.ListenOnly {
		return g, nil
	}
	if err := g.WaitReady(ctx, cmp.Or(o.ReadyTimeout, ReadyTimeout)); err != nil {
		_ = g.Stop()
		return nil, err
	}
	return g, nil
}

func (e *Env) startGateway(ctx context.Context, o GatewayOptions) (*Gateway, error) {
	cfg := e.GatewayConfig(o)
	if o.Bin != "" {
		if o.Hooks != nil || o.Wrap.Any() || o.Clock != nil {
			return nil, errors.New("testenv: hooks, creator wrappers and clocks need an in-process gateway")
		}
		return e.startProcess(ctx, o.Bin, cfg)
	}
	logs := &LogBuffer{}
	a, err := app.New(cfg, app.Deps{
		RESTConfig: e.ControlPlane.ConfigFor(e.ProxyAddr(Kubernetes)),
		Logger:     slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Hooks:      o.Hooks,
		Wrap:       o.Wrap,
		Clock:      o.Clock,
	})
	if err != nil {
		return nil, err
	}
	if err := a.Listen(); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	g := &Gateway{URL: scheme(cfg) + a.Addr(), Config: cfg, Logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { g.done <- a.Run(rctx) }()
	return g, nil
}

// startProcess runs the gateway binary with the configuration as flags and
// a kubeconfig pointing at the API proxy.
func (e *Env) startProcess(ctx context.Context, bin string, cfg config.Config) (*Gateway, error) {
	dir, err := os.MkdirTemp("", "alertgate-gw-")
	if err != nil {
		return nil, err
	}
	kc := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(e, kc); err != nil {
		return nil, err
	}
	port, err := localdeps.FreePort()
	if err != nil {
		return nil, err
	}
	cfg.Listen = "127.0.0.1:" + strconv.Itoa(port)
	cfg.Kubernetes.Kubeconfig = kc
	cmd := exec.Command(bin, cfg.Args()...)
	logs := &LogBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kc)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testenv: start %s: %w", bin, err)
	}
	g := &Gateway{URL: scheme(cfg) + cfg.Listen, Config: cfg, Logs: logs, cmd: cmd, dir: dir, done: make(chan error, 1)}
	go func() { g.done <- cmd.Wait() }()
	exited := false
	err = Wait(ctx, ListenTimeout, 50*time.Millisecond, "gateway "+g.URL+" listening", func() (bool, error) {
		select {
		case err := <-g.done:
			exited = true
			return false, fmt.Errorf("testenv: gateway exited at start: %v", err)
		default:
		}
		c, err := net.DialTimeout("tcp", cfg.Listen, 100*time.Millisecond)
		if err != nil {
			return false, nil
		}
		_ = c.Close()
		return true, nil
	})
	if err != nil {
		if !exited {
			_ = g.Stop()
		}
		return nil, fmt.Errorf("%w\n%s", err, logs.String())
	}
	return g, nil
}

func writeKubeconfig(e *Env, path string) error {
	rc := e.ControlPlane.ConfigFor(e.ProxyAddr(Kubernetes))
	kc := clientcmdapi.NewConfig()
	kc.Clusters["chaos"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: rc.CAData}
	kc.AuthInfos["chaos"] = &clientcmdapi.AuthInfo{ClientCertificateData: rc.CertData, ClientKeyData: rc.KeyData, Token: rc.BearerToken}
	kc.Contexts["chaos"] = &clientcmdapi.Context{Cluster: "chaos", AuthInfo: "chaos"}
	kc.CurrentContext = "chaos"
	return clientcmd.WriteToFile(*kc, path)
}

// PID of a gateway process; 0 in-process.
func (g *Gateway) PID() int {
	if g.cmd == nil {
		return 0
	}
	return g.cmd.Process.Pid
}

// Stop shuts the gateway down gracefully and waits for it.
func (g *Gateway) Stop() error {
	if g.env != nil {
		g.env.forget(g)
	}
	if g.cmd != nil {
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		// A paused process (fault.Pause) would hold the SIGTERM until
		// its time runs out; let it shut down gracefully.
		_ = g.cmd.Process.Signal(syscall.SIGCONT)
	} else {
		g.cancel()
	}
	var err error
	select {
	case err = <-g.done:
	case <-time.After(g.Config.ShutdownTimeout.Duration + 5*time.Second):
		if g.cmd != nil {
			_ = g.cmd.Process.Kill()
			err = <-g.done
		} else {
			err = errors.New("testenv: gateway did not stop")
		}
	}
	if g.dir != "" {
		_ = os.RemoveAll(g.dir)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() && ee.ExitCode() == 0 {
		err = nil
	}
	return err
}

func scheme(cfg config.Config) string {
	if cfg.TLS.CertFile != "" {
		return "https://"
	}
	return "http://"
}

// probe asks /readyz as a kubelet does: without verifying the certificate
// of a gateway that serves HTTPS.
// It keeps no connection open, so that it leaves nothing a leak check
// could count.
var probe = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
	TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a readiness probe on loopback
	DisableKeepAlives: true,
}}

// Ready reports whether the gateway's /readyz answers 200.
func (g *Gateway) Ready(ctx context.Context) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+"/readyz", nil)
	resp, err := probe.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// WaitReady waits, at most timeout, until Ready.
func (g *Gateway) WaitReady(ctx context.Context, timeout time.Duration) error {
	err := Wait(ctx, timeout, 50*time.Millisecond, "gateway "+g.URL+" ready", func() (bool, error) { return g.Ready(ctx), nil })
	if err != nil {
		return fmt.Errorf("%w\n%s", err, g.Logs.String())
	}
	return nil
}

// LogBuffer collects a gateway's JSON log lines.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Lines returns every JSON log line, decoded; non-JSON lines are returned
// with their text under "raw".
func (l *LogBuffer) Lines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader([]byte(l.String())))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := map[string]any{}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			m = map[string]any{"raw": sc.Text()}
		}
		out = append(out, m)
	}
	return out
}
