# syntax=docker/dockerfile:1
# The secureml-operator image: a venv built from the hash-pinned requirements.lock in a builder
# stage, copied into a slim runtime that runs as a non-root user on a read-only root filesystem.
# Rebuild the lock with `make lock` whenever pyproject.toml's dependencies change.
# The base is the official python:3.11.14-slim-trixie, pinned by the digest of its multi-platform
# manifest list: the one python:3.11-slim resolved to in late 2025, as public build logs that pulled it
# show (it could not be pulled here to check: no registry is reachable). Bump tag and digest together.
# `make image` (hack/image.py) passes a base made from Debian packages instead; any base with a
# `python` 3.11 on PATH and its venv module works for both stages.
ARG PYTHON_IMAGE=python:3.11.14-slim-trixie@sha256:193fdd0bbcb3d2ae612bd6cc3548d2f7c78d65b549fcaa8af75624c47474444d

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Dependencies first, so this layer is reused until the lock changes. Wheels only: no compiler in
# the image, and every file is checked against the lock's hashes.
COPY requirements.lock ./
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: -r requirements.lock
# The operator itself, without dependencies: the lock already decided every version.
COPY pyproject.toml README.md ./
COPY operator/ operator/
# Bytecode for `python -OO` too, which the entrypoint runs: without it each start would compile the
# SDKs' modules in memory (nothing is written at run time), a few hundred MiB of RSS that stays.
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps . \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/python -OO -m compileall -q -j 0 /opt/venv/lib

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="secureml-operator" \
      org.opencontainers.image.description="Kubernetes operator that keeps Azure Machine Learning workspaces network-isolated" \
      org.opencontainers.image.licenses="Apache-2.0"
# No bytecode or caches written at run time (the root filesystem can be read-only); HOME points at
# /tmp for any library that insists on a home directory. Metrics are on by default in the image.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    SMLW_METRICS_PORT=9090
COPY --from=builder /opt/venv /opt/venv
USER 65532:65532
# 8080: kopf's liveness endpoint (/healthz); 9090: Prometheus metrics (SMLW_METRICS_PORT).
EXPOSE 8080 9090
# -OO: no docstrings or asserts in memory. The SDKs' generated modules carry a docstring for every
# operation and model; about 13 MiB of the operator's RSS (docs/install.md, memory).
ENTRYPOINT ["python", "-OO", "-m", "secureml_operator", "--liveness", "http://0.0.0.0:8080/healthz"]
