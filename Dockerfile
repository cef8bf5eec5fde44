# syntax=docker/dockerfile:1.7
#
# scaler's controller image: `scaler run` as a non-root user on a read-only root filesystem.
#
#   docker build -t scaler:dev .
#
# Two stages. The builder turns the project and every dependency into wheels in /wheels
# (compilers are there in case a dependency has no wheel for the target platform). The final
# stage installs those wheels with --no-index (no network, no compiler), mounting them from
# the builder instead of COPYing them, so they are not left in a layer. tests/deploy/
# mirrors these install steps in a virtualenv, since CI has no container engine.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

# Build deps only matter for a dependency without a wheel for the platform (e.g. an arm64
# sdist); they never reach the final image. Unpinned on purpose: Debian point releases
# replace exact versions, and the builder's compiler does not end up in the product.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the wheel is built from (see .dockerignore): pyproject, package sources and
# package data (scaler/data/*.json, scaler/schemas/*.json).
COPY pyproject.toml README.md NOTICE ./
COPY scaler ./scaler
COPY simulations ./simulations
RUN pip wheel --wheel-dir /wheels .


FROM ${PYTHON_IMAGE}

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="scaler" \
      org.opencontainers.image.description="Kubernetes node autoscaler for AWS: each pod on the cheapest node that fits, in absolute dollars." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# A passwd entry for uid 65532 (the distroless "nonroot" id): getpass/pwd lookups in
# libraries fail without one. Home is /tmp, the only writable path at run time.
RUN groupadd --gid 65532 scaler \
    && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin scaler

# Read-only root filesystem: nothing may write outside /tmp (an emptyDir in the Deployment).
#   HOME=/tmp                  anything that writes under ~ (caches, boto's ~/.aws lookups)
#   PYTHONDONTWRITEBYTECODE=1  no __pycache__ next to the sources (pip compiled them already)
#   PYTHONUNBUFFERED=1         logs reach `kubectl logs` at once
ENV HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Every wheel in /wheels is the project or one of its dependencies: install them all, from
# there only. No extras: the simulator's matplotlib and dask (the `sim` extra, ~100 MB) stay
# out; rich stays in, for the tables of `scaler plan` and `scaler status` run in the pod. `scaler --help` proves the entry point and its imports before the image ships.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/*.whl \
    && scaler --help >/dev/null

USER 65532:65532
WORKDIR /tmp

# 8080: /metrics, /healthz, /readyz. 8443: the mutating admission webhook (TLS).
EXPOSE 8080 8443

ENTRYPOINT ["scaler", "run"]
