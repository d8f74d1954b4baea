# Two commands do everything on a fresh machine: `make serve` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
UV_VERSION := 0.13.8
PY := .venv/bin/python
# one repository for training and serving: the service's or the trainer's setting when given
MODELS_DIR ?= $(or $(SERVE_MODELS_DIR),$(TRAIN_MODELS_DIR),models)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: serve test lock install system-deps data train train-best lint typecheck unit integration \
        deploy-check container-test browser bench soak audit clean

## serve: install, fetch the data, train any missing tutorial model, start the service
serve: install data train
	SERVE_MODELS_DIR=$(MODELS_DIR) \
	SERVE_VERSION_POLICY=$${SERVE_VERSION_POLICY:-all} \
	SERVE_POLL_INTERVAL_S=$${SERVE_POLL_INTERVAL_S:-2} \
	$(PY) -m service

# uv from the PATH, else a private copy: Debian's own Python refuses `pip install` into the system
# ("externally-managed-environment"), so uv goes into a venv of its own (python3-venv, installed
# when missing: `make serve` runs as root on a fresh machine)
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)

install: .venv/.installed
.venv/.installed: pyproject.toml requirements.lock requirements-dev.lock | $(UV)
	[ -x $(PY) ] || $(UV) venv --quiet --python python3.11 .venv
	$(UV) pip sync --quiet --python $(PY) requirements-dev.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	@touch $@

.tools/bin/uv:
	python3 -m venv .tools || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && \
	  rm -rf .tools && python3 -m venv .tools; }
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

## system-deps: Debian packages the tests use (nginx, docker-compose, chromium, wrk)
system-deps:
	@missing=""; \
	for p in nginx docker-compose chromium wrk; do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

data: install
	$(PY) -m training.datasets all

train: install
	$(PY) -m training all --recipe tutorial --if-missing --models-dir $(MODELS_DIR)

## train-best: train the improved recipes and their cheaper "fast" variants into the repository
## (the running service picks them up), each image CNN's dynamic-range quantised copy as its own
## version, and what each model serves by default (`defaults`: training.recipes.SERVED, the
## quantised "lean" CNNs of mnist and fashion_mnist, pima's "best"); the fast default policy serves
## the newest that reaches its target
train-best: install
	$(PY) -m training all --recipe best,fast,best+dynamic,fast+dynamic,defaults --models-dir $(MODELS_DIR)

lint: install
	.venv/bin/ruff check service training tests benchmarks tools
	.venv/bin/ruff format --check service training tests benchmarks tools

typecheck: install
	.venv/bin/mypy service training

deploy-check: install system-deps
	bash deploy/check.sh all

## lock: re-resolve the pinned dependency sets after editing pyproject.toml
lock:
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu -o requirements-dev.lock
	$(UV) pip compile pyproject.toml --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu -c requirements-dev.lock -o requirements.lock
	$(UV) pip compile deploy/container/requirements-serve.in --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu -c requirements.lock -o requirements-serve.lock

## container-test: build both images and run the compose stack, its scale profile and the
## Kubernetes Deployment in podman (installed and configured when missing; skipped with the reason
## where the kernel can't run containers). Built images and base layers are reused between runs.
container-test: install
	.venv/bin/pytest -q -p no:cacheprovider --timeout=1800 -rs -m containers tests/deploy/test_containers.py
	@cat tests/.cache/container-report.json 2>/dev/null || true

## test: every check CI runs
test: install system-deps lint typecheck deploy-check audit container-test
	.venv/bin/pytest -q -p no:cacheprovider --timeout=900 --durations=20 -m "not containers" tests

bench: install system-deps data train
	$(PY) -m benchmarks.run
	$(PY) -m benchmarks.payload_log --models-dir $(MODELS_DIR) --out benchmarks/results \
	  || echo "payload log: p99 goal missed, see benchmarks/results/payload_log.md"

soak: install data train
	$(PY) -m benchmarks.soak

## soak-operations: the soak with the payload log, feedback, drift and shadow traffic all on
.PHONY: soak-operations
soak-operations: install data train
	$(PY) -m benchmarks.soak --operations

## eval-photos: generate the photo-and-drawing set (benchmarks/photos) and evaluate every image
## version on it: accuracy per condition, dev and holdout, OOD AUROCs, speed
.PHONY: eval-photos
eval-photos: install data train
	$(PY) -m benchmarks.photos.generate
	$(PY) -m benchmarks.photos.evaluate --models-dir $(MODELS_DIR)

## audit: pip-audit on the locked dependencies; says "AUDIT NOT RUN" (exit 0) when no vulnerability
## service is reachable, fails on findings (AUDIT_REQUIRED=1 also fails when it cannot run)
audit: install
	$(PY) tools/audit_deps.py

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache tests/.cache
