package validate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Paths relative to this package.
var (
	repoRoot = filepath.Join("..", "..")
	chartDir = filepath.Join("..", "helm", "alertgate-gateway")
	chaosDir = filepath.Join("..", "chaos-mesh")
)

const (
	releaseName      = "alertgate-gateway"
	releaseNamespace = "alertgate"
	// kubeVersion is the version of the envtest kube-apiserver binaries.
	kubeVersion = "v1.37.2"
	// Sentinel values set by the cases below; they must never show up in
	// plain text outside a Secret.
	testRedisPassword = "redis-pw-0123456789-must-stay-secret"
	testToken         = "token-0123456789-must-stay-secret"
)

// renderCase is one helm install: value files from the chart directory
// plus --set overrides, as the helm CLI merges them.
type renderCase struct {
	name  string
	files []string
	set   []string
}

// renderCases are the ci/ values files plus combinations they leave out.
var renderCases = []renderCase{
	{name: "default", files: []string{"ci/default-values.yaml"}},
	{name: "sentinel-tls-auth", files: []string{"ci/sentinel-tls-auth-values.yaml"}},
	{
		name:  "sentinel-tls-kubernetes-auth",
		files: []string{"ci/sentinel-tls-auth-values.yaml"},
		set:   []string{"auth.mode=kubernetes"},
	},
	{
		name: "bundled-redis-static-tokens",
		set: []string{
			"redis.bundled.enabled=true",
			"redis.auth.password=" + testRedisPassword,
			"auth.mode=static",
			"auth.static.tokens={" + testToken + ",second-" + testToken + "}",
			"networkPolicy.enabled=true",
			"networkPolicy.egress.apiServer.cidrs={10.0.0.10/32}",
			"replicaCount=1",
		},
	},
}

func caseByName(t *testing.T, name string) renderCase {
	t.Helper()
	for _, c := range renderCases {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no render case %q", name)
	return renderCase{}
}

// rendered is the output of one case.
type rendered struct {
	// values are the chart's defaults merged with the case's values.
	values  map[string]any
	objects []*unstructured.Unstructured
	notes   string
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart %s: %v", chartDir, err)
	}
	return ch
}

func (c renderCase) values(t *testing.T) map[string]any {
	t.Helper()
	opts := values.Options{Values: c.set}
	for _, f := range c.files {
		opts.ValueFiles = append(opts.ValueFiles, filepath.Join(chartDir, f))
	}
	vals, err := opts.MergeValues(getter.Providers{})
	if err != nil {
		t.Fatalf("%s: merge values: %v", c.name, err)
	}
	return vals
}

// render runs a client-only `helm install --dry-run` (what `helm template`
// does) and decodes every manifest. CRDs from crds/ are not included; see
// chartCRDs.
func (c renderCase) render(t *testing.T) rendered {
	t.Helper()
	vals := c.values(t)
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	ch := loadChart(t)
	rel, err := newClientOnlyInstall(kv).Run(ch, vals)
	if err != nil {
		t.Fatalf("%s: helm install --dry-run: %v", c.name, err)
	}
	merged, err := chartutil.CoalesceValues(ch, vals)
	if err != nil {
		t.Fatalf("%s: coalesce values: %v", c.name, err)
	}
	var objs []*unstructured.Unstructured
	manifests := releaseutil.SplitManifests(rel.Manifest)
	for _, name := range sortedKeys(manifests) {
		doc := manifests[name]
		decoded, err := decodeYAMLDocuments([]byte(doc))
		if err != nil {
			t.Fatalf("%s: decode %s: %v", c.name, name, err)
		}
		objs = append(objs, decoded...)
	}
	if len(rel.Hooks) > 0 {
		t.Fatalf("%s: the chart has %d hooks; this test applies only manifests", c.name, len(rel.Hooks))
	}
	return rendered{values: merged, objects: objs, notes: rel.Info.Notes}
}

// newClientOnlyInstall is `helm template` as a library call.
func newClientOnlyInstall(kv *chartutil.KubeVersion) *action.Install {
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun = true
	install.ClientOnly = true
	install.Replace = true
	install.ReleaseName = releaseName
	install.Namespace = releaseNamespace
	install.KubeVersion = kv
	return install
}

// chartCRDs decodes the chart's crds/ directory.
func chartCRDs(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, f := range loadChart(t).CRDObjects() {
		objs, err := decodeYAMLDocuments(f.File.Data)
		if err != nil {
			t.Fatalf("decode %s: %v", f.Filename, err)
		}
		out = append(out, objs...)
	}
	if len(out) == 0 {
		t.Fatal("chart has no CRDs in crds/")
	}
	return out
}

// decodeYAMLDocuments splits a multi-document YAML stream and decodes each
// non-empty document into an Unstructured.
func decodeYAMLDocuments(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" {
			return nil, fmt.Errorf("document without apiVersion or kind:\n%s", doc)
		}
		out = append(out, u)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// find returns the rendered objects of one kind.
func (r rendered) find(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range r.objects {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// one returns the only object of a kind and name, failing otherwise.
func (r rendered) one(t *testing.T, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range r.find(kind) {
		if o.GetName() == name {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s %q, found %d", kind, name, len(found))
	}
	return found[0]
}

// typed converts an Unstructured into a typed API object.
func typed[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

// gatewayDeployment returns the gateway Deployment and its container.
func (r rendered) gatewayDeployment(t *testing.T) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	d := typed[appsv1.Deployment](t, r.one(t, "Deployment", releaseName))
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == "gateway" {
			return d, &d.Spec.Template.Spec.Containers[i]
		}
	}
	t.Fatalf("Deployment %s has no container named gateway", d.Name)
	return nil, nil
}

func envMap(c *corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}
