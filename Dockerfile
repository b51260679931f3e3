# syntax=docker/dockerfile:1
# The podline operator image. It runs `podline operator`, configured by PODLINE_* environment variables
# (the Helm chart in charts/podline sets them).
#
#   docker build --build-arg REVISION="$(git rev-parse HEAD)" -t podline/podline:0.1.0 .
#
# Stage "build" installs podline and its dependencies, pinned to exact versions in pyproject.toml, into a
# virtualenv that has no pip of its own. The final stage is the same slim Python base with only that
# virtualenv copied in: no pip, no compilers, no caches, and a numeric non-root user (65532), so the
# restricted Pod Security Standard and runAsNonRoot can verify it.

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv --without-pip /opt/venv
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir --python /opt/venv/bin/python .

FROM python:3.11.14-slim-bookworm
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="podline" \
      org.opencontainers.image.description="Kubernetes operator that runs Drone-style CI pipelines, one pod per run" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm"
# The operator never installs anything: take pip out of the base image, and add the user the pod runs as
# (an /etc/passwd entry keeps getpass and friends working).
RUN python -m pip uninstall --yes --no-cache-dir pip setuptools wheel \
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
