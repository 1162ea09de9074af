package chaos_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/alertgate/gateway/internal/config"
	"github.com/alertgate/gateway/internal/pipeline"
	"github.com/alertgate/gateway/testenv/fault"
)

// serviceAccountToken creates a service account and returns a real token
// for it from the TokenRequest API; with allowed, a Role lets it create
// RemediationRequests in ns.
func serviceAccountToken(t *testing.T, ns, name string, allowed bool) string {
	t.Helper()
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(e.ControlPlane.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if allowed {
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"remediation.alertgate.io"}, Resources: []string{"remediationrequests"}, Verbs: []string{"create"},
		}}}
		if _, err := cs.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}}}
		if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

func postAuth(t *testing.T, url, token string, body []byte) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/signals/kubernetes-event", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Impersonate-User", "system:admin")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: map[string]any{"raw": string(b)}}
}

// Authentication with the real API server: a permitted service account,
// one without permission, a forged token, no token, and the API down.
func TestKubernetesAuth(t *testing.T) {
	const ns = "e2e-auth"
	g := startGateway(t, ns, func(c *config.Config) {
		c.Auth.Mode = "kubernetes"
		c.Auth.CacheTTL = config.D(time.Minute)
	}, "")
	good := serviceAccountToken(t, ns, "alertmanager", true)
	denied := serviceAccountToken(t, ns, "nobody", false)
	event := example(t, "kubernetes-event.json")
	// A well-formed JWT the API server never issued.
	forged := "eyJhbGciOiJSUzI1NiIsImtpZCI6ImZvcmdlZCJ9.eyJpc3MiOiJmb3JnZWQiLCJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZTJlLWF1dGg6YWxlcnRtYW5hZ2VyIn0.c2lnbmF0dXJl"

	for _, c := range []struct {
		name, token string
		status      int
	}{
		{"no token", "", 401},
		{"forged token", forged, 401},
		{"no permission", denied, 403},
		{"permitted", good, 201},
	} {
		if a := postAuth(t, g.URL, c.token, event); a.status != c.status {
			t.Errorf("%s: %d %v, want %d", c.name, a.status, a.body, c.status)
		}
	}

	ctx := context.Background()
	undo, err := fault.Down{Dep: "kubernetes"}.Inject(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = undo(ctx) }()
	// The permitted token is cached: a duplicate needs Redis only.
	if a := postAuth(t, g.URL, good, event); a.status != 202 {
		t.Errorf("cached token, API down, duplicate: %d %v, want 202", a.status, a.body)
	}
	// A token the cache has not seen cannot be reviewed: 503, never 401
	// (the API server, were it up, would decide).
	other := good + "x"
	if a := postAuth(t, g.URL, other, event); a.status != 503 || a.header.Get("Retry-After") == "" {
		t.Errorf("unknown token, API down: %d %v, want 503 with Retry-After", a.status, a.body)
	}
	if a := postAuth(t, g.URL, "", event); a.status != 401 {
		t.Errorf("no token, API down: %d, want 401 (decided without the API)", a.status)
	}
	for _, l := range g.Logs.Lines() {
		for _, tok := range []string{good, denied, forged, other} {
			if strings.Contains(fmt.Sprint(l), tok) {
				t.Fatalf("a token appears in the logs: %v", l)
			}
		}
	}
}

