package validate

import (
	"path/filepath"
	"strings"
	"testing"

	amconfig "github.com/prometheus/alertmanager/config"
)

// TestAlertmanagerReceiverExample loads the example with Alertmanager's own
// configuration parser (strict: unknown fields fail) and checks the
// receiver points at the chart's Service.
func TestAlertmanagerReceiverExample(t *testing.T) {
	path := filepath.Join("..", "examples", "alertmanager-receiver.yaml")
	cfg, err := amconfig.LoadFile(path)
	if err != nil {
		t.Fatalf("alertmanager rejects %s: %v", path, err)
	}
	var found bool
	for _, r := range cfg.Receivers {
		for _, w := range r.WebhookConfigs {
			found = true
			want := gatewayServiceURL(t) + "/api/v1/signals/prometheus"
			if string(w.URL) != want {
				t.Errorf("url = %q, want %q", w.URL, want)
			}
			if !w.SendResolved() {
				t.Error("send_resolved is false: resolved alerts would never reach the gateway")
			}
			if w.MaxAlerts != 0 {
				t.Errorf("max_alerts = %d, want 0", w.MaxAlerts)
			}
			auth := w.HTTPConfig.Authorization
			if auth == nil || auth.CredentialsFile == "" || !strings.EqualFold(auth.Type, "Bearer") {
				t.Errorf("http_config.authorization = %+v, want a Bearer credentials_file", auth)
			}
		}
	}
	if !found {
		t.Fatal("no webhook_configs in the example")
	}
	if cfg.Route == nil || cfg.Route.Receiver != "alertgate" {
		t.Errorf("route does not send to the alertgate receiver")
	}
}
