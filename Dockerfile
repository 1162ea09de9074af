# syntax=docker/dockerfile:1
#
# Builds the gateway as a static binary and ships it on distroless/static
# (no shell, no package manager). The gateway writes nothing to disk, so the
# container runs with a read-only root filesystem.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t alertgate/gateway:dev .
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=v0.1.0 -t alertgate/gateway:v0.1.0 .

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG VERSION=dev
ARG TARGETOS=linux
ARG TARGETARCH=amd64
WORKDIR /src
# Dependencies first, so a source change keeps the module cache layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/gateway ./cmd/gateway

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="alertgate-gateway" \
      org.opencontainers.image.description="Resilient alert-ingestion gateway: Alertmanager webhooks and Kubernetes Events to RemediationRequests" \
      org.opencontainers.image.source="https://github.com/alertgate/gateway" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/gateway /gateway
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/gateway"]
