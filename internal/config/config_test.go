package config

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestPrecedenceFileEnvFlag(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(path, []byte("redis:\n  addr: file:6379\n  timeout: 3s\ndedup:\n  window: 10m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load([]string{"--config", path, "--redis-addr=flag:6379"},
		env(map[string]string{"ALERTGATE_REDIS_ADDR": "env:6379", "ALERTGATE_DEDUP_WINDOW": "7m"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Redis.Addr != "flag:6379" || cfg.Dedup.Window.Duration != 7*time.Minute || cfg.Redis.Timeout.Duration != 3*time.Second {
		t.Fatalf("precedence broken: %+v", cfg)
	}
}

func TestValidationNamesEveryBadSetting(t *testing.T) {
	_, err := Load([]string{"--redis-addr=x:1", "--dedup-lease=40s", "--namespace=Bad_NS", "--log-level=loud"}, env(nil), io.Discard)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"dedup.lease", "kubernetes.namespace", "logLevel"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestUnknownFileFieldIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.yaml")
	_ = os.WriteFile(path, []byte("redis:\n  adress: x:1\n"), 0o600)
	if _, err := Load([]string{"--config=" + path}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "adress") {
		t.Fatalf("a misspelt field was accepted: %v", err)
	}
}

func TestRedisRequiredUnlessDev(t *testing.T) {
	if _, err := Load(nil, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "redis.addr") {
		t.Fatalf("no Redis address accepted: %v", err)
	}
	if _, err := Load([]string{"--dev"}, env(nil), io.Discard); err != nil {
		t.Fatal(err)
	}
}

func TestArgsRoundTrip(t *testing.T) {
	want := Default()
	want.Redis.Addr = "r:1"
	want.Request.Deadline = D(3 * time.Second)
	want.Dedup.Lease = D(5 * time.Second)
	want.Dev = true
	got, err := Load(want.Args(), env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Args did not round-trip:\n got %+v\nwant %+v", got, want)
	}
}

// The README's configuration table must list every option as the gateway
// describes it (environment variable, default, meaning), so that a flag
// cannot go undocumented or be documented wrong.
func TestREADMEListsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range Flags() {
		if !strings.Contains(string(b), TableRow(f)+"\n") {
			t.Errorf("README.md does not document --%s as\n%s", f.Name, TableRow(f))
		}
	}
}
