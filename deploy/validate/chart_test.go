package validate

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/alertgate/gateway/internal/config"
)

var updateCRD = flag.Bool("update-crd", false, "copy config/crd into the chart's crds/ instead of failing on drift")

const crdFile = "remediation.alertgate.io_remediationrequests.yaml"

// extraFlags are gateway flags the chart must support whatever
// config.Flags says (Sentinel, TLS, auth, load shedding): the test fails if one of them
// disappears from the chart.
var extraFlags = []string{
	"redis-sentinel-master", "redis-sentinel-addrs", "redis-sentinel-password",
	"tls-cert-file", "tls-key-file",
	"auth", "auth-token-file", "auth-cache-ttl",
	"max-in-flight",
}

// flagsNotInChart are gateway flags the chart deliberately does not set,
// with the reason.
var flagsNotInChart = map[string]string{
	"dev": "starts a local redis-server and control plane; meaningless in a cluster and impossible in a distroless image",
}

func TestChartCRDMatchesGenerated(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(repoRoot, "config", "crd", crdFile))
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(chartDir, "crds", crdFile)
	if *updateCRD {
		if err := os.WriteFile(dst, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatalf("%v (run: go test -run TestChartCRDMatchesGenerated -args -update-crd)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from config/crd/%s; run: go test -run TestChartCRDMatchesGenerated -args -update-crd", dst, crdFile)
	}
	entries, err := os.ReadDir(filepath.Join(chartDir, "crds"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != crdFile {
			t.Errorf("unexpected file crds/%s: only the generated CRD belongs there", e.Name())
		}
		if e.Type()&os.ModeSymlink != 0 {
			t.Errorf("crds/%s is a symlink; it must be a copy", e.Name())
		}
	}
}

func TestChartLint(t *testing.T) {
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			res := lint.AllWithKubeVersion(chartDir, c.values(t), releaseNamespace, kv)
			for _, m := range res.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				}
			}
		})
	}
}

func TestChartRendersExpectedKinds(t *testing.T) {
	want := map[string][]string{
		"default": {"ClusterRole", "ClusterRoleBinding", "Deployment", "PodDisruptionBudget",
			"Role", "RoleBinding", "Service", "ServiceAccount"},
		"sentinel-tls-auth": {"Deployment", "NetworkPolicy", "PodDisruptionBudget", "Role", "RoleBinding",
			"Service", "ServiceAccount", "ServiceMonitor"},
		"sentinel-tls-kubernetes-auth": {"ClusterRole", "ClusterRoleBinding", "Deployment", "NetworkPolicy",
			"PodDisruptionBudget", "Role", "RoleBinding", "Service", "ServiceAccount", "ServiceMonitor"},
		// replicaCount=1: no PodDisruptionBudget.
		"bundled-redis-static-tokens": {"Deployment", "NetworkPolicy", "Role", "RoleBinding", "Secret",
			"Service", "ServiceAccount"},
	}
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			r := c.render(t)
			var kinds []string
			for _, o := range r.objects {
				if !slices.Contains(kinds, o.GetKind()) {
					kinds = append(kinds, o.GetKind())
				}
			}
			slices.Sort(kinds)
			if !slices.Equal(kinds, want[c.name]) {
				t.Errorf("kinds = %v, want %v", kinds, want[c.name])
			}
		})
	}
}

