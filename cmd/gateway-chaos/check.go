package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/alertgate/gateway/chaos/model"
	"github.com/alertgate/gateway/testenv/history"
)

func checkCmd() *cobra.Command {
	var picture bool
	c := &cobra.Command{
		Use:   "check HISTORY.json...",
		Short: "Hold saved histories against the episode model again, without running anything",
		Long: "Reads each history a run saved (NAME.history.json) and prints the model's verdict: its figures and\n" +
			"every violation. With --picture, writes NAME.history.html beside it. Exits 1 if any history violates the model.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, failed := cmd.OutOrStdout(), false
			for _, path := range args {
				h, err := history.Load(path)
				if err != nil {
					return err
				}
				r := model.Check(h, model.Options{})
				st := r.Stats
				fmt.Fprintf(out, "%s: %s, %d requests, %d occurrences, %d episodes (%d ended), %d controller actions, %d faults: %d violation(s)\n",
					path, h.Scenario, st.Requests, st.Occurrences, st.Episodes, st.Ended, st.Actions, st.Faults, len(r.Violations))
				for _, v := range r.Violations {
					fmt.Fprintf(out, "  %s\n", v)
				}
				failed = failed || len(r.Violations) > 0
				if picture {
					page := strings.TrimSuffix(path, ".json") + ".html"
					if err := os.WriteFile(page, model.Picture(h, r), 0o644); err != nil {
						return err
					}
					fmt.Fprintf(out, "  picture: %s\n", page)
				}
			}
			if failed {
				return exitCode(1)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&picture, "picture", false, "write NAME.history.html beside each history")
	return c
}
