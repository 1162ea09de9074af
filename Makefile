# alertgate gateway. `make chaos` is the main job, `make test` runs every test.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

CONTROLLER_GEN := go run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0
# The envtest control plane (kube-apiserver, etcd), built from Go modules and
# cached under ~/.cache/alertgate; the first build takes about 9 minutes.
ASSETS = $(shell ./hack/test-binaries.sh)
# A real Prometheus Alertmanager (v0.31.1), built from its Go module and
# cached there too; the first build takes 1 to 4 minutes.
ALERTMANAGER = $(shell ./hack/alertmanager.sh)

.PHONY: all build test unit test-histories chaos run generate verify-generate vet bench fuzz clean

all: build test

build:
	go build -o bin/gateway ./cmd/gateway
	go build -o bin/gateway-chaos ./cmd/gateway-chaos

## test: every test, with the race detector, against real Redis and a real API server.
test: vet
	KUBEBUILDER_ASSETS="$(ASSETS)" ALERTMANAGER_BIN="$(ALERTMANAGER)" go test -race -count=1 -timeout 20m ./...
	cd deploy/validate && KUBEBUILDER_ASSETS="$(ASSETS)" go test -count=1 -timeout 10m ./...
	go test -run '^$$' -bench . -benchtime 10x ./internal/...

## unit: the fast tests only (no control plane).
unit:
	ALERTMANAGER_BIN="$(ALERTMANAGER)" go test -race -count=1 ./internal/... ./api/...

## test-histories: hold the saved histories of real runs (chaos/model/testdata/histories) against the model again.
test-histories:
	go test -count=1 -v -run '^TestSavedHistories$$' ./chaos/model/
	go run ./cmd/gateway-chaos check chaos/model/testdata/histories/healthy-*.history.json

## chaos: run every resilience scenario and write the report to reports/.
chaos:
	KUBEBUILDER_ASSETS="$(ASSETS)" ALERTMANAGER_BIN="$(ALERTMANAGER)" go run ./cmd/gateway-chaos run --report-dir reports

## run: the gateway on local dependencies (a redis-server and a control plane).
run:
	KUBEBUILDER_ASSETS="$(ASSETS)" go run ./cmd/gateway --dev --auth=none --listen 127.0.0.1:8080

vet:
	gofmt -l . | (! grep .) || (echo "gofmt needed" && exit 1)
	go vet ./...
	cd deploy/validate && go vet ./...

generate:
	$(CONTROLLER_GEN) object paths=./api/... crd output:crd:dir=config/crd

## verify-generate: fail if the generated deepcopy code or CRD drifted from the types.
verify-generate: generate
	git diff --exit-code -- api config/crd || (echo "generated files drifted: run make generate and commit" && exit 1)

bench:
	go test -run '^$$' -bench . -benchmem ./internal/...

clean:
	rm -rf bin reports

FUZZTIME ?= 30s
## fuzz: fuzz each parser and the normalizer for FUZZTIME.
fuzz:
	go test ./internal/ingest -run '^$$' -fuzz '^FuzzPrometheus$$' -fuzztime $(FUZZTIME)
	go test ./internal/ingest -run '^$$' -fuzz '^FuzzKubernetesEvent$$' -fuzztime $(FUZZTIME)
	go test ./internal/normalize -run '^$$' -fuzz '^FuzzNormalize$$' -fuzztime $(FUZZTIME)