func TestChartDeploymentHardening(t *testing.T) {
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			r := c.render(t)
			d, ctr := r.gatewayDeployment(t)
			spec := d.Spec.Template.Spec
			replicas := int32(1)
			if d.Spec.Replicas != nil {
				replicas = *d.Spec.Replicas
			}
			if c.name != "bundled-redis-static-tokens" && replicas < 2 {
				t.Errorf("replicas = %d, want >= 2", replicas)
			}
			if got := ctr.Image; !strings.HasPrefix(got, "alertgate/gateway:") {
				t.Errorf("image = %q", got)
			}
			if len(ctr.Command) > 0 {
				t.Errorf("command = %v: the image's entrypoint must be used", ctr.Command)
			}

			sc := ctr.SecurityContext
			if sc == nil {
				t.Fatal("container has no securityContext")
			}
			checkTrue(t, "runAsNonRoot", sc.RunAsNonRoot)
			checkTrue(t, "readOnlyRootFilesystem", sc.ReadOnlyRootFilesystem)
			checkFalse(t, "allowPrivilegeEscalation", sc.AllowPrivilegeEscalation)
			if sc.RunAsUser == nil || *sc.RunAsUser != 65532 {
				t.Errorf("runAsUser = %v, want 65532", sc.RunAsUser)
			}
			if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
				t.Errorf("capabilities = %+v, want drop [ALL] and no add", sc.Capabilities)
			}
			if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("seccompProfile = %+v, want RuntimeDefault", sc.SeccompProfile)
			}
			if psc := spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
				t.Errorf("pod securityContext.runAsNonRoot not true: %+v", psc)
			}

			// Port and probes.
			if len(ctr.Ports) != 1 || ctr.Ports[0].Name != "http" || ctr.Ports[0].ContainerPort != 8080 {
				t.Errorf("ports = %+v, want one port http/8080", ctr.Ports)
			}
			scheme := corev1.URISchemeHTTP
			if r.values["tls"].(map[string]any)["enabled"] == true {
				scheme = corev1.URISchemeHTTPS
			}
			checkProbe(t, "liveness", ctr.LivenessProbe, "/healthz", scheme)
			checkProbe(t, "readiness", ctr.ReadinessProbe, "/readyz", scheme)
			if ctr.Resources.Requests.Cpu().IsZero() || ctr.Resources.Requests.Memory().IsZero() || ctr.Resources.Limits.Memory().IsZero() {
				t.Errorf("resources = %+v, want cpu/memory requests and a memory limit", ctr.Resources)
			}

			// Termination grace above the shutdown timeout (+ preStop sleep).
			env := envMap(ctr)
			shutdown, err := time.ParseDuration(env["ALERTGATE_SHUTDOWN_TIMEOUT"].Value)
			if err != nil {
				t.Fatalf("ALERTGATE_SHUTDOWN_TIMEOUT: %v", err)
			}
			need := shutdown
			if ctr.Lifecycle != nil && ctr.Lifecycle.PreStop != nil && ctr.Lifecycle.PreStop.Sleep != nil {
				need += time.Duration(ctr.Lifecycle.PreStop.Sleep.Seconds) * time.Second
			}
			if g := spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= need {
				t.Errorf("terminationGracePeriodSeconds = %v, want > %s", g, need)
			}

			// Anti-affinity by hostname, preferred.
			aff := spec.Affinity
			if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
				t.Fatalf("no preferred pod anti-affinity: %+v", aff)
			}
			term := aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
			if term.TopologyKey != "kubernetes.io/hostname" || term.LabelSelector == nil ||
				term.LabelSelector.MatchLabels["app.kubernetes.io/name"] != "alertgate-gateway" {
				t.Errorf("anti-affinity term = %+v", term)
			}
			if d.Spec.Template.Labels["app.kubernetes.io/name"] != "alertgate-gateway" {
				t.Errorf("pod labels = %v: the Chaos Mesh selectors need app.kubernetes.io/name=alertgate-gateway", d.Spec.Template.Labels)
			}
			if spec.ServiceAccountName != releaseName {
				t.Errorf("serviceAccountName = %q", spec.ServiceAccountName)
			}
		})
	}
}

func checkTrue(t *testing.T, name string, b *bool) {
	t.Helper()
	if b == nil || !*b {
		t.Errorf("%s = %v, want true", name, b)
	}
}

func checkFalse(t *testing.T, name string, b *bool) {
	t.Helper()
	if b == nil || *b {
		t.Errorf("%s = %v, want false", name, b)
	}
}

func checkProbe(t *testing.T, name string, p *corev1.Probe, path string, scheme corev1.URIScheme) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s probe: want an httpGet probe", name)
		return
	}
	g := p.HTTPGet
	if g.Path != path || g.Port != intstr.FromString("http") || g.Scheme != scheme {
		t.Errorf("%s probe = %s %v %s, want %s http %s", name, g.Path, g.Port.String(), g.Scheme, path, scheme)
	}
}

