package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/alertgate/gateway/bench/floor"
)

func floorCmd() *cobra.Command {
	var o floor.Options
	c := &cobra.Command{
		Use:   "floor",
		Short: "Serve the duplicate-path floor (the duplicate benchmark starts it itself) and print its URL",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := floor.Start(o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), s.URL())
			<-cmd.Context().Done()
			s.Stop()
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&o.Listen, "listen", "127.0.0.1:0", "listen address (loopback)")
	fl.StringVar(&o.RedisAddr, "redis-addr", "", "Redis address")
	fl.StringVar(&o.KeyPrefix, "key-prefix", "alertgate:floor:", "prefix of the floor's keys")
	return c
}
