#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver and etcd) from Go modules,
# because setup-envtest's download site is not reachable here. The binaries
# are cached outside the clone, keyed by version, so a second run takes a
# second. Prints the directory to use as KUBEBUILDER_ASSETS on stdout;
# progress goes to stderr.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.7.3}"
CACHE_ROOT="${GATEWAY_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/alertgate}"
ASSETS="$CACHE_ROOT/envtest/k8s-v${K8S_VERSION}-etcd-v${ETCD_VERSION}"
STAGING_VERSION="v0.${K8S_VERSION#1.}"

log() { echo "test-binaries: $*" >&2; }

have() {
  [ -x "$ASSETS/kube-apiserver" ] && [ -x "$ASSETS/etcd" ] &&
    "$ASSETS/kube-apiserver" --version 2>/dev/null | grep -q "v${K8S_VERSION}" &&
    "$ASSETS/etcd" --version 2>/dev/null | grep -q "${ETCD_VERSION}"
}

if have; then
  echo "$ASSETS"
  exit 0
fi

mkdir -p "$ASSETS"
work="$CACHE_ROOT/build"
mkdir -p "$work"
# Serialise concurrent builds (two test packages may ask at once).
exec 9>"$CACHE_ROOT/build.lock"
flock 9
if have; then echo "$ASSETS"; exit 0; fi

export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

build_apiserver() {
  local dir="$work/kube-apiserver-v${K8S_VERSION}"
  mkdir -p "$dir"
  cd "$dir"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module local/kube-apiserver-build"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes v${K8S_VERSION}"
    echo
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces
    # them with local paths, which do not apply to a dependent module.
    grep -E '^\s*k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$gomod" | awk -v v="$STAGING_VERSION" '{print "replace " $1 " => " $1 " " v}'
  } >go.mod
  cat >tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver/app"
GO
  log "resolving kube-apiserver v${K8S_VERSION} dependencies"
  go mod tidy -e >&2 2>/dev/null || true
  go get "k8s.io/kubernetes/cmd/kube-apiserver@v${K8S_VERSION}" >&2
  log "building kube-apiserver v${K8S_VERSION} (cold: ~9 min, ~3 GB RAM)"
  go build -trimpath -o "$ASSETS/kube-apiserver" \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${K8S_VERSION#1.} -X k8s.io/component-base/version.gitTreeState=clean" \
    k8s.io/kubernetes/cmd/kube-apiserver >&2
}

build_etcd() {
  local dir="$work/etcd-v${ETCD_VERSION}"
  mkdir -p "$dir"
  cd "$dir"
  cat >go.mod <<GOMOD
module local/etcd-build

go 1.26

require go.etcd.io/etcd/server/v3 v${ETCD_VERSION}

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 v${ETCD_VERSION}
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 v${ETCD_VERSION}
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 v${ETCD_VERSION}
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 v${ETCD_VERSION}
)
GOMOD
  log "resolving etcd v${ETCD_VERSION} dependencies"
  go get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}" >&2
  log "building etcd v${ETCD_VERSION}"
  go build -trimpath -o "$ASSETS/etcd" -ldflags "-s -w" go.etcd.io/etcd/server/v3 >&2
}

start=$(date +%s)
[ -x "$ASSETS/etcd" ] && "$ASSETS/etcd" --version 2>/dev/null | grep -q "${ETCD_VERSION}" || build_etcd
[ -x "$ASSETS/kube-apiserver" ] && "$ASSETS/kube-apiserver" --version 2>/dev/null | grep -q "v${K8S_VERSION}" || build_apiserver
have || { log "built binaries do not report the expected versions"; exit 1; }
log "done in $(( $(date +%s) - start ))s"
echo "$ASSETS"
