# The cyrusrepl images for people with Docker/BuildKit: the same contents as
# `hack/images.sh dev` builds without Docker — static binaries (/manager, /replicator,
# /kubectl-cyrusrepl when present), no shell, user 65532:65532. Two targets differ only
# in the entrypoint: the manager (default) and the replicator the operator runs in pods.
# The agent target holds /agent alone: the master agent, a sidecar of the Cyrus pod
# (docs/agent-sidecar.md).
#
#   docker build -t cyrusrepl:dev --build-arg VERSION=$(git describe --always --dirty) .
#   docker build -t cyrusrepl-replicator:dev --target replicator .
#   docker build -t cyrusrepl-agent:dev --target agent .

FROM golang:1.26-bookworm AS build
WORKDIR /src
# dependencies first, so source edits keep this layer cached
COPY go.mod go.sum* ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS=linux
ARG TARGETARCH
RUN mkdir -p /out && \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ ./cmd/... && \
    mkdir -p /out-agent && if [ -f /out/agent ]; then mv /out/agent /out-agent/; fi

# distroless static: CA certificates, tzdata, /etc/passwd with nonroot (65532), no shell
FROM gcr.io/distroless/static-debian12:nonroot AS base
LABEL org.opencontainers.image.source="https://github.com/cyrusrepl/cyrusrepl"
COPY --from=build /out/ /
USER 65532:65532

FROM base AS replicator
LABEL org.opencontainers.image.title="cyrusrepl-replicator"
ENTRYPOINT ["/replicator"]

FROM gcr.io/distroless/static-debian12:nonroot AS agent
LABEL org.opencontainers.image.source="https://github.com/cyrusrepl/cyrusrepl"
LABEL org.opencontainers.image.title="cyrusrepl-agent"
COPY --from=build /out-agent/ /
USER 65532:65532
ENTRYPOINT ["/agent"]

FROM base AS manager
LABEL org.opencontainers.image.title="cyrusrepl"
ENTRYPOINT ["/manager"]
