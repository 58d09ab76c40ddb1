# cma-operator image: a static (musl) release binary on Red Hat's minimal UBI base, running as a numeric
# non-root user so `runAsNonRoot` can be verified and OpenShift's restricted-v2 SCC may assign its own UID.
# Build from the repository root (multi-arch: docker buildx build --platform linux/amd64,linux/arm64 .):
#   docker build -t ghcr.io/cma-operator/cma-operator:0.1.0 .
# Each platform builds natively (under emulation when needed): the Rust target follows `uname -m`.

# The toolchain CI tests with.
FROM docker.io/library/rust:1.95-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN target="$(uname -m)-unknown-linux-musl" \
 && rustup target add "$target" \
 && cargo build --release --locked -p cma-operator --target "$target" \
 && install -D -m 0755 "target/$target/release/cma-operator" /out/cma-operator

FROM registry.access.redhat.com/ubi9/ubi-micro:9.6
LABEL name="cma-operator" \
      vendor="cma-operator project" \
      version="0.1.0" \
      release="1" \
      summary="Custom Metrics Autoscaler operator: installs and keeps KEDA running" \
      description="Installs, configures, heals and upgrades KEDA (Kubernetes Event-driven Autoscaling) from one KedaController resource." \
      maintainer="cma-operator maintainers <maintainers@cma-operator.dev>" \
      io.k8s.display-name="cma-operator" \
      io.k8s.description="Installs, configures, heals and upgrades KEDA from one KedaController resource." \
      io.openshift.tags="keda,autoscaling,operator" \
      org.opencontainers.image.title="cma-operator" \
      org.opencontainers.image.source="https://github.com/cma-operator/cma-operator" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/cma-operator /usr/local/bin/cma-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/cma-operator"]
