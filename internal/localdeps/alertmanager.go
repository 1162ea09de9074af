package localdeps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// AlertmanagerOptions configure an Alertmanager: one route to one webhook
// receiver, the way a production Alertmanager sends to the gateway.
type AlertmanagerOptions struct {
	// Bin is the alertmanager executable. Default: $ALERTMANAGER_BIN, which
	// hack/alertmanager.sh builds and prints.
	Bin string
	// WebhookURL is where notifications are POSTed; it must be on loopback.
	// Required.
	WebhookURL string
	// GroupBy are the route's group_by labels. Default: ["alertname"].
	GroupBy []string
	// GroupWait is how long a new group waits before its first
	// notification. Default: 30s (Alertmanager's).
	GroupWait time.Duration
	// GroupInterval is how long a group waits before notifying about
	// changes. It also bounds retries: a 5xx is retried with backoff
	// (0.5 s, x1.5) for up to max(GroupInterval, 10 s) within one flush;
	// any other failure, 429 included, ends the flush, and the next flush,
	// GroupInterval later, sends again. Default: 5m (Alertmanager's).
	GroupInterval time.Duration
	// RepeatInterval is how long before an unchanged group is notified
	// again. Default: 4h (Alertmanager's).
	RepeatInterval time.Duration
	// ResolveTimeout resolves an alert pushed without endsAt that is not
	// pushed again. Default: 5m (Alertmanager's).
	ResolveTimeout time.Duration
	// SendResolved tells the webhook about resolved alerts. Default: true
	// (nil); new(false) turns it off.
	SendResolved *bool
	// MaxAlerts caps the alerts in one webhook message, the rest are
	// counted in truncatedAlerts. Default: 0 (no cap).
	MaxAlerts uint64
	// BearerTokenFile, if set, sends "Authorization: Bearer <its content>".
	// Default: no Authorization header.
	BearerTokenFile string
	// Output receives the process's log. Default: discarded (the last
	// lines still go into start errors).
	Output io.Writer
	// DataDir holds alertmanager.yml, the notification log and silences.
	// Default: a temporary directory, removed by Stop.
	DataDir string
}

// ErrNoAlertmanager means the alertmanager binary was not found.
var ErrNoAlertmanager = errors.New("localdeps: ALERTMANAGER_BIN is not set; run hack/alertmanager.sh and export its output as ALERTMANAGER_BIN")

// Alertmanager is a real Prometheus Alertmanager process on loopback, with
// clustering disabled: two of them are an HA pair that does not gossip, so
// both deliver every notification (what a gateway in front of a
// partitioned pair sees).
type Alertmanager struct {
	opts    AlertmanagerOptions
	port    int
	dir     string
	ownsDir bool
	log     *tailBuffer
	client  *http.Client

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartAlertmanager writes alertmanager.yml, starts the process and waits
// until /-/ready answers 200.
func StartAlertmanager(ctx context.Context, opts AlertmanagerOptions) (*Alertmanager, error) {
	if opts.Bin == "" {
		opts.Bin = os.Getenv("ALERTMANAGER_BIN")
	}
	if opts.Bin == "" {
		return nil, ErrNoAlertmanager
	}
	if err := checkLoopbackURL(opts.WebhookURL); err != nil {
		return nil, err
	}
	if len(opts.GroupBy) == 0 {
		opts.GroupBy = []string{"alertname"}
	}
	setDefault(&opts.GroupWait, 30*time.Second)
	setDefault(&opts.GroupInterval, 5*time.Minute)
	setDefault(&opts.RepeatInterval, 4*time.Hour)
	setDefault(&opts.ResolveTimeout, 5*time.Minute)
	if opts.SendResolved == nil {
		opts.SendResolved = new(true)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	am := &Alertmanager{
		opts:   opts,
		port:   port,
		dir:    opts.DataDir,
		log:    &tailBuffer{max: 4096},
		client: &http.Client{Timeout: 5 * time.Second},
	}
	if am.dir == "" {
		if am.dir, err = os.MkdirTemp("", "alertgate-alertmanager-"); err != nil {
			return nil, err
		}
		am.ownsDir = true
	}
	if err := am.writeConfig(); err != nil {
		am.removeDir()
		return nil, err
	}
	if err := am.Start(ctx); err != nil {
		am.removeDir()
		return nil, err
	}
	return am, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || raw == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("localdeps: webhook URL %q is not an http(s) URL", raw)
	}
	if h := u.Hostname(); h != "localhost" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("localdeps: webhook URL %q is not on loopback", raw)
		}
	}
	return nil
}

// amDuration formats d the way Alertmanager parses durations; it does not
// accept Go's "1m0s".
func amDuration(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }

// writeConfig writes alertmanager.yml as JSON, which is YAML, so that
// strings need no YAML quoting.
func (am *Alertmanager) writeConfig() error {
	webhook := map[string]any{
		"url":           am.opts.WebhookURL,
		"send_resolved": *am.opts.SendResolved,
		"max_alerts":    am.opts.MaxAlerts,
	}
	if am.opts.BearerTokenFile != "" {
		webhook["http_config"] = map[string]any{
			"authorization": map[string]any{"type": "Bearer", "credentials_file": am.opts.BearerTokenFile},
		}
	}
	cfg := map[string]any{
		"global": map[string]any{"resolve_timeout": amDuration(am.opts.ResolveTimeout)},
		"route": map[string]any{
			"receiver":        "gateway",
			"group_by":        am.opts.GroupBy,
			"group_wait":      amDuration(am.opts.GroupWait),
			"group_interval":  amDuration(am.opts.GroupInterval),
			"repeat_interval": amDuration(am.opts.RepeatInterval),
		},
		"receivers": []any{map[string]any{"name": "gateway", "webhook_configs": []any{webhook}}},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(am.ConfigFile(), append(b, '\n'), 0o644)
}

// ConfigFile is the path of the alertmanager.yml in use.
func (am *Alertmanager) ConfigFile() string { return filepath.Join(am.dir, "alertmanager.yml") }

// URL is the base URL of the Alertmanager's API and UI.
func (am *Alertmanager) URL() string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(am.port))
}