func TestChartServiceAndPDB(t *testing.T) {
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			r := c.render(t)
			svc := typed[corev1.Service](t, r.one(t, "Service", releaseName))
			if svc.Spec.Type != corev1.ServiceTypeClusterIP || len(svc.Spec.Ports) != 1 ||
				svc.Spec.Ports[0].Name != "http" || svc.Spec.Ports[0].Port != 8080 {
				t.Errorf("service = %+v, want ClusterIP with port http/8080", svc.Spec)
			}
			d, _ := r.gatewayDeployment(t)
			pdbs := r.find("PodDisruptionBudget")
			if *d.Spec.Replicas <= 1 {
				if len(pdbs) != 0 {
					t.Errorf("PodDisruptionBudget rendered for %d replica(s): it would block node drains", *d.Spec.Replicas)
				}
				return
			}
			if len(pdbs) != 1 {
				t.Fatalf("want one PodDisruptionBudget, got %d", len(pdbs))
			}
			pdb := typed[policyv1.PodDisruptionBudget](t, pdbs[0])
			if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 ||
				pdb.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
				t.Errorf("minAvailable = %v with %d replicas", pdb.Spec.MinAvailable, *d.Spec.Replicas)
			}
			if pdb.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != "alertgate-gateway" {
				t.Errorf("PDB selector = %v", pdb.Spec.Selector)
			}
		})
	}
}

// TestChartEveryGatewayFlag fails when config.Flags gains a flag that the
// chart does not set: every flag's ALERTGATE_ variable must appear in the
// gateway Deployment of at least one case, and values.yaml must document it.
func TestChartEveryGatewayFlag(t *testing.T) {
	flags := config.Flags()
	for _, f := range extraFlags {
		flags = append(flags, config.Flag{Name: f, Env: config.EnvName(f)})
	}
	valuesYAML, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range renderCases {
		r := c.render(t)
		_, ctr := r.gatewayDeployment(t)
		for _, e := range ctr.Env {
			seen[e.Name] = true
		}
	}
	known := map[string]bool{}
	for _, fl := range flags {
		f := fl.Name
		known[fl.Env] = true
		if reason, ok := flagsNotInChart[f]; ok {
			t.Logf("flag --%s not set by the chart: %s", f, reason)
			continue
		}
		if !seen[fl.Env] {
			t.Errorf("flag --%s: no case sets %s in the gateway Deployment; add it to the chart", f, fl.Env)
		}
		if !bytes.Contains(valuesYAML, []byte("--"+f+")")) && !bytes.Contains(valuesYAML, []byte("--"+f+":")) &&
			!bytes.Contains(valuesYAML, []byte("--"+f+",")) && !bytes.Contains(valuesYAML, []byte("--"+f+" ")) {
			t.Errorf("flag --%s is not documented in values.yaml", f)
		}
	}
	for name := range seen {
		if strings.HasPrefix(name, "ALERTGATE_") && !known[name] {
			t.Errorf("the chart sets %s, which is no gateway flag", name)
		}
	}
}

func TestChartSecretsNeverInPlainText(t *testing.T) {
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			r := c.render(t)
			for _, d := range r.find("Deployment") {
				dep := typed[appsv1.Deployment](t, d)
				for _, ctr := range dep.Spec.Template.Spec.Containers {
					for _, e := range ctr.Env {
						upper := strings.ToUpper(e.Name)
						if strings.Contains(upper, "PASSWORD") || strings.Contains(upper, "TOKEN") && !strings.HasSuffix(upper, "_FILE") {
							if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
								t.Errorf("%s/%s env %s must come from a Secret (valueFrom.secretKeyRef)", dep.Name, ctr.Name, e.Name)
							}
						}
					}
				}
			}
			for _, o := range r.objects {
				if o.GetKind() == "Secret" {
					if _, ok := o.Object["stringData"]; ok {
						t.Errorf("Secret %s uses stringData; use base64 data", o.GetName())
					}
					continue
				}
				b, err := json.Marshal(o.Object)
				if err != nil {
					t.Fatal(err)
				}
				for _, secret := range []string{testRedisPassword, testToken} {
					if bytes.Contains(b, []byte(secret)) {
						t.Errorf("%s %s contains a secret value in plain text", o.GetKind(), o.GetName())
					}
				}
			}
		})
	}
}

