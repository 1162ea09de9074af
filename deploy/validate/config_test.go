package validate

import (
	"io"
	"testing"

	"github.com/alertgate/gateway/internal/config"
)

// TestChartConfigurationLoads feeds the environment the chart gives the
// gateway container to the gateway's own configuration loader: every value
// the chart renders must parse and validate as the gateway reads it.
// Values from Secrets (passwords) get a placeholder.
func TestChartConfigurationLoads(t *testing.T) {
	for _, c := range renderCases {
		r := c.render(t)
		_, ctr := r.gatewayDeployment(t)
		env := map[string]string{}
		for _, e := range ctr.Env {
			env[e.Name] = e.Value
			if e.ValueFrom != nil {
				env[e.Name] = "from-a-secret"
			}
		}
		cfg, err := config.Load(ctr.Args, func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			t.Errorf("%s: the gateway refuses the chart's configuration: %v", c.name, err)
			continue
		}
		if cfg.Kubernetes.Namespace == "" || (cfg.Redis.Addr == "" && cfg.Redis.SentinelMaster == "") {
			t.Errorf("%s: configuration without namespace or Redis: %+v", c.name, cfg)
		}
	}
}
