package validate

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

func init() { logf.SetLogger(logr.Discard()) }

// builtinKinds are the kinds the envtest API server serves itself.
var builtinKinds = []string{
	"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Deployment", "Namespace",
	"NetworkPolicy", "PodDisruptionBudget", "Role", "RoleBinding", "Secret", "Service", "ServiceAccount",
}

// crdBackedKinds are the chart's kinds from other projects' CRDs. The test
// installs a minimal CRD for each (a structural schema that accepts any
// spec), so the objects still go through the API server's admission,
// defaulting and metadata validation; their specs are checked by the
// TestChartServiceMonitor assertions instead.
var crdBackedKinds = map[string]*apiextensionsv1.CustomResourceDefinition{
	"ServiceMonitor": minimalCRD("monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors"),
}

func minimalCRD(group, version, kind, plural string) *apiextensionsv1.CustomResourceDefinition {
	preserve := true
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: kind, ListKind: kind + "List", Plural: plural},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: version, Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", XPreserveUnknownFields: &preserve},
					},
				}},
			}},
		},
	}
}

// startAPIServer starts kube-apiserver and etcd from KUBEBUILDER_ASSETS,
// with the minimal CRDs installed. The caller must defer the returned stop.
func startAPIServer(t *testing.T) (client.Client, func()) {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set; run: KUBEBUILDER_ASSETS=$(../../hack/test-binaries.sh) go test ./...")
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, k := range sortedKeys(crdBackedKinds) {
		crds = append(crds, crdBackedKinds[k])
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDs:                     crds,
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  20 * time.Second,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	stop := func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		stop()
		t.Fatal(err)
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		stop()
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	return c, stop
}

// TestChartServerSideDryRun sends the chart's CRD and every rendered object
// of every case to a real API server as a server-side dry run with strict
// field validation, then installs the RBAC of two cases for real and asks
// the API server what the gateway's ServiceAccount may do.
func TestChartServerSideDryRun(t *testing.T) {
	c, stop := startAPIServer(t)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	dryRun := []client.CreateOption{client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict), client.FieldOwner("validate")}

	t.Run("crds", func(t *testing.T) {
		for _, crd := range chartCRDs(t) {
			if err := c.Create(ctx, crd, dryRun...); err != nil {
				t.Errorf("CRD %s: %v", crd.GetName(), err)
			}
		}
	})

	for _, rc := range renderCases {
		t.Run(rc.name, func(t *testing.T) {
			r := rc.render(t)
			createNamespaces(ctx, t, c, r.objects)
			for _, o := range r.objects {
				kind := o.GetKind()
				if !slices.Contains(builtinKinds, kind) && crdBackedKinds[kind] == nil {
					t.Errorf("%s %s: kind unknown to this test; add it to builtinKinds or crdBackedKinds", kind, o.GetName())
					continue
				}
				if err := c.Create(ctx, o.DeepCopy(), dryRun...); err != nil {
					t.Errorf("%s %s/%s rejected: %v", kind, o.GetNamespace(), o.GetName(), err)
				}
			}
		})
	}

	t.Run("rbac", func(t *testing.T) {
		sa := "system:serviceaccount:" + releaseNamespace + ":" + releaseName
		type check struct {
			verb, group, resource, sub, ns string
			allowed                        bool
		}
		const rr, g = "remediationrequests", "remediation.alertgate.io"
		// The static case runs first, on an API server without any of the
		// chart's RBAC, so its denials are real. The RBAC authorizer reads
		// from informers: allowed checks are polled until they pass, and
		// denials are checked after that.
		cases := []struct {
			name   string
			checks []check
		}{
			{"sentinel-tls-auth", []check{ // auth.mode=static, RemediationRequests in "remediation"
				{"create", g, rr, "", "remediation", true},
				{"patch", g, rr, "status", "remediation", true},
				{"create", g, rr, "", releaseNamespace, false},
				{"create", "authentication.k8s.io", "tokenreviews", "", "", false},
			}},
			{"default", []check{ // auth.mode=kubernetes, RemediationRequests in the release namespace
				{"create", g, rr, "", releaseNamespace, true},
				{"get", g, rr, "", releaseNamespace, true},
				{"list", g, rr, "", releaseNamespace, true},
				{"watch", g, rr, "", releaseNamespace, true},
				{"get", g, rr, "status", releaseNamespace, true},
				{"update", g, rr, "status", releaseNamespace, true},
				{"patch", g, rr, "status", releaseNamespace, true},
				{"create", "authentication.k8s.io", "tokenreviews", "", "", true},
				{"create", "authorization.k8s.io", "subjectaccessreviews", "", "", true},
				{"update", g, rr, "", releaseNamespace, false},
				{"patch", g, rr, "", releaseNamespace, false},
				{"delete", g, rr, "", releaseNamespace, false},
				{"watch", g, rr, "", "kube-system", false},
				{"create", g, rr, "", "kube-system", false},
				{"get", "", "secrets", "", releaseNamespace, false},
				{"create", "", "pods", "", releaseNamespace, false},
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := caseByName(t, tc.name).render(t)
				createNamespaces(ctx, t, c, r.objects)
				for _, o := range r.objects {
					switch o.GetKind() {
					case "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ServiceAccount":
						// Both cases share the ServiceAccount.
						if err := c.Create(ctx, o.DeepCopy()); err != nil && !(o.GetKind() == "ServiceAccount" && apierrors.IsAlreadyExists(err)) {
							t.Fatalf("create %s %s: %v", o.GetKind(), o.GetName(), err)
						}
					}
				}
				allowed := func(ck check) (bool, string) {
					sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
						User:   sa,
						Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNamespace, "system:authenticated"},
						ResourceAttributes: &authorizationv1.ResourceAttributes{
							Verb: ck.verb, Group: ck.group, Resource: ck.resource, Subresource: ck.sub, Namespace: ck.ns,
						},
					}}
					if err := c.Create(ctx, sar); err != nil {
						t.Fatalf("SubjectAccessReview: %v", err)
					}
					return sar.Status.Allowed, sar.Status.Reason
				}
				for _, ck := range tc.checks {
					if !ck.allowed {
						continue
					}
					deadline := time.Now().Add(10 * time.Second)
					for {
						ok, reason := allowed(ck)
						if ok {
							break
						}
						if time.Now().After(deadline) {
							t.Errorf("%s may not %s %s/%s in %q, want allowed (%s)", sa, ck.verb, ck.resource, ck.sub, ck.ns, reason)
							break
						}
						time.Sleep(100 * time.Millisecond)
					}
				}
				for _, ck := range tc.checks {
					if ck.allowed {
						continue
					}
					if ok, reason := allowed(ck); ok {
						t.Errorf("%s may %s %s/%s in %q, want denied (%s)", sa, ck.verb, ck.resource, ck.sub, ck.ns, reason)
					}
				}
			})
		}
	})
}

// createNamespaces creates (for real) every namespace the objects live in.
func createNamespaces(ctx context.Context, t *testing.T, c client.Client, objs []*unstructured.Unstructured) {
	t.Helper()
	seen := map[string]bool{releaseNamespace: true}
	for _, o := range objs {
		if ns := o.GetNamespace(); ns != "" {
			seen[ns] = true
		}
	}
	for _, ns := range sortedKeys(seen) {
		err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
	}
}