func TestChartRedisModes(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		_, ctr := caseByName(t, "default").render(t).gatewayDeployment(t)
		env := envMap(ctr)
		if env["ALERTGATE_REDIS_ADDR"].Value != "redis:6379" {
			t.Errorf("ALERTGATE_REDIS_ADDR = %q", env["ALERTGATE_REDIS_ADDR"].Value)
		}
		for _, n := range []string{"ALERTGATE_REDIS_SENTINEL_MASTER", "ALERTGATE_REDIS_PASSWORD", "ALERTGATE_TLS_CERT_FILE", "ALERTGATE_AUTH_TOKEN_FILE"} {
			if _, ok := env[n]; ok {
				t.Errorf("%s set with default values", n)
			}
		}
		if env["ALERTGATE_NAMESPACE"].Value != releaseNamespace {
			t.Errorf("ALERTGATE_NAMESPACE = %q, want the release namespace", env["ALERTGATE_NAMESPACE"].Value)
		}
		if env["ALERTGATE_AUTH"].Value != "kubernetes" {
			t.Errorf("ALERTGATE_AUTH = %q, want kubernetes by default", env["ALERTGATE_AUTH"].Value)
		}
	})
	t.Run("sentinel", func(t *testing.T) {
		r := caseByName(t, "sentinel-tls-auth").render(t)
		d, ctr := r.gatewayDeployment(t)
		env := envMap(ctr)
		if _, ok := env["ALERTGATE_REDIS_ADDR"]; ok {
			t.Error("ALERTGATE_REDIS_ADDR set in Sentinel mode")
		}
		if got := env["ALERTGATE_REDIS_SENTINEL_MASTER"].Value; got != "mymaster" {
			t.Errorf("sentinel master = %q", got)
		}
		if got := strings.Split(env["ALERTGATE_REDIS_SENTINEL_ADDRS"].Value, ","); len(got) != 3 || !strings.HasSuffix(got[0], ":26379") {
			t.Errorf("sentinel addrs = %v", got)
		}
		for _, n := range []string{"ALERTGATE_REDIS_PASSWORD", "ALERTGATE_REDIS_SENTINEL_PASSWORD"} {
			ref := env[n].ValueFrom
			if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "redis-credentials" {
				t.Errorf("%s = %+v, want a secretKeyRef to redis-credentials", n, env[n])
			}
		}
		if env["ALERTGATE_NAMESPACE"].Value != "remediation" {
			t.Errorf("ALERTGATE_NAMESPACE = %q", env["ALERTGATE_NAMESPACE"].Value)
		}
		// TLS and the token file are mounted from Secrets, read-only.
		mounts := map[string]corev1.VolumeMount{}
		for _, m := range ctr.VolumeMounts {
			mounts[m.Name] = m
			if !m.ReadOnly {
				t.Errorf("volume mount %s is writable", m.Name)
			}
		}
		for _, f := range []string{"ALERTGATE_TLS_CERT_FILE", "ALERTGATE_TLS_KEY_FILE", "ALERTGATE_AUTH_TOKEN_FILE"} {
			p := env[f].Value
			ok := false
			for _, m := range mounts {
				if strings.HasPrefix(p, m.MountPath+"/") {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s = %q is under no volume mount", f, p)
			}
		}
		vols := map[string]corev1.Volume{}
		for _, v := range d.Spec.Template.Spec.Volumes {
			vols[v.Name] = v
			if v.Secret == nil {
				t.Errorf("volume %s is not a Secret", v.Name)
			}
		}
		if vols["tls"].Secret == nil || vols["tls"].Secret.SecretName != "alertgate-gateway-tls" {
			t.Errorf("tls volume = %+v", vols["tls"])
		}
		if vols["auth-tokens"].Secret == nil || vols["auth-tokens"].Secret.SecretName != "alertgate-senders" {
			t.Errorf("auth-tokens volume = %+v", vols["auth-tokens"])
		}
		// Role in the target namespace, bound to the release's ServiceAccount.
		role := typed[rbacv1.Role](t, r.one(t, "Role", releaseName))
		if role.Namespace != "remediation" {
			t.Errorf("Role namespace = %q, want the target namespace", role.Namespace)
		}
		rb := typed[rbacv1.RoleBinding](t, r.one(t, "RoleBinding", releaseName))
		if rb.Namespace != "remediation" || len(rb.Subjects) != 1 || rb.Subjects[0].Namespace != releaseNamespace {
			t.Errorf("RoleBinding = %+v", rb)
		}
	})
	t.Run("bundled", func(t *testing.T) {
		r := caseByName(t, "bundled-redis-static-tokens").render(t)
		_, ctr := r.gatewayDeployment(t)
		env := envMap(ctr)
		if got := env["ALERTGATE_REDIS_ADDR"].Value; got != releaseName+"-redis:6379" {
			t.Errorf("ALERTGATE_REDIS_ADDR = %q", got)
		}
		redis := typed[appsv1.Deployment](t, r.one(t, "Deployment", releaseName+"-redis"))
		if redis.Spec.Template.Labels["app.kubernetes.io/name"] != "redis" {
			t.Errorf("bundled Redis pod labels = %v: the Chaos Mesh selectors need app.kubernetes.io/name=redis", redis.Spec.Template.Labels)
		}
		rc := redis.Spec.Template.Spec.Containers[0]
		if !strings.HasPrefix(rc.Image, "redis:7") {
			t.Errorf("redis image = %q", rc.Image)
		}
		args := strings.Join(rc.Args, " ")
		for _, want := range []string{"--save  ", "--appendonly no", "--maxmemory 128mb", "--maxmemory-policy noeviction", "--requirepass $(REDIS_PASSWORD)"} {
			if !strings.Contains(args+" ", want) {
				t.Errorf("redis args %q lack %q", args, want)
			}
		}
		sc := rc.SecurityContext
		checkTrue(t, "redis runAsNonRoot", sc.RunAsNonRoot)
		checkTrue(t, "redis readOnlyRootFilesystem", sc.ReadOnlyRootFilesystem)
		checkFalse(t, "redis allowPrivilegeEscalation", sc.AllowPrivilegeEscalation)
		if len(rc.VolumeMounts) != 1 || rc.VolumeMounts[0].MountPath != "/data" ||
			redis.Spec.Template.Spec.Volumes[0].EmptyDir == nil {
			t.Errorf("redis /data is not an emptyDir: %+v", redis.Spec.Template.Spec.Volumes)
		}
		svc := typed[corev1.Service](t, r.one(t, "Service", releaseName+"-redis"))
		if svc.Spec.Ports[0].Port != 6379 {
			t.Errorf("redis service = %+v", svc.Spec.Ports)
		}
	})
}

