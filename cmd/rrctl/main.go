// Command rrctl lists RemediationRequests, for machines without kubectl:
//
//	rrctl [--kubeconfig PATH] [-n NAMESPACE] [-o json]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/app"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig path (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
	ns := flag.String("n", "default", "namespace")
	out := flag.String("o", "table", "table or json")
	flag.Parse()
	if err := run(*kubeconfig, *ns, *out); err != nil {
		fmt.Fprintln(os.Stderr, "rrctl:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, ns, out string) error {
	rc, err := app.RESTConfig(kubeconfig)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	c, err := client.New(rc, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var l v1alpha1.RemediationRequestList
	if err := c.List(ctx, &l, client.InNamespace(ns)); err != nil {
		return err
	}
	if out == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(l.Items)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSIGNAL\tSEVERITY\tTARGET\tEPISODE\tSTATE\tCOUNT\tPHASE\tMEMBERS\tRESOLVED\tAGE")
	terminal := v1alpha1.NewPhaseSet(nil)
	for _, r := range l.Items {
		count, resolved, state := "", "", "open"
		if d := r.Status.Deduplication; d != nil {
			count = fmt.Sprint(d.OccurrenceCount)
		}
		if res := r.Status.Resolution; res != nil {
			resolved = res.ResolvedAt.UTC().Format(time.RFC3339)
		}
		if !terminal.Open(&r) {
			state = "ended"
		}
		firing := 0
		ms := r.Members()
		for i := range ms {
			if !ms[i].Resolved() {
				firing++
			}
		}
		t := r.Spec.TargetResource
		fmt.Fprintf(w, "%s\t%s\t%s\t%s/%s\t%d\t%s\t%s\t%s\t%d/%d firing\t%s\t%s\n", r.Name, r.Spec.SignalName, r.Spec.Severity, t.Kind, t.Name,
			r.Spec.Episode, state, count, r.Status.Phase, firing, len(ms), resolved, time.Since(r.CreationTimestamp.Time).Round(time.Second))
	}
	return w.Flush()
}
