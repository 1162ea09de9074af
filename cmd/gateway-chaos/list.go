package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/alertgate/gateway/chaos/scenario"
	"github.com/alertgate/gateway/testenv/fault"
)

func listCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the scenarios and the faults",
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SCENARIO\tDESCRIPTION")
			for _, s := range scenario.All() {
				fmt.Fprintf(w, "%s\t%s\n", s.Name, s.Description)
			}
			fmt.Fprintf(w, "random\tseeded random faults from the catalogue under load, then a history check (run --random)\n")
			fmt.Fprintln(w, "\nFAULT\tTARGETS\tDESCRIPTION")
			for _, f := range fault.Catalog() {
				var ts []string
				for _, t := range f.Targets {
					ts = append(ts, string(t))
				}
				fmt.Fprintf(w, "%s\t%s\t%s\n", f.Name, strings.Join(ts, ","), f.Description)
			}
			return w.Flush()
		},
	}
}