func TestChartRBACLeastPrivilege(t *testing.T) {
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			r := c.render(t)
			role := typed[rbacv1.Role](t, r.one(t, "Role", releaseName))
			want := []rbacv1.PolicyRule{
				{APIGroups: []string{"remediation.alertgate.io"}, Resources: []string{"remediationrequests"}, Verbs: []string{"create", "get", "list", "watch"}},
				{APIGroups: []string{"remediation.alertgate.io"}, Resources: []string{"remediationrequests/status"}, Verbs: []string{"get", "update", "patch"}},
			}
			if !equalJSON(t, role.Rules, want) {
				t.Errorf("Role rules = %+v, want %+v", role.Rules, want)
			}
			crs := r.find("ClusterRole")
			mode := r.values["auth"].(map[string]any)["mode"]
			if mode != "kubernetes" {
				if len(crs)+len(r.find("ClusterRoleBinding")) != 0 {
					t.Errorf("auth.mode=%v: no cluster-wide RBAC expected", mode)
				}
				return
			}
			if len(crs) != 1 {
				t.Fatalf("auth.mode=kubernetes: want one ClusterRole, got %d", len(crs))
			}
			cr := typed[rbacv1.ClusterRole](t, crs[0])
			wantCR := []rbacv1.PolicyRule{
				{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
				{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
			}
			if !equalJSON(t, cr.Rules, wantCR) {
				t.Errorf("ClusterRole rules = %+v, want %+v", cr.Rules, wantCR)
			}
			crb := typed[rbacv1.ClusterRoleBinding](t, r.one(t, "ClusterRoleBinding", cr.Name))
			if crb.RoleRef.Name != cr.Name || len(crb.Subjects) != 1 || crb.Subjects[0].Name != releaseName ||
				crb.Subjects[0].Namespace != releaseNamespace {
				t.Errorf("ClusterRoleBinding = %+v", crb)
			}
		})
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	x, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

func TestChartNetworkPolicy(t *testing.T) {
	r := caseByName(t, "sentinel-tls-auth").render(t)
	np := typed[networkingv1.NetworkPolicy](t, r.one(t, "NetworkPolicy", releaseName))
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
		t.Errorf("policyTypes = %v", np.Spec.PolicyTypes)
	}
	if np.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != "alertgate-gateway" {
		t.Errorf("podSelector = %v", np.Spec.PodSelector)
	}

	// Ingress: only the configured senders, only to the http port.
	if len(np.Spec.Ingress) != 1 {
		t.Fatalf("ingress rules = %d, want 1", len(np.Spec.Ingress))
	}
	in := np.Spec.Ingress[0]
	if len(in.From) != 2 || in.From[0].NamespaceSelector == nil || in.From[0].PodSelector == nil {
		t.Errorf("ingress from = %+v", in.From)
	}
	for _, p := range in.From {
		if p.IPBlock != nil || (p.NamespaceSelector == nil && p.PodSelector == nil) {
			t.Errorf("ingress peer %+v: want selectors only", p)
		}
	}
	if len(in.Ports) != 1 || in.Ports[0].Port == nil || in.Ports[0].Port.String() != "http" {
		t.Errorf("ingress ports = %+v, want http only", in.Ports)
	}

	// Egress: Redis/Sentinel, API server, DNS, and nothing else.
	if len(np.Spec.Egress) != 3 {
		t.Fatalf("egress rules = %d, want 3 (redis, api server, dns)", len(np.Spec.Egress))
	}
	redis, api, dns := np.Spec.Egress[0], np.Spec.Egress[1], np.Spec.Egress[2]
	if got := ports(redis.Ports); !slices.Equal(got, []string{"TCP/26379", "TCP/6379"}) {
		t.Errorf("redis egress ports = %v", got)
	}
	if len(redis.To) != 1 || redis.To[0].PodSelector == nil || redis.To[0].NamespaceSelector == nil {
		t.Errorf("redis egress peers = %+v", redis.To)
	}
	var cidrs []string
	for _, p := range api.To {
		if p.IPBlock == nil {
			t.Errorf("api server egress peer %+v is not an ipBlock", p)
			continue
		}
		if p.IPBlock.CIDR == "0.0.0.0/0" || p.IPBlock.CIDR == "::/0" {
			t.Errorf("api server egress allows everything: %s", p.IPBlock.CIDR)
		}
		cidrs = append(cidrs, p.IPBlock.CIDR)
	}
	if !slices.Equal(cidrs, []string{"10.0.0.10/32", "10.0.0.11/32"}) {
		t.Errorf("api server cidrs = %v", cidrs)
	}
	if got := ports(api.Ports); !slices.Equal(got, []string{"TCP/443", "TCP/6443"}) {
		t.Errorf("api server egress ports = %v", got)
	}
	if got := ports(dns.Ports); !slices.Equal(got, []string{"TCP/53", "UDP/53"}) {
		t.Errorf("dns egress ports = %v", got)
	}
	if len(dns.To) != 1 || dns.To[0].PodSelector.MatchLabels["k8s-app"] != "kube-dns" {
		t.Errorf("dns egress peers = %+v", dns.To)
	}

	// Bundled Redis: the gateway may reach it, and only the gateway may.
	b := caseByName(t, "bundled-redis-static-tokens").render(t)
	gw := typed[networkingv1.NetworkPolicy](t, b.one(t, "NetworkPolicy", releaseName))
	if len(gw.Spec.Egress[0].To) != 1 || gw.Spec.Egress[0].To[0].PodSelector.MatchLabels["app.kubernetes.io/name"] != "redis" {
		t.Errorf("bundled redis egress peers = %+v", gw.Spec.Egress[0].To)
	}
	rp := typed[networkingv1.NetworkPolicy](t, b.one(t, "NetworkPolicy", releaseName+"-redis"))
	if len(rp.Spec.Ingress) != 1 || rp.Spec.Ingress[0].From[0].PodSelector.MatchLabels["app.kubernetes.io/name"] != "alertgate-gateway" {
		t.Errorf("bundled redis ingress = %+v", rp.Spec.Ingress)
	}
	if len(rp.Spec.Egress) != 0 || !slices.Contains(rp.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("bundled redis egress should be denied: %+v", rp.Spec)
	}
}

