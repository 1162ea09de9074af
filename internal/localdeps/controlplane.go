package localdeps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/alertgate/gateway/api/v1alpha1"
)

// ControlPlaneOptions configure a ControlPlane.
type ControlPlaneOptions struct {
	// AssetsDir holds kube-apiserver and etcd. Default: $KUBEBUILDER_ASSETS.
	// hack/test-binaries.sh builds them and prints this directory.
	AssetsDir string
	// CRDDir holds the CRD manifests to install. Default: config/crd of
	// the module, found upwards from the working directory.
	CRDDir string
	// Output receives the processes' logs. Default: discarded.
	Output io.Writer
}

// ControlPlane is a real kube-apiserver and etcd with the
// RemediationRequest CRD established.
type ControlPlane struct {
	env     *envtest.Environment
	certDir string
	// Config is an admin client configuration.
	Config *rest.Config
	// Scheme knows the built-in types and v1alpha1.
	Scheme *runtime.Scheme
}

// ErrNoAssets means the control plane binaries were not found.
var ErrNoAssets = errors.New("localdeps: KUBEBUILDER_ASSETS is not set; run hack/test-binaries.sh and export its output")

// StartControlPlane starts etcd and kube-apiserver and installs the CRD,
// failing unless the CRD is established.
func StartControlPlane(ctx context.Context, opts ControlPlaneOptions) (*ControlPlane, error) {
	if opts.AssetsDir == "" {
		opts.AssetsDir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if opts.AssetsDir == "" {
		return nil, ErrNoAssets
	}
	if opts.CRDDir == "" {
		d, err := FindCRDDir()
		if err != nil {
			return nil, err
		}
		opts.CRDDir = d
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	// A fixed certificate directory keeps the serving and client CAs across
	// an API server restart, so clients built before it keep working.
	certDir, err := os.MkdirTemp("", "alertgate-apiserver-")
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: opts.AssetsDir,
		CRDDirectoryPaths:     []string{opts.CRDDir},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	env.ControlPlane.GetAPIServer().CertDir = certDir
	// On SIGTERM kube-apiserver waits for its watches to end, which a
	// client resumes at once; let it close them within a second, as a
	// cluster's API server does within its termination grace period.
	env.ControlPlane.GetAPIServer().Configure().Set("shutdown-watch-termination-grace-period", "1s")
	if opts.Output != nil {
		env.ControlPlane.GetAPIServer().Out, env.ControlPlane.GetAPIServer().Err = opts.Output, opts.Output
		env.ControlPlane.Etcd.Out, env.ControlPlane.Etcd.Err = opts.Output, opts.Output
	}
	cfg, err := env.Start()
	trackChildren(opts.AssetsDir)
	if err != nil {
		_ = env.Stop()
		trackChildren(opts.AssetsDir)
		_ = os.RemoveAll(certDir)
		return nil, fmt.Errorf("localdeps: start control plane: %w", err)
	}
	cp := &ControlPlane{env: env, certDir: certDir, Config: cfg, Scheme: scheme}
	if err := cp.waitCRDEstablished(ctx); err != nil {
		cp.Stop()
		return nil, err
	}
	return cp, nil
}

// waitCRDEstablished fails unless every CRD of v1alpha1 was installed and
// is established: envtest silently skips a document it cannot read.
func (cp *ControlPlane) waitCRDEstablished(ctx context.Context) error {
	c, err := client.New(cp.Config, client.Options{Scheme: cp.Scheme})
	if err != nil {
		return err
	}
	name := "remediationrequests." + v1alpha1.GroupVersion.Group
	deadline := time.Now().Add(30 * time.Second)
	for {
		var crd apiextensionsv1.CustomResourceDefinition
		err := c.Get(ctx, client.ObjectKey{Name: name}, &crd)
		if err == nil {
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("localdeps: CRD %s not established after 30s (last error: %v)", name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// APIServerAddr is host:port of the API server's secure port.
func (cp *ControlPlane) APIServerAddr() string {
	u, err := url.Parse(cp.Config.Host)
	if err != nil {
		return ""
	}
	return u.Host
}

// ConfigFor returns a copy of the admin configuration pointed at another
// address (e.g. a proxy in front of the API server); TLS still verifies the
// API server's certificate, which is issued for 127.0.0.1 and localhost.
func (cp *ControlPlane) ConfigFor(addr string) *rest.Config {
	cfg := rest.CopyConfig(cp.Config)
	cfg.Host = "https://" + addr
	return cfg
}

// StopAPIServer stops kube-apiserver; etcd and its data stay.
func (cp *ControlPlane) StopAPIServer() error {
	err := cp.env.ControlPlane.GetAPIServer().Stop()
	trackChildren(cp.env.BinaryAssetsDirectory)
	return err
}

// StartAPIServer starts kube-apiserver again, on the same port with the
// same certificates, and waits until it is healthy.
func (cp *ControlPlane) StartAPIServer() error {
	err := cp.env.ControlPlane.GetAPIServer().Start()
	trackChildren(cp.env.BinaryAssetsDirectory)
	return err
}

// WriteKubeconfig writes an admin kubeconfig to path.
func (cp *ControlPlane) WriteKubeconfig(path string) error {
	user, err := cp.env.ControlPlane.AddUser(envtest.User{Name: "alertgate-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	b, err := user.KubeConfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// Stop stops kube-apiserver and etcd and removes their files.
func (cp *ControlPlane) Stop() {
	_ = cp.env.Stop()
	trackChildren(cp.env.BinaryAssetsDirectory)
	_ = os.RemoveAll(cp.certDir)
}

// FindCRDDir returns config/crd of the module containing the working
// directory.
func FindCRDDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(dir, "config", "crd")
			if _, err := os.Stat(d); err != nil {
				return "", fmt.Errorf("localdeps: no CRD directory at %s", d)
			}
			return d, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("localdeps: go.mod not found above the working directory; set CRDDir")
		}
		dir = parent
	}
}

// trackChildren records this process's etcd and kube-apiserver children
// (envtest does not expose their PIDs) and forgets those that stopped.
func trackChildren(assets string) {
	pidMu.Lock()
	defer pidMu.Unlock()
	m := readPIDs(os.Getpid())
	for pid, exe := range m {
		if strings.HasPrefix(exe, assets) && exeOf(pid) != exe {
			delete(m, pid)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	me := fmt.Sprint(os.Getpid())
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// Fields after the ")" that ends the command name: state, ppid.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[1] != me {
			continue
		}
		var pid int
		fmt.Sscan(filepath.Base(filepath.Dir(p)), &pid)
		if exe := exeOf(pid); strings.HasPrefix(exe, assets) {
			m[pid] = exe
		}
	}
	writePIDs(os.Getpid(), m)
}
