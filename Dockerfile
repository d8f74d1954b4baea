# syntax=docker/dockerfile:1
#
# digitserve: one image that runs the prediction service (the default command) and the trainer.
#
#   docker build -t digitserve .                                   # runtime image, models mounted
#   docker build --target with-models -t digitserve:with-models .  # models trained and baked in
#
# Stages:
#   builder      installs requirements.lock (pinned) with uv into /opt/venv (no compilers needed:
#                every locked dependency ships a wheel)
#   runtime      python:3.11-slim + /opt/venv + a non-root user; serves SERVE_MODELS_DIR (/models)
#   trainer      runtime + a training run at build time (needs the data sources at build time)
#   with-models  runtime + the trained repository from `trainer`, read-only, at /opt/digitserve/models
#   default      the last stage, identical to runtime, so a plain `docker build .` never trains

FROM python:3.11-slim-bookworm AS builder

# uv is pinned to the version that wrote requirements.lock.
RUN pip install --no-cache-dir uv==0.13.8

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    VIRTUAL_ENV=/opt/venv

WORKDIR /src

# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY pyproject.toml requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv venv --python /usr/local/bin/python3.11 /opt/venv \
    && uv pip sync --python /opt/venv/bin/python requirements.lock

# Then the project itself, installed as a regular (non-editable) package.
COPY README.md ./
COPY service ./service
COPY training ./training
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/venv/bin/python --no-deps .


FROM python:3.11-slim-bookworm AS runtime

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

COPY --from=builder /opt/venv /opt/venv

WORKDIR /home/app
USER 10001:10001
EXPOSE 8000

# The slim image has no curl: the check is Python's urllib. It fails (exit 1) on 503 or no answer.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('SERVE_PORT', '8000'), timeout=4)"]

# The service is the default; the same image trains with `python -m training all --if-missing`.
CMD ["python", "-m", "service"]


FROM runtime AS trainer

# Which recipes to bake in; "tutorial" alone builds in a few minutes.
ARG TRAIN_RECIPES=tutorial,best
ENV TRAIN_RECIPES=${TRAIN_RECIPES}
RUN python -m training all --if-missing --models-dir /tmp/build/models


FROM runtime AS with-models

# Owned by root and not writable by the service user: the baked repository is read-only.
COPY --from=trainer --chown=root:root /tmp/build/models /opt/digitserve/models
ENV SERVE_MODELS_DIR=/opt/digitserve/models


FROM runtime AS default