func ports(ps []networkingv1.NetworkPolicyPort) []string {
	var out []string
	for _, p := range ps {
		proto := "TCP"
		if p.Protocol != nil {
			proto = string(*p.Protocol)
		}
		out = append(out, proto+"/"+p.Port.String())
	}
	slices.Sort(out)
	return out
}

func TestChartServiceMonitor(t *testing.T) {
	r := caseByName(t, "sentinel-tls-auth").render(t)
	sm := r.one(t, "ServiceMonitor", releaseName)
	if sm.GetAPIVersion() != "monitoring.coreos.com/v1" {
		t.Errorf("apiVersion = %s", sm.GetAPIVersion())
	}
	eps, _, _ := unstructuredSlice(sm.Object, "spec", "endpoints")
	if len(eps) != 1 {
		t.Fatalf("endpoints = %v", eps)
	}
	ep := eps[0].(map[string]any)
	if ep["port"] != "http" || ep["path"] != "/metrics" || ep["scheme"] != "https" {
		t.Errorf("endpoint = %v", ep)
	}
	if len(caseByName(t, "default").render(t).find("ServiceMonitor")) != 0 {
		t.Error("ServiceMonitor rendered by default")
	}
}

func unstructuredSlice(obj map[string]any, path ...string) ([]any, bool, error) {
	cur := any(obj)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false, nil
		}
		cur = m[p]
	}
	s, ok := cur.([]any)
	return s, ok, nil
}

