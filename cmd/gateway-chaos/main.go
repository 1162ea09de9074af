// Command gateway-chaos runs the gateway's resilience scenarios against a
// real redis-server, a real kube-apiserver + etcd and Toxiproxy, and writes
// a report: the same scenario definitions as `go test ./chaos`.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	err := root().Execute()
	var ec exitCode
	switch {
	case errors.As(err, &ec):
		os.Exit(int(ec))
	case err != nil:
		os.Exit(2)
	}
}

// exitCode ends the command with a status and no further message.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

func root() *cobra.Command {
	c := &cobra.Command{
		Use:           "gateway-chaos",
		Short:         "Break the gateway's dependencies for real and check that it held",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	c.AddCommand(listCmd(), runCmd(), checkCmd())
	return c
}
