# syntax=docker/dockerfile:1
# The podline operator image. It runs `podline operator`, configured by PODLINE_* environment variables
# (the Helm chart in charts/podline sets them).
#
#   docker build --build-arg REVISION="$(git rev-parse HEAD)" -t podline/podline:0.1.0 .
#   buildah bud --build-arg REVISION="$(git rev-parse HEAD)" -t podline/podline:0.1.0 .
#   docker build --target runner -t podline/runner:0.1.0 .     # only the step entrypoint (FROM scratch)
#
# BASE_IMAGE is the Python base of the operator's stages, GO_IMAGE the Go toolchain the step entrypoint
# (operator/entrypoint/, standard library only) is built with. Their defaults are the published images a
# user's build pulls. The test cluster builds this same file on bases it makes itself from the same Debian
# release (bookworm: Debian's python3 3.11; the same Go release in /usr/local/go; tests/cluster/
# operator_image.py), so what the tests run is what ships, bar the bases' origin. The file therefore calls
# only what both kinds of base have: `python3`, its `venv` module with ensurepip, `groupadd`, `useradd`, `go`.
#
# Stage "entrypoint" builds the static step entrypoint. Every runner image has it at /podline-entrypoint
# with the marker /.podline-runner (docs/in-pod.md); the operator image is one (the chart's default runner
# image), with the binary in /usr/local/bin. Stage "runner" is the smallest runner image: nothing else.
#
# Stage "build" makes a virtualenv and installs podline and its dependencies, pinned to exact versions in
# pyproject.toml, into it with the virtualenv's own pip, then removes that pip. The final stage is the same
# base with only that virtualenv copied in: no pip, no compilers, no caches, and a numeric non-root user
# (65532), so the restricted Pod Security Standard and runAsNonRoot can verify it.
ARG BASE_IMAGE=python:3.11.14-slim-bookworm
ARG GO_IMAGE=golang:1.26.8-bookworm

FROM ${GO_IMAGE} AS entrypoint
WORKDIR /src
COPY operator/entrypoint ./
RUN CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS='' go build -trimpath -ldflags='-s -w' -o /out/podline-entrypoint . \
 && : > /out/.podline-runner

FROM scratch AS runner
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="podline-runner" \
      org.opencontainers.image.description="podline's step entrypoint: it sequences a run's steps inside the run's pod" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=entrypoint /out/ /
ENTRYPOINT ["/podline-entrypoint"]

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/python -m pip install --no-cache-dir . \
 && /opt/venv/bin/python -m pip uninstall --yes --no-cache-dir pip setuptools

FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="podline" \
      org.opencontainers.image.description="Kubernetes operator that runs Drone-style CI pipelines, one pod per run" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
COPY --from=entrypoint /out/podline-entrypoint /usr/local/bin/podline-entrypoint
# The operator never installs anything: take pip out of the base image where it has one (the published
# base does, in its site-packages; a Debian-packaged python3 has none), and add the user the pod runs as
# (an /etc/passwd entry keeps getpass and friends working). The entrypoint where runner images have it.
RUN if python3 -c 'import pip' 2>/dev/null; then \
      python3 -m pip uninstall --yes --no-cache-dir pip setuptools wheel; \
    fi \
 && groupadd --system --gid 65532 podline \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin podline \
 && ln -s /usr/local/bin/podline-entrypoint /podline-entrypoint \
 && : > /.podline-runner
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
# 8080: kopf's liveness endpoint /healthz (PODLINE_LIVENESS_PORT); 9090: Prometheus metrics (PODLINE_METRICS_PORT)
EXPOSE 8080 9090
ENTRYPOINT ["podline", "operator"]
