# cma-operator image, which is also the must-gather image: static (musl) release binaries on Red Hat's UBI 9
# minimal base, running as a numeric non-root user so `runAsNonRoot` can be verified and OpenShift's
# restricted-v2 SCC may assign its own UID.
# Build from the repository root (multi-arch: docker buildx build --platform linux/amd64,linux/arm64 .):
#   docker build -t ghcr.io/cma-operator/cma-operator:0.1.0 .
# Each platform builds natively (under emulation when needed): the Rust target follows `uname -m`.
#
# Why one image serves both purposes: the product documentation finds the must-gather image as the CSV's
# `containerImage`, which is this image, and `oc adm must-gather --image=<it>` then runs
#   /bin/bash -c '<disk usage watcher using df, awk, sed, sleep> & /usr/bin/gather; sync'
# in a "gather" container and `/bin/bash -c 'sleep infinity'` in a "copy" container, and copies /must-gather
# out of the copy container with rsync or, when the image has no rsync, with tar. So the image carries:
#   /usr/bin/gather           the must-gather entry point (must-gather/gather)
#   /usr/bin/cma-must-gather  the collector it runs
#   bash, coreutils           from UBI minimal (a distroless/scratch/ubi-micro base has no package manager to
#                             add tar, and no awk)
#   tar, gawk, sed            installed below: tar for the copy, gawk and sed for oc's disk usage watcher
# Nothing else is writable or needed: the operator runs with a read-only root filesystem, and /must-gather is
# the emptyDir that `oc adm must-gather` mounts there. The CSV's `operators.openshift.io/must-gather-image`
# annotation names this image too (crates/bundle generates it), so there is no separate must-gather image.

# The toolchain CI tests with.
FROM docker.io/library/rust:1.95-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN target="$(uname -m)-unknown-linux-musl" \
 && rustup target add "$target" \
 && cargo build --release --locked -p cma-operator --bin cma-operator -p cma-must-gather --bin cma-must-gather --target "$target" \
 && install -D -m 0755 "target/$target/release/cma-operator" /out/cma-operator \
 && install -D -m 0755 "target/$target/release/cma-must-gather" /out/cma-must-gather \
 && install -D -m 0755 must-gather/gather /out/gather

FROM registry.access.redhat.com/ubi9/ubi-minimal:9.6
RUN microdnf install -y --nodocs --setopt=install_weak_deps=0 tar gawk sed \
 && microdnf clean all \
 && rm -rf /var/cache/yum /var/cache/dnf
LABEL name="cma-operator" \
      vendor="cma-operator project" \
      version="0.1.0" \
      release="1" \
      summary="Custom Metrics Autoscaler operator: installs and keeps KEDA running" \
      description="Installs, configures, heals and upgrades KEDA (Kubernetes Event-driven Autoscaling) from one KedaController resource. Also the must-gather image: oc adm must-gather --image=<this image>." \
      maintainer="cma-operator maintainers <maintainers@cma-operator.dev>" \
      io.k8s.display-name="cma-operator" \
      io.k8s.description="Installs, configures, heals and upgrades KEDA from one KedaController resource." \
      io.openshift.tags="keda,autoscaling,operator,must-gather" \
      org.opencontainers.image.title="cma-operator" \
      org.opencontainers.image.source="https://github.com/cma-operator/cma-operator" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/cma-operator /usr/local/bin/cma-operator
COPY --from=builder /out/cma-must-gather /usr/bin/cma-must-gather
COPY --from=builder /out/gather /usr/bin/gather
# Fail the build, not a support case, when a tool oc adm must-gather relies on is missing.
RUN for tool in bash tar awk sed df sleep sync; do command -v "$tool" > /dev/null || { echo "missing $tool" >&2; exit 1; }; done \
 && /usr/bin/cma-must-gather --version \
 && /usr/local/bin/cma-operator version > /dev/null
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/cma-operator"]
