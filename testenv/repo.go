package testenv

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/alertgate/gateway/internal/localdeps"
)

// Root is the repository's root directory, found upwards from the working
// directory. It is where localdeps finds the CRD (config/crd), so the
// commands, the tests and the control plane agree on one repository.
func Root() (string, error) {
	crd, err := localdeps.FindCRDDir()
	if err != nil {
		return "", fmt.Errorf("testenv: repository not found: %w", err)
	}
	return filepath.Dir(filepath.Dir(crd)), nil
}

// Assets returns the directory of the control plane binaries (kube-apiserver
// and etcd): $KUBEBUILDER_ASSETS, or else what the repository's
// hack/test-binaries.sh prints, which builds them the first time (about 9
// minutes) and reports its progress to log.
func Assets(log io.Writer) (string, error) {
	if a := os.Getenv("KUBEBUILDER_ASSETS"); a != "" {
		return a, nil
	}
	root, err := Root()
	if err != nil {
		return "", fmt.Errorf("testenv: KUBEBUILDER_ASSETS is not set: %w", err)
	}
	script := filepath.Join(root, "hack", "test-binaries.sh")
	fmt.Fprintf(log, "KUBEBUILDER_ASSETS is not set: %s (the first build takes about 9 minutes)\n", script)
	cmd := exec.Command(script)
	cmd.Dir = root
	cmd.Stderr = log
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("testenv: %s: %w", script, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// BuildGateway builds the repository's ./cmd/gateway into dir and returns
// the binary's path; the go tool's output goes to log.
func BuildGateway(dir string, log io.Writer) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "gateway")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/gateway")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("testenv: build ./cmd/gateway: %w", err)
	}
	return bin, nil
}

var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// GatewayBinary builds ./cmd/gateway once per process (into a temporary
// directory that RemoveGatewayBinary removes) and returns its path.
func GatewayBinary() (string, error) {
	built.once.Do(func() {
		var err error
		if built.dir, err = os.MkdirTemp("", "alertgate-bin-"); err != nil {
			built.err = err
			return
		}
		var out bytes.Buffer
		if built.bin, err = BuildGateway(built.dir, &out); err != nil {
			built.err = fmt.Errorf("%v\n%s", err, out.String())
		}
	})
	return built.bin, built.err
}

// RemoveGatewayBinary removes what GatewayBinary built.
func RemoveGatewayBinary() {
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
}
