// Command gateway receives Alertmanager webhooks and Kubernetes Events,
// deduplicates them in Redis and creates one RemediationRequest per new
// signal. See the README for configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/alertgate/gateway/internal/app"
	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/internal/localdeps"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	for _, a := range args {
		if a == "--version" || a == "-version" {
			fmt.Println(version)
			return 0
		}
	}
	cfg, err := config.Load(args, os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gateway: invalid configuration:\n%v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := app.NewLogger(os.Stderr, cfg.LogLevel)
	app.RouteLibraryLogs(log)
	deps := app.Deps{Logger: log}
	if cfg.Dev {
		cleanup, err := startDev(ctx, &cfg, &deps, log)
		defer cleanup()
		if err != nil {
			log.Error("dev mode: starting local dependencies failed", "error", err.Error())
			return 1
		}
	}
	a, err := app.New(cfg, deps)
	if err != nil {
		log.Error("gateway: setup failed", "error", err.Error())
		return 1
	}
	if err := a.Listen(); err != nil {
		log.Error("gateway: listen failed", "error", err.Error())
		return 1
	}
	if cfg.Dev {
		printDevHint(a.Addr(), cfg)
	}
	if err := a.Run(ctx); err != nil {
		log.Error("gateway: serve failed", "error", err.Error())
		return 1
	}
	return 0
}

// startDev starts a redis-server when no Redis address is configured and a
// control plane with the CRD when no kubeconfig is available.
func startDev(ctx context.Context, cfg *config.Config, deps *app.Deps, log *slog.Logger) (func(), error) {
	var stops []func()
	cleanup := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	localdeps.ReapOrphans()
	if cfg.Redis.Addr == "" {
		r, err := localdeps.StartRedis(ctx, localdeps.RedisOptions{})
		if err != nil {
			return cleanup, err
		}
		stops = append(stops, r.Kill)
		cfg.Redis.Addr = r.Addr()
		log.Info("dev mode: started redis-server", "addr", r.Addr(), "pid", r.PID())
	}
	if cfg.Kubernetes.Kubeconfig == "" && os.Getenv("KUBECONFIG") == "" {
		cp, err := localdeps.StartControlPlane(ctx, localdeps.ControlPlaneOptions{})
		if err != nil {
			return cleanup, err
		}
		stops = append(stops, cp.Stop)
		path := filepath.Join(os.TempDir(), "alertgate-dev.kubeconfig")
		if err := cp.WriteKubeconfig(path); err != nil {
			return cleanup, err
		}
		stops = append(stops, func() { _ = os.Remove(path) })
		cfg.Kubernetes.Kubeconfig = path
		deps.RESTConfig = cp.Config
		log.Info("dev mode: started a control plane with the RemediationRequest CRD", "kubeconfig", path)
	}
	return cleanup, nil
}

func printDevHint(addr string, cfg config.Config) {
	fmt.Fprintf(os.Stderr, `
alertgate gateway is listening on %[1]s (Redis %[2]s, namespace %[3]q).

Send a sample Alertmanager webhook:

  curl -sS -X POST http://%[1]s/api/v1/signals/prometheus \
    -H 'Content-Type: application/json' --data @examples/alertmanager-webhook.json

See the resources it created:

  go run ./cmd/rrctl --kubeconfig %[4]s -n %[3]s
  (or: KUBECONFIG=%[4]s kubectl get remediationrequests -n %[3]s)

Stop with Ctrl-C.

`, addr, cfg.Redis.Addr, cfg.Kubernetes.Namespace, cfg.Kubernetes.Kubeconfig)
}
