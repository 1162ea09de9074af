package floor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertgate/gateway/bench/attack"
	"github.com/alertgate/gateway/internal/app"
	"github.com/alertgate/gateway/internal/breaker"
	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/internal/dedup"
	"github.com/alertgate/gateway/internal/pipeline"
)

// Options configure a floor server.
type Options struct {
	// Listen address; Start refuses one that is not on loopback.
	// Default: 127.0.0.1:0.
	Listen string
	// RedisAddr of the Redis the gateway uses. Required.
	RedisAddr string
	// KeyPrefix of the floor's keys. Default: "alertgate:floor:".
	KeyPrefix string
}

// Server is a running floor.
type Server struct {
	ln   net.Listener
	http *http.Server
	rdb  *redis.Client
}

// Start listens and serves the floor with the gateway's Redis client
// options, dedup store settings and HTTP server timeouts.
func Start(o Options) (*Server, error) {
	if o.RedisAddr == "" {
		return nil, errors.New("floor: no Redis address")
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = "alertgate:floor:"
	}
	if err := attack.CheckLoopback("http://" + o.Listen); err != nil {
		return nil, fmt.Errorf("floor: listen: %w", err)
	}
	cfg := config.Default()
	cfg.Redis.Addr = o.RedisAddr
	ro := app.RedisOptions(cfg)
	ro.ClientName = "alertgate-floor"
	rdb := redis.NewClient(ro)
	store, err := dedup.New(rdb, dedup.Options{
		KeyPrefix: o.KeyPrefix, Window: cfg.Dedup.Window.Duration, Lease: cfg.Dedup.Lease.Duration, Timeout: cfg.Redis.Timeout.Duration,
		Breaker: breaker.New(breaker.Options{Name: string(pipeline.Redis), Failures: uint32(cfg.Breaker.Failures), OpenFor: cfg.Breaker.OpenFor.Duration}),
	})
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("floor: listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/signals/prometheus", New(store))
	s := &Server{ln: ln, rdb: rdb, http: &http.Server{
		Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: cfg.Request.Deadline.Duration,
		WriteTimeout: cfg.Request.Deadline.Duration + 5*time.Second, IdleTimeout: 90 * time.Second, MaxHeaderBytes: 64 << 10,
	}}
	go func() { _ = s.http.Serve(ln) }()
	return s, nil
}

// URL is the base URL.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Stop shuts the server down.
func (s *Server) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.http.Shutdown(ctx)
	_ = s.rdb.Close()
}
