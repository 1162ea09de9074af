// Package config holds the gateway's configuration: defaults, an optional
// YAML file, environment variables and flags, in that order of precedence
// (a flag wins), validated at start. It maps settings to the packages'
// options; the defaults of those are the packages' own.
package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/alertgate/gateway/api/v1alpha1"
	"github.com/alertgate/gateway/internal/breaker"
	"github.com/alertgate/gateway/internal/create"
	"github.com/alertgate/gateway/internal/dedup"
	"github.com/alertgate/gateway/internal/ingest"
	"github.com/alertgate/gateway/internal/normalize"
	"github.com/alertgate/gateway/internal/server"
)

// Duration is a time.Duration written as "5m" in YAML and flags.
type Duration struct{ time.Duration }

// D returns a Duration.
func D(d time.Duration) Duration { return Duration{d} }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"5s\": %w", err)
	}
	return d.Set(s)
}

// Set implements flag.Value.
func (d *Duration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// Redis configures the dedup store.
type Redis struct {
	// Addr of Redis, host:port. Empty with --dev: a local redis-server.
	Addr     string   `json:"addr"`
	Password string   `json:"password,omitempty"`
	DB       int      `json:"db"`
	Timeout  Duration `json:"timeout"`
	PoolSize int      `json:"poolSize"`
	// KeyPrefix starts every key the gateway writes.
	KeyPrefix string `json:"keyPrefix"`
	// SentinelMaster, when set, finds the master through Redis Sentinel
	// (SentinelAddrs) instead of Addr.
	SentinelMaster   string   `json:"sentinelMaster,omitempty"`
	SentinelAddrs    []string `json:"sentinelAddrs,omitempty"`
	SentinelPassword string   `json:"sentinelPassword,omitempty"`
}

// TLS configures HTTPS serving; both files set, or neither.
type TLS struct {
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
}

// Auth configures who may send signals.
type Auth struct {
	// Mode is kubernetes (TokenReview + SubjectAccessReview), static (a
	// token file) or none.
	Mode      string `json:"mode"`
	TokenFile string `json:"tokenFile,omitempty"`
	// CacheTTL bounds how long a review's answer is reused.
	CacheTTL Duration `json:"cacheTTL"`
	// Verb and Resource are what a sender must be allowed to do on the
	// RemediationRequest API group in the gateway's namespace.
	Verb     string `json:"verb"`
	Resource string `json:"resource"`
}

// Kubernetes configures the API client.
type Kubernetes struct {
	// Kubeconfig path; empty: $KUBECONFIG, then in-cluster.
	Kubeconfig string `json:"kubeconfig"`
	// Namespace where RemediationRequests are created.
	Namespace string   `json:"namespace"`
	Timeout   Duration `json:"timeout"`
	QPS       float64  `json:"qps"`
	Burst     int      `json:"burst"`
	// TerminalPhases are the phases in which an episode has ended.
	TerminalPhases []string `json:"terminalPhases"`
}

// Dedup configures deduplication.
type Dedup struct {
	Window Duration `json:"window"`
	Lease  Duration `json:"lease"`
}

// Request configures the HTTP request path.
type Request struct {
	Deadline   Duration `json:"deadline"`
	MaxBody    int64    `json:"maxBody"`
	MaxAlerts  int      `json:"maxAlerts"`
	RetryAfter Duration `json:"retryAfter"`
	// MaxLabels bounds the labels, and the annotations, of one signal.
	MaxLabels int `json:"maxLabels"`
	// MaxClockSkew is how far in the future a timestamp may be.
	MaxClockSkew Duration `json:"maxClockSkew"`
	// MaxInFlight bounds concurrent signal requests; above it, 503 with
	// Retry-After (never 429, which Alertmanager does not retry).
	MaxInFlight int `json:"maxInFlight"`
	// SenderRate and SenderBurst are a token bucket per sender (requests
	// per second); 0 turns it off.
	SenderRate  float64 `json:"senderRate"`
	SenderBurst int     `json:"senderBurst"`
}

// TerminalPhaseSet is the set of Kubernetes.TerminalPhases.
func (c *Config) TerminalPhaseSet() v1alpha1.PhaseSet {
	ps := make([]v1alpha1.Phase, len(c.Kubernetes.TerminalPhases))
	for i, p := range c.Kubernetes.TerminalPhases {
		ps[i] = v1alpha1.Phase(p)
	}
	return v1alpha1.NewPhaseSet(ps)
}

// Breaker configures both circuit breakers.
type Breaker struct {
	Failures int      `json:"failures"`
	OpenFor  Duration `json:"openFor"`
}

// Config is the whole configuration.
type Config struct {
	Listen          string     `json:"listen"`
	TLS             TLS        `json:"tls"`
	Auth            Auth       `json:"auth"`
	Redis           Redis      `json:"redis"`
	Kubernetes      Kubernetes `json:"kubernetes"`
	Dedup           Dedup      `json:"dedup"`
	Request         Request    `json:"request"`
	Breaker         Breaker    `json:"breaker"`
	StatusInterval  Duration   `json:"statusInterval"`
	ShutdownTimeout Duration   `json:"shutdownTimeout"`
	LogLevel        string     `json:"logLevel"`
	// Dev starts a local redis-server and control plane for what is not
	// configured.
	Dev bool `json:"dev"`
}

// Default returns the defaults: the packages' own, and those of the
// settings only the gateway's assembly has.
func Default() Config {
	phases := make([]string, len(v1alpha1.DefaultTerminalPhases))
	for i, p := range v1alpha1.DefaultTerminalPhases {
		phases[i] = string(p)
	}
	return Config{
		Listen: ":8080",
		Redis: Redis{
			Timeout: D(dedup.DefaultTimeout), PoolSize: 32, KeyPrefix: dedup.DefaultKeyPrefix,
		},
		Kubernetes: Kubernetes{
			Namespace: create.DefaultNamespace, Timeout: D(create.DefaultTimeout), QPS: 500, Burst: 1000, TerminalPhases: phases,
		},
		Dedup: Dedup{Window: D(dedup.DefaultWindow), Lease: D(dedup.DefaultLease)},
		Request: Request{Deadline: D(server.DefaultDeadline), MaxBody: ingest.DefaultMaxBody, MaxAlerts: ingest.DefaultMaxAlerts,
			RetryAfter: D(server.DefaultRetryAfter), MaxLabels: ingest.DefaultMaxLabels, MaxClockSkew: D(normalize.DefaultMaxClockSkew),
			MaxInFlight: server.DefaultMaxInFlight, SenderBurst: 20},
		Auth:            Auth{Mode: "kubernetes", CacheTTL: D(30 * time.Second), Verb: "create", Resource: "remediationrequests"},
		Breaker:         Breaker{Failures: breaker.DefaultFailures, OpenFor: D(breaker.DefaultOpenFor)},
		StatusInterval:  D(create.DefaultStatusInterval),
		ShutdownTimeout: D(10 * time.Second),
		LogLevel:        "info",
	}
}

// option binds one setting to its flag and environment variable.
type option struct {
	name  string
	usage string
	value flag.Value
}

func (c *Config) options() []option {
	return []option{
		{"listen", "HTTP listen address", (*stringValue)(&c.Listen)},
		{"redis-addr", "Redis address host:port (empty with --dev: start a local redis-server)", (*stringValue)(&c.Redis.Addr)},
		{"redis-password", "Redis password", (*stringValue)(&c.Redis.Password)},
		{"redis-db", "Redis database number", (*intValue)(&c.Redis.DB)},
		{"redis-timeout", "timeout of each Redis round trip", &c.Redis.Timeout},
		{"redis-pool-size", "Redis connection pool size", (*intValue)(&c.Redis.PoolSize)},
		{"redis-key-prefix", "prefix of every Redis key the gateway writes", (*stringValue)(&c.Redis.KeyPrefix)},
		{"redis-sentinel-master", "Redis Sentinel master name (instead of --redis-addr)", (*stringValue)(&c.Redis.SentinelMaster)},
		{"redis-sentinel-addrs", "Redis Sentinel addresses, comma-separated host:port", (*listValue)(&c.Redis.SentinelAddrs)},
		{"redis-sentinel-password", "Redis Sentinel password", (*stringValue)(&c.Redis.SentinelPassword)},
		{"tls-cert-file", "serve HTTPS with this certificate (reloaded when it changes)", (*stringValue)(&c.TLS.CertFile)},
		{"tls-key-file", "private key of --tls-cert-file", (*stringValue)(&c.TLS.KeyFile)},
		{"auth", "sender authentication: kubernetes (TokenReview and SubjectAccessReview), static (token file) or none", (*stringValue)(&c.Auth.Mode)},
		{"auth-token-file", "static bearer tokens, one per line, for --auth=static", (*stringValue)(&c.Auth.TokenFile)},
		{"auth-cache-ttl", "how long an authentication or authorization answer is reused", &c.Auth.CacheTTL},
		{"auth-verb", "verb a sender must be allowed on --auth-resource", (*stringValue)(&c.Auth.Verb)},
		{"auth-resource", "resource of the remediation.alertgate.io group a sender must be allowed --auth-verb on", (*stringValue)(&c.Auth.Resource)},
		{"kubeconfig", "kubeconfig path (empty: $KUBECONFIG, then in-cluster; with --dev: a local control plane)", (*stringValue)(&c.Kubernetes.Kubeconfig)},
		{"namespace", "namespace where RemediationRequests are created", (*stringValue)(&c.Kubernetes.Namespace)},
		{"kube-timeout", "timeout of each Kubernetes API call", &c.Kubernetes.Timeout},
		{"kube-qps", "client-side QPS limit towards the API server", (*floatValue)(&c.Kubernetes.QPS)},
		{"kube-burst", "client-side burst towards the API server", (*intValue)(&c.Kubernetes.Burst)},
		{"terminal-phases", "phases in which a RemediationRequest's episode has ended, comma-separated (downstream controllers set them)", (*listValue)(&c.Kubernetes.TerminalPhases)},
		{"dedup-window", "how long Redis keeps a fingerprint's open episode after its last occurrence (the fast path; the API server is the truth)", &c.Dedup.Window},
		{"dedup-lease", "lease of a reservation to open an episode whose holder vanished (> request deadline, <= 30s)", &c.Dedup.Lease},
		{"request-deadline", "overall deadline of a request (504 after it)", &c.Request.Deadline},
		{"max-body", "maximum request body in bytes (413 above)", (*int64Value)(&c.Request.MaxBody)},
		{"max-alerts", "maximum alerts in one webhook (400 above)", (*intValue)(&c.Request.MaxAlerts)},
		{"retry-after", "Retry-After sent with 503 and 504", &c.Request.RetryAfter},
		{"max-labels", "maximum labels, and annotations, of one signal (the alert is rejected above, the others of its batch are stored)", (*intValue)(&c.Request.MaxLabels)},
		{"max-clock-skew", "how far in the future a signal's timestamps may be (clamped to the receive time beyond)", &c.Request.MaxClockSkew},
		{"max-in-flight", "maximum concurrent signal requests (503 with Retry-After above)", (*intValue)(&c.Request.MaxInFlight)},
		{"sender-rate", "requests per second allowed to each sender, 503 with Retry-After above (0: unlimited)", (*floatValue)(&c.Request.SenderRate)},
		{"sender-burst", "burst of --sender-rate", (*intValue)(&c.Request.SenderBurst)},
		{"breaker-failures", "consecutive failures that open a circuit breaker", (*intValue)(&c.Breaker.Failures)},
		{"breaker-open-for", "how long an open breaker refuses calls before a probe", &c.Breaker.OpenFor},
		{"status-interval", "interval between status projections of occurrence counts", &c.StatusInterval},
		{"shutdown-timeout", "bound on draining in-flight requests at shutdown", &c.ShutdownTimeout},
		{"log-level", "debug, info, warn or error", (*stringValue)(&c.LogLevel)},
		{"dev", "start a local redis-server and control plane for what is not configured", (*boolValue)(&c.Dev)},
	}
}

// Flag describes one option for documentation.
type Flag struct {
	Name, Env, Default, Usage string
}

// Flags lists every option with its default.
func Flags() []Flag {
	c := Default()
	var out []Flag
	for _, o := range c.options() {
		out = append(out, Flag{Name: o.name, Env: EnvName(o.name), Default: o.value.String(), Usage: o.usage})
	}
	return out
}

// TableRow is a flag's row in the README's configuration table.
func TableRow(f Flag) string {
	def := f.Default
	if def == "" {
		def = "–"
	}
	return fmt.Sprintf("| `--%s` | `%s` | `%s` | %s |", f.Name, f.Env, def, f.Usage)
}

// EnvName is the environment variable of a flag: ALERTGATE_ + upper case,
// dashes as underscores.
func EnvName(flagName string) string {
	return "ALERTGATE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Load builds the configuration from defaults, the YAML file named by
// --config or ALERTGATE_CONFIG, the environment, and args; then validates it.
func Load(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	cfg := Default()
	path := getenv("ALERTGATE_CONFIG")
	for i, a := range args {
		switch {
		case a == "--config" || a == "-config":
			if i+1 < len(args) {
				path = args[i+1]
			}
		case strings.HasPrefix(a, "--config="), strings.HasPrefix(a, "-config="):
			path = a[strings.IndexByte(a, '=')+1:]
		}
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
			return cfg, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.String("config", path, "YAML configuration file (env ALERTGATE_CONFIG)")
	for _, o := range cfg.options() {
		if v := getenv(EnvName(o.name)); v != "" {
			if err := o.value.Set(v); err != nil {
				return cfg, fmt.Errorf("config: %s=%q: %w", EnvName(o.name), v, err)
			}
		}
		fs.Var(o.value, o.name, o.usage+" (env "+EnvName(o.name)+")")
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("config: unexpected arguments %q", fs.Args())
	}
	return cfg, cfg.Validate()
}

// Args renders the configuration as command-line flags that Load reads
// back to the same configuration.
func (c Config) Args() []string {
	opts := c.options()
	args := make([]string, 0, len(opts))
	for _, o := range opts {
		args = append(args, "--"+o.name+"="+o.value.String())
	}
	return args
}

// Validate reports every invalid setting at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Listen == "" {
		bad("listen: must not be empty")
	}
	switch {
	case c.Redis.SentinelMaster != "" && len(c.Redis.SentinelAddrs) == 0:
		bad("redis.sentinelAddrs: required with redis.sentinelMaster")
	case c.Redis.SentinelMaster == "" && len(c.Redis.SentinelAddrs) > 0:
		bad("redis.sentinelMaster: required with redis.sentinelAddrs")
	case c.Redis.SentinelMaster == "" && c.Redis.Addr == "" && !c.Dev:
		bad("redis.addr: required (or redis.sentinelMaster, or --dev to start a local redis-server)")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls: certFile and keyFile go together")
	}
	switch c.Auth.Mode {
	case "kubernetes", "none":
	case "static":
		if c.Auth.TokenFile == "" {
			bad("auth.tokenFile: required with auth mode static")
		}
	default:
		bad("auth.mode: %q is not kubernetes, static or none", c.Auth.Mode)
	}
	if c.Auth.CacheTTL.Duration < 0 || c.Auth.CacheTTL.Duration > 10*time.Minute {
		bad("auth.cacheTTL: %s must be in [0, 10m]", c.Auth.CacheTTL)
	}
	if c.Auth.Verb == "" || c.Auth.Resource == "" {
		bad("auth.verb and auth.resource: must not be empty")
	}
	if c.Request.MaxLabels < 1 {
		bad("request.maxLabels: must be positive")
	}
	if c.Request.MaxClockSkew.Duration < 0 {
		bad("request.maxClockSkew: must not be negative")
	}
	if c.Request.MaxInFlight < 1 {
		bad("request.maxInFlight: must be positive")
	}
	if c.Request.SenderRate < 0 || (c.Request.SenderRate > 0 && c.Request.SenderBurst < 1) {
		bad("request.senderRate: must be 0 (off), or positive with senderBurst at least 1")
	}
	if c.Redis.Timeout.Duration <= 0 {
		bad("redis.timeout: must be positive")
	}
	if c.Redis.PoolSize < 1 {
		bad("redis.poolSize: must be at least 1")
	}
	if c.Redis.KeyPrefix == "" {
		bad("redis.keyPrefix: must not be empty")
	}
	if msgs := validation.IsDNS1123Label(c.Kubernetes.Namespace); len(msgs) > 0 {
		bad("kubernetes.namespace: %q: %s", c.Kubernetes.Namespace, strings.Join(msgs, "; "))
	}
	if c.Kubernetes.Timeout.Duration <= 0 {
		bad("kubernetes.timeout: must be positive")
	}
	if c.Kubernetes.QPS <= 0 || c.Kubernetes.Burst < 1 {
		bad("kubernetes.qps and kubernetes.burst: must be positive")
	}
	if c.Dedup.Window.Duration < time.Second {
		bad("dedup.window: %s is below 1s", c.Dedup.Window)
	}
	if c.Dedup.Lease.Duration <= 0 {
		bad("dedup.lease: must be positive")
	} else if err := dedup.ValidLease(c.Dedup.Lease.Duration); err != nil {
		bad("dedup.lease: %v", err)
	}
	if len(c.Kubernetes.TerminalPhases) == 0 {
		bad("kubernetes.terminalPhases: must name at least one phase")
	}
	for _, p := range c.Kubernetes.TerminalPhases {
		if p == string(v1alpha1.PhasePending) {
			bad("kubernetes.terminalPhases: %s is the phase of an episode the gateway opens", p)
		}
	}
	if c.Request.Deadline.Duration <= 0 {
		bad("request.deadline: must be positive")
	} else if c.Dedup.Lease.Duration <= c.Request.Deadline.Duration {
		bad("dedup.lease: %s must exceed request.deadline %s, or a slow request could lose its reservation", c.Dedup.Lease, c.Request.Deadline)
	}
	if c.Request.MaxBody < 1 {
		bad("request.maxBody: must be positive")
	}
	if c.Request.MaxAlerts < 1 {
		bad("request.maxAlerts: must be positive")
	}
	if c.Request.RetryAfter.Duration < time.Second {
		bad("request.retryAfter: %s is below 1s (Retry-After is in whole seconds)", c.Request.RetryAfter)
	}
	if c.Breaker.Failures < 1 {
		bad("breaker.failures: must be at least 1")
	}
	if c.Breaker.OpenFor.Duration <= 0 || c.Breaker.OpenFor.Duration > time.Minute {
		bad("breaker.openFor: %s must be in (0, 1m]", c.Breaker.OpenFor)
	}
	if c.StatusInterval.Duration <= 0 {
		bad("statusInterval: must be positive")
	}
	if c.ShutdownTimeout.Duration <= 0 {
		bad("shutdownTimeout: must be positive")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("logLevel: %q is not debug, info, warn or error", c.LogLevel)
	}
	return errors.Join(errs...)
}

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }

type intValue int

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	*v = intValue(n)
	return err
}
func (v *intValue) String() string { return strconv.Itoa(int(*v)) }

type int64Value int64

func (v *int64Value) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	*v = int64Value(n)
	return err
}
func (v *int64Value) String() string { return strconv.FormatInt(int64(*v), 10) }

type floatValue float64

func (v *floatValue) Set(s string) error {
	n, err := strconv.ParseFloat(s, 64)
	*v = floatValue(n)
	return err
}
func (v *floatValue) String() string { return strconv.FormatFloat(float64(*v), 'g', -1, 64) }

// listValue is a comma-separated list.
type listValue []string

func (v *listValue) Set(s string) error {
	*v = nil
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*v = append(*v, x)
		}
	}
	return nil
}
func (v *listValue) String() string { return strings.Join(*v, ",") }

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	*v = boolValue(b)
	return err
}
func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }
