package validate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	gw "github.com/chaos-mesh/chaos-mesh/api/genericwebhook"
	chaosv1alpha1 "github.com/chaos-mesh/chaos-mesh/api/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"
)

// chaosObject is what every Chaos Mesh kind used here offers: the
// admission webhook's defaulting and validation.
type chaosObject interface {
	runtime.Object
	metav1.Object
	Default(context.Context, runtime.Object) error
	ValidateCreate(context.Context, runtime.Object) (admission.Warnings, error)
}

// chaosKinds maps the kinds allowed in deploy/chaos-mesh to their types.
var chaosKinds = map[string]func() chaosObject{
	"NetworkChaos": func() chaosObject { return &chaosv1alpha1.NetworkChaos{} },
	"PodChaos":     func() chaosObject { return &chaosv1alpha1.PodChaos{} },
	"StressChaos":  func() chaosObject { return &chaosv1alpha1.StressChaos{} },
	"Workflow":     func() chaosObject { return &chaosv1alpha1.Workflow{} },
}

// The eight scenarios and the kinds of the objects each file holds, in
// the order the Workflow runs them.
var chaosFiles = []struct {
	file  string
	kinds []string
}{
	{"01-redis-packet-loss.yaml", []string{"NetworkChaos"}},
	{"02-redis-partition.yaml", []string{"NetworkChaos"}},
	{"03-kube-api-partition.yaml", []string{"NetworkChaos"}},
	{"04-cascading-partition.yaml", []string{"NetworkChaos", "NetworkChaos"}},
	{"05-dependency-delay.yaml", []string{"NetworkChaos", "NetworkChaos"}},
	{"06-redis-memory-pressure.yaml", []string{"StressChaos"}},
	{"07-redis-pod-kill.yaml", []string{"PodChaos"}},
	{"08-gateway-pod-kill.yaml", []string{"PodChaos"}},
}

const workflowFile = "workflow.yaml"

// decodeChaosFile strictly decodes every document of a file into its Chaos
// Mesh type: unknown or duplicate fields fail.
func decodeChaosFile(t *testing.T, name string) []chaosObject {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chaosDir, name))
	if err != nil {
		t.Fatal(err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []chaosObject
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s #%d: %v", name, i, err)
		}
		if tm.APIVersion == "" && tm.Kind == "" {
			continue // comments only
		}
		if tm.APIVersion != chaosv1alpha1.SchemeGroupVersion.String() {
			t.Fatalf("%s #%d: apiVersion %q, want %s", name, i, tm.APIVersion, chaosv1alpha1.SchemeGroupVersion)
		}
		newObj, ok := chaosKinds[tm.Kind]
		if !ok {
			t.Fatalf("%s #%d: kind %q is not one of %v", name, i, tm.Kind, sortedKeys(chaosKinds))
		}
		obj := newObj()
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("%s #%d (%s): strict decode: %v", name, i, tm.Kind, err)
		}
		out = append(out, obj)
	}
}

// admit runs what the Chaos Mesh admission webhooks do on create:
// defaulting, then validation. It returns the defaulted copy.
func admit(t *testing.T, file string, obj chaosObject) chaosObject {
	t.Helper()
	o := obj.DeepCopyObject().(chaosObject)
	ctx := context.Background()
	if err := o.Default(ctx, o); err != nil {
		t.Errorf("%s %s: default: %v", file, o.GetName(), err)
	}
	warnings, err := o.ValidateCreate(ctx, o)
	if err != nil {
		t.Errorf("%s %s: validation failed: %v", file, o.GetName(), err)
	}
	for _, w := range warnings {
		t.Errorf("%s %s: validation warning: %s", file, o.GetName(), w)
	}
	return o
}

func TestChaosMeshManifestsDecodeAndValidate(t *testing.T) {
	entries, err := os.ReadDir(chaosDir)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{workflowFile: true, "README.md": true}
	for _, f := range chaosFiles {
		listed[f.file] = true
	}
	for _, e := range entries {
		if !listed[e.Name()] {
			t.Errorf("%s is not covered by this test; add it to chaosFiles", e.Name())
		}
	}
	for _, f := range chaosFiles {
		t.Run(f.file, func(t *testing.T) {
			objs := decodeChaosFile(t, f.file)
			var kinds []string
			for _, o := range objs {
				kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
				admitted := admit(t, f.file, o)
				checkChaosSpec(t, f.file, admitted)
				if o.GetNamespace() != releaseNamespace {
					t.Errorf("%s: namespace %q, want %q", o.GetName(), o.GetNamespace(), releaseNamespace)
				}
			}
			if !slices.Equal(kinds, f.kinds) {
				t.Errorf("kinds = %v, want %v", kinds, f.kinds)
			}
		})
	}
}

// checkChaosSpec checks what the webhooks leave to the CRD's enums, and
// that standalone experiments end by themselves.
func checkChaosSpec(t *testing.T, file string, obj chaosObject) {
	t.Helper()
	switch o := obj.(type) {
	case *chaosv1alpha1.NetworkChaos:
		checkNetworkChaos(t, o.Name, &o.Spec)
		if o.Spec.Duration == nil {
			t.Errorf("%s %s: a standalone NetworkChaos needs a duration", file, o.Name)
		}
	case *chaosv1alpha1.StressChaos:
		checkSelector(t, o.Name, &o.Spec.PodSelector)
		if o.Spec.Stressors == nil || o.Spec.Stressors.MemoryStressor == nil {
			t.Errorf("%s: want a memory stressor", o.Name)
		}
		if o.Spec.Duration == nil {
			t.Errorf("%s %s: a standalone StressChaos needs a duration", file, o.Name)
		}
	case *chaosv1alpha1.PodChaos:
		checkSelector(t, o.Name, &o.Spec.PodSelector)
		if o.Spec.Action != chaosv1alpha1.PodKillAction {
			t.Errorf("%s: action %q, want pod-kill", o.Name, o.Spec.Action)
		}
		if o.Spec.Mode != chaosv1alpha1.OneMode {
			t.Errorf("%s: mode %q, want one (kill one replica at a time)", o.Name, o.Spec.Mode)
		}
	default:
		t.Errorf("%s: unexpected %T", file, obj)
	}
}

func checkNetworkChaos(t *testing.T, name string, s *chaosv1alpha1.NetworkChaosSpec) {
	t.Helper()
	actions := []chaosv1alpha1.NetworkChaosAction{chaosv1alpha1.NetemAction, chaosv1alpha1.DelayAction, chaosv1alpha1.LossAction,
		chaosv1alpha1.DuplicateAction, chaosv1alpha1.CorruptAction, chaosv1alpha1.PartitionAction, chaosv1alpha1.BandwidthAction}
	if !slices.Contains(actions, s.Action) {
		t.Errorf("%s: action %q is not one of %v", name, s.Action, actions)
	}
	if !slices.Contains([]chaosv1alpha1.Direction{chaosv1alpha1.To, chaosv1alpha1.From, chaosv1alpha1.Both}, s.Direction) {
		t.Errorf("%s: direction %q", name, s.Direction)
	}
	checkSelector(t, name, &s.PodSelector)
	if s.Target == nil && len(s.ExternalTargets) == 0 {
		t.Errorf("%s: needs a target (Redis pods) or externalTargets (API server)", name)
	}
	if s.Target != nil {
		checkSelector(t, name+" target", s.Target)
	}
	switch s.Action {
	case chaosv1alpha1.LossAction:
		if s.Loss == nil {
			t.Errorf("%s: action loss without loss parameters", name)
		}
	case chaosv1alpha1.DelayAction:
		if s.Delay == nil {
			t.Errorf("%s: action delay without delay parameters", name)
		} else if d, err := time.ParseDuration(s.Delay.Latency); err != nil || d != 10*time.Second {
			t.Errorf("%s: latency %q, want 10s", name, s.Delay.Latency)
		}
	}
}

func checkSelector(t *testing.T, name string, p *chaosv1alpha1.PodSelector) {
	t.Helper()
	modes := []chaosv1alpha1.SelectorMode{chaosv1alpha1.OneMode, chaosv1alpha1.AllMode, chaosv1alpha1.FixedMode,
		chaosv1alpha1.FixedPercentMode, chaosv1alpha1.RandomMaxPercentMode}
	if !slices.Contains(modes, p.Mode) {
		t.Errorf("%s: mode %q is not one of %v", name, p.Mode, modes)
	}
	if !slices.Equal(p.Selector.Namespaces, []string{releaseNamespace}) {
		t.Errorf("%s: selector namespaces %v, want [%s]", name, p.Selector.Namespaces, releaseNamespace)
	}
	if len(p.Selector.LabelSelectors) == 0 {
		t.Errorf("%s: no labelSelectors: it would select every pod in the namespace", name)
	}
}