// TestChartRejectsBadValues checks the chart's own guards.
func TestChartRejectsBadValues(t *testing.T) {
	bad := map[string][]string{
		"no redis":                  {"redis.addr="},
		"sentinel without addrs":    {"redis.sentinel.masterName=m"},
		"bundled and sentinel":      {"redis.bundled.enabled=true", "redis.sentinel.masterName=m", "redis.sentinel.addrs={s:26379}"},
		"unknown auth mode":         {"auth.mode=basic"},
		"static without tokens":     {"auth.mode=static"},
		"tls without secret":        {"tls.enabled=true"},
		"grace below shutdown":      {"terminationGracePeriodSeconds=10"},
		"fractional shutdown":       {"gateway.shutdownTimeout=1.5s"},
		"netpol without api cidrs":  {"networkPolicy.enabled=true", "networkPolicy.egress.redis.to[0].podSelector.matchLabels.app=redis"},
		"netpol without redis peer": {"networkPolicy.enabled=true", "networkPolicy.egress.apiServer.cidrs={10.0.0.1/32}"},
	}
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	for name, set := range bad {
		t.Run(name, func(t *testing.T) {
			vals := renderCase{name: name, set: set}.values(t)
			if _, err := newClientOnlyInstall(kv).Run(loadChart(t), vals); err == nil {
				t.Errorf("values %v rendered; want an error", set)
			} else {
				t.Logf("rejected as expected: %v", firstLine(err.Error()))
			}
		})
	}
	// The derived grace period follows the shutdown timeout.
	r := renderCase{name: "grace", set: []string{"gateway.shutdownTimeout=1m30s", "preStopSleepSeconds=0"}}.render(t)
	d, _ := r.gatewayDeployment(t)
	if got := *d.Spec.Template.Spec.TerminationGracePeriodSeconds; got != 95 {
		t.Errorf("terminationGracePeriodSeconds = %d, want 95 (90s + 5)", got)
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
