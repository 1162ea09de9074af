#!/usr/bin/env bash
# Builds a real Prometheus Alertmanager from its Go module, because release
# downloads are not reachable here; the chaos suite uses it as the sender of
# webhooks. v0.31.1 is the newest release whose module builds: later
# modules lack the UI assets. The gateway's go.mod uses a newer alertmanager
# only as a library; this build does not touch it. The binary is cached
# outside the clone, keyed by version, so a second run takes well under a
# second. Prints the binary's path on stdout; progress goes to stderr.
set -euo pipefail

AM_VERSION="${AM_VERSION:-0.31.1}"
CACHE_ROOT="${GATEWAY_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/alertgate}"
DIR="$CACHE_ROOT/alertmanager/v${AM_VERSION}"
BIN="$DIR/alertmanager"
PKG="github.com/prometheus/alertmanager/cmd/alertmanager"

log() { echo "alertmanager: $*" >&2; }

have() {
  [ -x "$BIN" ] && "$BIN" --version 2>&1 | grep -q "version ${AM_VERSION} "
}

if have; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$DIR"
# Serialise concurrent builds. Its own lock, not test-binaries.sh's, so it
# does not wait behind a 9-minute kube-apiserver build.
exec 9>"$CACHE_ROOT/alertmanager/build.lock"
flock 9
if have; then echo "$BIN"; exit 0; fi

# Outside any module or workspace, so the clone's go.mod (which requires a
# different alertmanager) cannot interfere; the module's own go.mod and
# go.sum decide the dependencies.
export GOFLAGS="-buildvcs=false"
export GOWORK=off
export CGO_ENABLED=0
tmp=$(mktemp -d "$DIR/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

start=$(date +%s)
log "building $PKG@v${AM_VERSION} (cold: 1 to 4 minutes, ~0.5 GB RAM)"
# prometheus/common/version is set by the release tooling through ldflags;
# without them --version reports an empty version.
V=github.com/prometheus/common/version
GOBIN="$tmp" go install -trimpath \
  -ldflags "-s -w -X $V.Version=${AM_VERSION} -X $V.Revision=v${AM_VERSION} -X $V.Branch=module -X $V.BuildUser=hack/alertmanager.sh" \
  "$PKG@v${AM_VERSION}" >&2
# Rename into place so a reader never sees a half-written binary.
mv "$tmp/alertmanager" "$BIN"
have || { log "built binary does not report version ${AM_VERSION}: $("$BIN" --version 2>&1 | head -1)"; exit 1; }
log "done in $(( $(date +%s) - start ))s"
echo "$BIN"
