# syntax=docker/dockerfile:1
# The podline operator image. It runs `podline operator`, configured by PODLINE_* environment variables
# (the Helm chart in charts/podline sets them).
#
#   docker build --build-arg REVISION="$(git rev-parse HEAD)" -t podline/podline:0.1.0 .
#   buildah bud --build-arg REVISION="$(git rev-parse HEAD)" -t podline/podline:0.1.0 .
#
# BASE_IMAGE is the Python base of every stage. Its default is the published slim Python image a user's
# build pulls. The test cluster builds this same file on a base it makes from Debian's own packages of the
# same release (bookworm, python3 3.11; tests/cluster/operator_image.py), so what the tests run is what
# ships, bar the base's origin. The file therefore calls only what both bases have: `python3`, its `venv`
# module with ensurepip, `groupadd` and `useradd`.
#
# Stage "build" makes a virtualenv and installs podline and its dependencies, pinned to exact versions in
# pyproject.toml, into it with the virtualenv's own pip, then removes that pip. The final stage is the same
# base with only that virtualenv copied in: no pip, no compilers, no caches, and a numeric non-root user
# (65532), so the restricted Pod Security Standard and runAsNonRoot can verify it.
ARG BASE_IMAGE=python:3.11.14-slim-bookworm

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
# The operator never installs anything: take pip out of the base image where it has one (the published
# base does, in its site-packages; a Debian-packaged python3 has none), and add the user the pod runs as
# (an /etc/passwd entry keeps getpass and friends working).
RUN if python3 -c 'import pip' 2>/dev/null; then \
      python3 -m pip uninstall --yes --no-cache-dir pip setuptools wheel; \
    fi \
 && groupadd --system --gid 65532 podline \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin podline
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
# 8080: kopf's liveness endpoint /healthz (PODLINE_LIVENESS_PORT); 9090: Prometheus metrics (PODLINE_METRICS_PORT)
EXPOSE 8080 9090
ENTRYPOINT ["podline", "operator"]