// TestChaosMeshWorkflow validates the Workflow and checks that it runs
// exactly the standalone experiments, in file order, each followed by a
// readiness status check, with the same specs.
func TestChaosMeshWorkflow(t *testing.T) {
	objs := decodeChaosFile(t, workflowFile)
	if len(objs) != 1 {
		t.Fatalf("%s: want one Workflow, got %d objects", workflowFile, len(objs))
	}
	wf, ok := admit(t, workflowFile, objs[0]).(*chaosv1alpha1.Workflow)
	if !ok {
		t.Fatalf("%s holds a %T, want a Workflow", workflowFile, objs[0])
	}
	templates := map[string]chaosv1alpha1.Template{}
	for _, tpl := range wf.Spec.Templates {
		if _, dup := templates[tpl.Name]; dup {
			t.Errorf("template %q defined twice", tpl.Name)
		}
		templates[tpl.Name] = tpl
	}

	// Every reference resolves, and every template is reachable from entry.
	reached := map[string]bool{}
	var walk func(name, from string)
	walk = func(name, from string) {
		tpl, ok := templates[name]
		if !ok {
			t.Errorf("%s references template %q, which does not exist", from, name)
			return
		}
		if reached[name] {
			return
		}
		reached[name] = true
		for _, c := range tpl.Children {
			walk(c, name)
		}
		for _, b := range tpl.ConditionalBranches {
			walk(b.Target, name)
		}
	}
	walk(wf.Spec.Entry, "spec.entry")
	for name := range templates {
		if !reached[name] {
			t.Errorf("template %q is never run", name)
		}
	}

	// Status checks: HTTP GET /readyz on the gateway Service, validated by
	// the Chaos Mesh webhook rules for StatusCheckSpec.
	svcURL := gatewayServiceURL(t) + "/readyz"
	for _, tpl := range wf.Spec.Templates {
		if tpl.Type != chaosv1alpha1.TypeStatusCheck {
			continue
		}
		sc := tpl.StatusCheck
		if sc == nil {
			t.Errorf("status check %s has no statusCheck", tpl.Name)
			continue
		}
		gw.Default(sc)
		if errs := gw.Validate(sc); len(errs) > 0 {
			t.Errorf("status check %s: %v", tpl.Name, errs.ToAggregate())
		}
		if sc.HTTPStatusCheck == nil || sc.HTTPStatusCheck.RequestUrl != svcURL || sc.HTTPStatusCheck.Criteria.StatusCode != "200" {
			t.Errorf("status check %s = %+v, want GET %s answering 200", tpl.Name, sc.HTTPStatusCheck, svcURL)
		}
		if !tpl.AbortWithStatusCheck {
			t.Errorf("status check %s does not abort the workflow when the gateway does not recover", tpl.Name)
		}
		if tpl.Deadline == nil {
			t.Errorf("status check %s has no deadline", tpl.Name)
		}
	}

	// The entry runs: ready-before, then per scenario its fault and a
	// recovery check.
	entry := templates[wf.Spec.Entry]
	if entry.Type != chaosv1alpha1.TypeSerial {
		t.Fatalf("entry %q is %s, want Serial", entry.Name, entry.Type)
	}
	var faults []string
	for i, c := range entry.Children {
		isCheck := templates[c].Type == chaosv1alpha1.TypeStatusCheck
		if (i%2 == 0) != isCheck {
			t.Errorf("entry child %d (%s): want faults and status checks to alternate, starting with a check", i, c)
		}
		if !isCheck {
			faults = append(faults, c)
		}
	}
	if last := entry.Children[len(entry.Children)-1]; templates[last].Type != chaosv1alpha1.TypeStatusCheck {
		t.Errorf("the workflow ends with %s, want a recovery status check", last)
	}

	// Standalone experiments, by name, in file order.
	// Both sides are compared after the webhook's defaulting.
	standalone := map[string]chaosObject{}
	fileOf := map[string]string{}
	var scenarioOrder [][]string
	for _, f := range chaosFiles {
		var names []string
		for _, o := range decodeChaosFile(t, f.file) {
			standalone[o.GetName()] = admit(t, f.file, o)
			fileOf[o.GetName()] = f.file
			names = append(names, o.GetName())
		}
		scenarioOrder = append(scenarioOrder, names)
	}
	if len(faults) != len(scenarioOrder) {
		t.Fatalf("workflow runs %d faults (%v), want %d scenarios", len(faults), faults, len(scenarioOrder))
	}
	for i, f := range faults {
		tpl := templates[f]
		var leaves []string
		if tpl.Type == chaosv1alpha1.TypeParallel {
			leaves = tpl.Children
		} else {
			leaves = []string{f}
		}
		if !slices.Equal(leaves, scenarioOrder[i]) {
			t.Errorf("fault %d runs %v, want %v (%s)", i+1, leaves, scenarioOrder[i], chaosFiles[i].file)
		}
	}

	// Every chaos template carries its standalone spec, less the duration
	// (a workflow bounds a fault by its deadline, which must equal it).
	used := map[string]bool{}
	for _, tpl := range wf.Spec.Templates {
		if !chaosv1alpha1.IsChaosTemplateType(tpl.Type) {
			continue
		}
		used[tpl.Name] = true
		sa, ok := standalone[tpl.Name]
		if !ok {
			t.Errorf("workflow template %s has no standalone experiment of that name", tpl.Name)
			continue
		}
		if kind := sa.GetObjectKind().GroupVersionKind().Kind; string(tpl.Type) != kind {
			t.Errorf("template %s is %s, standalone is %s", tpl.Name, tpl.Type, kind)
			continue
		}
		if tpl.Deadline == nil {
			t.Errorf("template %s has no deadline", tpl.Name)
		}
		got := reflect.ValueOf(tpl.EmbedChaos).Elem().FieldByName(string(tpl.Type)).Interface()
		want, duration := specWithoutDuration(t, sa)
		if !equalJSON(t, got, want) {
			t.Errorf("template %s differs from its standalone spec in %s", tpl.Name, fileOf[tpl.Name])
		}
		if duration != nil && (tpl.Deadline == nil || *tpl.Deadline != *duration) {
			t.Errorf("template %s deadline %v, want the standalone duration %s", tpl.Name, deref(tpl.Deadline), *duration)
		}
	}
	for name := range standalone {
		if !used[name] {
			t.Errorf("standalone experiment %s is not in the workflow", name)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// specWithoutDuration returns a copy of a standalone experiment's spec
// with Duration cleared, and the duration.
func specWithoutDuration(t *testing.T, o chaosObject) (any, *string) {
	t.Helper()
	switch v := o.DeepCopyObject().(type) {
	case *chaosv1alpha1.NetworkChaos:
		d := v.Spec.Duration
		v.Spec.Duration = nil
		return &v.Spec, d
	case *chaosv1alpha1.PodChaos:
		d := v.Spec.Duration
		v.Spec.Duration = nil
		return &v.Spec, d
	case *chaosv1alpha1.StressChaos:
		d := v.Spec.Duration
		v.Spec.Duration = nil
		return &v.Spec, d
	}
	t.Fatalf("unexpected %T", o)
	return nil, nil
}

// gatewayServiceURL is the in-cluster URL of the chart's Service with
// default values, as the status checks must use it.
func gatewayServiceURL(t *testing.T) string {
	t.Helper()
	r := caseByName(t, "default").render(t)
	svc := typed[corev1.Service](t, r.one(t, "Service", releaseName))
	u := url.URL{Scheme: "http", Host: fmt.Sprintf("%s.%s.svc:%d", svc.Name, svc.Namespace, svc.Spec.Ports[0].Port)}
	return u.String()
}

// TestChaosMeshSelectorsMatchChart checks that every pod selector in the
// experiments selects the pods of exactly one Deployment the chart renders
// (with the bundled Redis), so renaming a label breaks this test rather
// than silently turning an experiment into a no-op.
func TestChaosMeshSelectorsMatchChart(t *testing.T) {
	r := caseByName(t, "bundled-redis-static-tokens").render(t)
	var pods []map[string]string
	var names []string
	for _, d := range r.find("Deployment") {
		dep := typed[appsv1.Deployment](t, d)
		pods = append(pods, dep.Spec.Template.Labels)
		names = append(names, dep.Name)
	}
	check := func(where string, sel chaosv1alpha1.PodSelectorSpec, want string) {
		t.Helper()
		ls := labels.SelectorFromSet(sel.LabelSelectors)
		var matched []string
		for i, p := range pods {
			if ls.Matches(labels.Set(p)) {
				matched = append(matched, names[i])
			}
		}
		if !slices.Equal(matched, []string{want}) {
			t.Errorf("%s: selector %v matches %v, want [%s]", where, sel.LabelSelectors, matched, want)
		}
	}
	gatewayName, redisName := releaseName, releaseName+"-redis"
	for _, f := range chaosFiles {
		for _, o := range decodeChaosFile(t, f.file) {
			where := f.file + " " + o.GetName()
			switch v := o.(type) {
			case *chaosv1alpha1.NetworkChaos:
				check(where+" selector", v.Spec.Selector, gatewayName)
				if v.Spec.Target != nil {
					check(where+" target", v.Spec.Target.Selector, redisName)
				}
			case *chaosv1alpha1.StressChaos:
				check(where, v.Spec.Selector, redisName)
			case *chaosv1alpha1.PodChaos:
				want := redisName
				if strings.Contains(o.GetName(), "gateway") {
					want = gatewayName
				}
				check(where, v.Spec.Selector, want)
			}
		}
	}
}