func TestStaticTokens(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	if err := os.WriteFile(file, []byte("# senders\nfirst-token-0123456789,alertmanager\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, "e2e-static", func(c *config.Config) {
		c.Auth.Mode, c.Auth.TokenFile, c.Auth.CacheTTL = "static", file, config.D(0)
	}, "")
	event := example(t, "kubernetes-event.json")
	if a := postAuth(t, g.URL, "first-token-0123456789", event); a.status != 201 {
		t.Fatalf("known token: %d %v", a.status, a.body)
	}
	if a := postAuth(t, g.URL, "second-token-0123456789", event); a.status != 401 {
		t.Fatalf("unknown token: %d", a.status)
	}
	// Rotation: the file is read again when it changes.
	if err := os.WriteFile(file, []byte("second-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(file, time.Now().Add(time.Second), time.Now().Add(time.Second))
	waitFor(t, "the rotated token", func() bool { return postAuth(t, g.URL, "second-token-0123456789", event).status == 202 })
	if a := postAuth(t, g.URL, "first-token-0123456789", event); a.status != 401 {
		t.Errorf("retired token: %d, want 401", a.status)
	}
}

// TLS with a generated certificate, replaced while the gateway runs.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := writeCert(t, certFile, keyFile, "first")
	g := startGateway(t, "e2e-tls", func(c *config.Config) {
		c.TLS.CertFile, c.TLS.KeyFile = certFile, keyFile
	}, "")
	addr := strings.TrimPrefix(g.URL, "https://")
	serial := func() string {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the test checks which certificate, not trust
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := serial(); got != first {
		t.Fatalf("served %q, want %q", got, first)
	}
	second := writeCert(t, certFile, keyFile, "second")
	_ = os.Chtimes(certFile, time.Now().Add(2*time.Second), time.Now().Add(2*time.Second))
	_ = os.Chtimes(keyFile, time.Now().Add(2*time.Second), time.Now().Add(2*time.Second))
	waitFor(t, "the new certificate", func() bool { return serial() == second })
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(certFile)
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}}
	resp, err := c.Post("https://"+addr+"/api/v1/signals/kubernetes-event", "application/json", bytes.NewReader(example(t, "kubernetes-event.json")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Errorf("over TLS: %d", resp.StatusCode)
	}
}

func writeCert(t *testing.T, certFile, keyFile, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cn
}

// Load shedding: with every slot held, the next request is 503 with
// Retry-After (Alertmanager retries 5xx only), and it stores nothing.
func TestInFlightBound(t *testing.T) {
	const ns = "e2e-inflight"
	release := make(chan struct{})
	var once sync.Once
	held := make(chan struct{}, 2)
	if err := e.CreateNamespace(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	g, err := e.StartGateway(context.Background(), envOptions(ns, func(c *config.Config) { c.Request.MaxInFlight = 2 }, pipeline.Hooks{
		pipeline.BeforeCreate: func(context.Context, pipeline.HookPoint, []string) {
			held <- struct{}{}
			<-release
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { once.Do(func() { close(release) }); _ = g.Stop() }()
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := bytes.ReplaceAll(example(t, "kubernetes-event.json"), []byte("api-7d9f8b6c5d-x2k4p\""), []byte(fmt.Sprintf("held-%d\"", i)))
			post(t, g.URL, "/api/v1/signals/kubernetes-event", "application/json", body)
		}()
	}
	<-held
	<-held
	shed := bytes.ReplaceAll(example(t, "kubernetes-event.json"), []byte("api-7d9f8b6c5d-x2k4p\""), []byte("shed\""))
	a := post(t, g.URL, "/api/v1/signals/kubernetes-event", "application/json", shed)
	if a.status != 503 || a.header.Get("Retry-After") == "" {
		t.Errorf("third concurrent request: %d %v, want 503 with Retry-After", a.status, a.body)
	}
	once.Do(func() { close(release) })
	wg.Wait()
	for _, rr := range list(t, ns) {
		if rr.Spec.TargetResource.Name == "shed" {
			t.Errorf("the shed request created %s", rr.Name)
		}
	}
	if n := len(list(t, ns)); n != 2 {
		t.Errorf("%d resources, want the 2 held requests'", n)
	}
}

// Hostile requests against the real server: none may panic, hang or be
// stored.
func TestHostileRequests(t *testing.T) {
	const ns = "e2e-hostile"
	g := startGateway(t, ns, func(c *config.Config) {
		c.Request.Deadline = config.D(2 * time.Second)
		c.Dedup.Lease = config.D(3 * time.Second)
	}, "")
	addr := strings.TrimPrefix(g.URL, "http://")
	raw := func(req string, pause time.Duration, rest string) string {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
		_, _ = conn.Write([]byte(req))
		time.Sleep(pause)
		_, _ = conn.Write([]byte(rest))
		b, _ := io.ReadAll(conn)
		line, _, _ := strings.Cut(string(b), "\r\n")
		return line
	}
	slow := "POST /api/v1/signals/prometheus HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"version\""
	start := time.Now()
	line := raw(slow, 3*time.Second, ":\"4\"}")
	t.Logf("slow body answered %q after %s", line, time.Since(start).Round(time.Millisecond))
	if !strings.Contains(line, "408") && line != "" {
		t.Errorf("slow body: %q, want 408 or a closed connection", line)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("slow body held the connection %s", d)
	}
	huge := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 200<<10) + "\r\nConnection: close\r\n\r\n"
	if line := raw(huge, 0, ""); !strings.Contains(line, "431") {
		t.Errorf("huge header: %q, want 431", line)
	}
	for _, c := range []struct {
		name   string
		body   string
		status int
	}{
		{"deep nesting", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"},"annotations":{"x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}}]}`, 400},
		{"invalid UTF-8", "{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{\"alertname\":\"\xc3\x28\"}}]}", 400},
		{"null fields", `{"version":null,"alerts":null}`, 400},
		{"null alert", `{"version":"4","alerts":[null]}`, 400},
		{"numbers for strings", `{"version":"4","alerts":[{"status":7}]}`, 400},
		{"duplicated keys", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"Dup","alertname":"Dup2","namespace":"n","pod":"p"},"startsAt":"2026-11-26T10:00:00Z"}]}`, 201},
		{"huge label value", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"Big","pod":"p","namespace":"n","v":"` + strings.Repeat("v", 500<<10) + `"},"startsAt":"2026-11-26T10:00:00Z"}]}`, 201},
	} {
		a := post(t, g.URL, "/api/v1/signals/prometheus", "application/json", []byte(c.body))
		if a.status != c.status {
			t.Errorf("%s: %d %v, want %d", c.name, a.status, a.body, c.status)
		}
	}
	for _, rr := range list(t, ns) {
		if rr.Spec.SignalName == "Dup" {
			t.Error("duplicated keys: the first value was kept, want the last")
		}
		if v := rr.Spec.Labels["v"]; len(v) > 4096 {
			t.Errorf("a %d-byte label value was stored unbounded", len(v))
		}
		if len(rr.Spec.OriginalPayload) > 32<<10 {
			t.Errorf("a %d-byte payload was stored unbounded", len(rr.Spec.OriginalPayload))
		}
	}
	for _, l := range g.Logs.Lines() {
		if s := fmt.Sprint(l); strings.Contains(s, strings.Repeat("v", 1000)) || strings.Contains(s, "panic") {
			t.Errorf("log line with a payload or a panic: %.300s", s)
		}
	}
}
