# syntax=docker/dockerfile:1
#
# digitserve: a serving image without TensorFlow, and a trainer image with it.
#
#   docker build -t digitserve .                                   # serving image, models mounted
#   docker build --target trainer -t digitserve-trainer .          # the trainer (TensorFlow)
#   docker build --target with-models -t digitserve:with-models .  # serving + models baked in
#
# Stages:
#   builder      python + uv (pinned), the common start of both virtual environments
#   serve-venv   requirements-serve.lock (no TensorFlow: LiteRT, numpy, the web stack) + the project
#   train-venv   requirements.lock (everything, TensorFlow included) + the project
#   app          the base image + a non-root user and the environment both images share
#   trainer      app + train-venv; runs `python -m training all --if-missing`
#   models       trainer + a training run at build time (needs the data sources at build time)
#   runtime      app + serve-venv; serves SERVE_MODELS_DIR (/models). Serves model.tflite with
#                LiteRT; a version without one would need TensorFlow, which only the trainer has
#   with-models  runtime + the trained repository from `models`, read-only, at /opt/digitserve/models
#   default      the last stage, identical to runtime, so a plain `docker build .` never trains
#
# BASE_IMAGE lets a machine that cannot pull the official image build from a local equivalent
# (deploy/container/podman.sh builds one from Debian).

ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder

# uv is pinned to the version that wrote the lock files.
RUN pip install --no-cache-dir uv==0.13.8

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NATIVE_TLS=1 \
    VIRTUAL_ENV=/opt/venv

WORKDIR /src


FROM builder AS serve-venv

# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY requirements-serve.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv venv --python /usr/local/bin/python3.11 /opt/venv \
    && uv pip sync --python /opt/venv/bin/python requirements-serve.lock

# Then the project itself, installed as a regular (non-editable) package.
COPY pyproject.toml README.md ./
COPY service ./service
COPY training ./training
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/venv/bin/python --no-deps .


FROM builder AS train-venv

COPY requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv venv --python /usr/local/bin/python3.11 /opt/venv \
    && uv pip sync --python /opt/venv/bin/python requirements.lock

COPY pyproject.toml README.md ./
COPY service ./service
COPY training ./training
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/venv/bin/python --no-deps .


FROM ${BASE_IMAGE} AS app

LABEL org.opencontainers.image.title="digitserve" \
      org.opencontainers.image.description="Model-serving microservice for MNIST, Fashion-MNIST and Pima"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    SERVE_HOST=0.0.0.0 \
    SERVE_PORT=8000 \
    SERVE_MODELS_DIR=/models \
    TRAIN_MODELS_DIR=/models \
    TRAIN_CACHE_DIR=/cache

# A fixed non-root uid/gid (10001) that the Kubernetes securityContext repeats. /models and /cache
# are owned by it, so a fresh named volume mounted there is writable by the `train` service.
RUN groupadd --system --gid 10001 app \
    && useradd --system --no-log-init --uid 10001 --gid app --home-dir /home/app --create-home app \
    && mkdir -p /models /cache \
    && chown app:app /models /cache

WORKDIR /home/app


FROM app AS trainer

COPY --from=train-venv /opt/venv /opt/venv
USER 10001:10001
CMD ["python", "-m", "training", "all", "--if-missing"]


FROM trainer AS models

# Which recipes to bake in; "tutorial" alone builds in a few minutes.
ARG TRAIN_RECIPES=tutorial,defaults
ENV TRAIN_RECIPES=${TRAIN_RECIPES}
RUN python -m training all --if-missing --models-dir /tmp/build/models


FROM app AS runtime

COPY --from=serve-venv /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8000

# The slim image has no curl: the check is Python's urllib. It fails (exit 1) on 503 or no answer.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('SERVE_PORT', '8000'), timeout=4)"]

CMD ["python", "-m", "service"]


FROM runtime AS with-models

# Owned by root and not writable by the service user: the baked repository is read-only.
COPY --from=models --chown=root:root /tmp/build/models /opt/digitserve/models
ENV SERVE_MODELS_DIR=/opt/digitserve/models


FROM runtime AS default
