// Command gateway-load drives the gateway with realistic traffic through
// vegeta and reports throughput, latency quantiles, status codes and the
// gateway's CPU and memory. It only sends to loopback addresses.
//
//	gateway-load [attack] --url http://127.0.0.1:8080 [--rate N | --connections N] [--duration D] …
//	gateway-load [attack] --env …      start Redis, a control plane and the gateway binary, then attack it
//	gateway-load bench list|all|NAME…  run the benchmarks of docs/benchmarks.md
//	gateway-load floor --redis-addr A  serve the duplicate-path floor (the benchmark starts it itself)
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

func main() {
	// The benchmarks' bare controller-runtime clients log nothing.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and returns the exit status.
func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c := root()
	c.SetArgs(args)
	if err := c.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "gateway-load:", err)
		return 1
	}
	return 0
}

// root is the attack, so that `gateway-load --url …` attacks, with the
// other subcommands beside it.
func root() *cobra.Command {
	c := attackCmd("gateway-load")
	c.Short = "Drive the gateway with realistic traffic and report what it did"
	c.SilenceUsage, c.SilenceErrors = true, true
	c.AddCommand(attackCmd("attack"), benchCmd(), floorCmd())
	return c
}

func randomID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
