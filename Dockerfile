# syntax=docker/dockerfile:1.7
# The tunix-rt operator image: kopf, kubernetes client, pydantic, fsspec/s3fs and gcsfs
# (the gcs extra, so gs:// stores work, e.g. for TPU sweeps on GKE).
# No JAX, no Ray (those live in the trainer images under images/); git for Promote.
#
#   docker build -t ghcr.io/tunix-rt/operator:0.1.0 \
#     --build-arg TUNIX_RT_COMMIT_SHA="$(git rev-parse HEAD)" .

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /uvx /usr/local/bin/
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first (cached while only the source changes), exactly as locked.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --extra gcs --no-install-project
# Then the package itself, as a wheel (not editable: /src is not in the final image).
COPY operator ./operator
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --extra gcs --no-editable

FROM ${PYTHON_IMAGE}
ARG TUNIX_RT_IMAGE=ghcr.io/tunix-rt/operator
ARG TUNIX_RT_COMMIT_SHA=unknown
LABEL org.opencontainers.image.title="tunix-rt-operator" \
      org.opencontainers.image.description="tunix-rt Kubernetes operator (kopf)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${TUNIX_RT_COMMIT_SHA}"
# git: the web view's Promote button commits the promoted Rehearsal to a repository
# (tunix_rt.gitops runs the git CLI). Debian's security updates replace package versions:
# git/ca-certificates follow the pinned base image's suite.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 tunix \
 && useradd --system --uid 65532 --gid 65532 --home-dir /home/tunix --create-home \
      --shell /usr/sbin/nologin tunix
COPY --from=build --chown=0:0 /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TUNIX_RT_IMAGE=${TUNIX_RT_IMAGE} \
    TUNIX_RT_COMMIT_SHA=${TUNIX_RT_COMMIT_SHA}
WORKDIR /home/tunix
USER 65532:65532
# kopf liveness (/healthz) and Prometheus metrics.
EXPOSE 8080 9090
ENTRYPOINT ["tunix-rt", "operator"]