// PID of the running process, 0 if none.
func (am *Alertmanager) PID() int {
	am.mu.Lock()
	defer am.mu.Unlock()
	if am.cmd == nil {
		return 0
	}
	return am.cmd.Process.Pid
}

// Start starts the process (again, after Kill) on the same port with the
// same data directory, so its notification log and silences survive as far
// as Alertmanager persisted them, and waits until it is ready.
func (am *Alertmanager) Start(ctx context.Context) error {
	am.mu.Lock()
	defer am.mu.Unlock()
	if am.cmd != nil {
		return errors.New("localdeps: alertmanager already running")
	}
	cmd := exec.Command(am.opts.Bin,
		"--config.file="+am.ConfigFile(),
		"--storage.path="+am.dir,
		"--web.listen-address="+net.JoinHostPort("127.0.0.1", strconv.Itoa(am.port)),
		// Empty disables clustering: no gossip port, no peers, no settling
		// wait before the first notification.
		"--cluster.listen-address=",
	)
	var out io.Writer = am.log
	if am.opts.Output != nil {
		out = io.MultiWriter(am.log, am.opts.Output)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("localdeps: start alertmanager: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	track(cmd.Process.Pid)
	am.cmd, am.done = cmd, done

	const readyTimeout = 15 * time.Second
	deadline := time.Now().Add(readyTimeout)
	for {
		if am.ready(ctx) {
			return nil
		}
		select {
		case <-done:
			untrack(cmd.Process.Pid)
			am.cmd = nil
			return fmt.Errorf("localdeps: alertmanager exited at start (%s); log tail:\n%s", cmd.ProcessState, am.log.String())
		case <-ctx.Done():
			am.stopLocked(syscall.SIGKILL)
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			am.stopLocked(syscall.SIGKILL)
			return fmt.Errorf("localdeps: alertmanager on %s not ready within %s; log tail:\n%s", am.URL(), readyTimeout, am.log.String())
		}
	}
}

func (am *Alertmanager) ready(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, am.URL()+"/-/ready", nil)
	if err != nil {
		return false
	}
	resp, err := am.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// PostableAlert is an alert as POSTed to /api/v2/alerts, what Prometheus
// sends. A zero StartsAt is "now"; a zero EndsAt is "firing until
// ResolveTimeout passes without another push", and the webhook then shows
// endsAt 0001-01-01T00:00:00Z. Pushing the same labels again with EndsAt
// now or in the past resolves the alert.
type PostableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Push POSTs alerts to /api/v2/alerts and fails unless Alertmanager
// accepted all of them.
func (am *Alertmanager) Push(ctx context.Context, alerts []PostableAlert) error {
	body, err := json.Marshal(alerts)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, am.URL()+"/api/v2/alerts", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := am.client.Do(req)
	if err != nil {
		return fmt.Errorf("localdeps: push alerts: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("localdeps: push alerts: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// Stop stops the process with SIGTERM (SIGKILL after 5 s), which lets it
// write its notification log, and removes the data directory if
// StartAlertmanager created it; no Start can follow then.
func (am *Alertmanager) Stop() {
	am.mu.Lock()
	am.stopLocked(syscall.SIGTERM)
	am.mu.Unlock()
	am.removeDir()
}

// Kill stops the process with SIGKILL and keeps the data directory, for a
// Start that recovers from a crash. Stop still cleans up afterwards.
func (am *Alertmanager) Kill() {
	am.mu.Lock()
	defer am.mu.Unlock()
	am.stopLocked(syscall.SIGKILL)
}

// Pause freezes the process (Freeze): connections stay open but nothing
// answers, unlike a dead process, which refuses them.
func (am *Alertmanager) Pause() error { return am.withPID(Freeze) }

// Resume continues a paused process (Thaw).
func (am *Alertmanager) Resume() error { return am.withPID(Thaw) }

func (am *Alertmanager) withPID(f func(pid int) error) error {
	am.mu.Lock()
	defer am.mu.Unlock()
	if am.cmd == nil {
		return errors.New("localdeps: alertmanager not running")
	}
	return f(am.cmd.Process.Pid)
}

func (am *Alertmanager) stopLocked(sig syscall.Signal) {
	if am.cmd == nil {
		return
	}
	_ = am.cmd.Process.Signal(sig)
	// A paused process acts on SIGTERM only once continued.
	_ = am.cmd.Process.Signal(syscall.SIGCONT)
	select {
	case <-am.done:
	case <-time.After(5 * time.Second):
		_ = am.cmd.Process.Kill()
		<-am.done
	}
	untrack(am.cmd.Process.Pid)
	am.cmd = nil
}

func (am *Alertmanager) removeDir() {
	if am.ownsDir {
		_ = os.RemoveAll(am.dir)
	}
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
