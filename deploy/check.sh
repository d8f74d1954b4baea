#!/usr/bin/env bash
# Deployment checks that need no container engine (none runs on these machines).
#
#   bash deploy/check.sh          # install what is missing, then lint and validate everything
#   bash deploy/check.sh install  # only install: Debian's docker-compose and nginx
#   bash deploy/check.sh lint     # only the checks
#
# Checks: hadolint on the Dockerfile; `docker-compose config` (Debian's docker-compose) on the
# compose file, with and without the scale profile; the compose file against the Compose
# specification's JSON schema (the copy Debian's docker-compose ships); every Kubernetes manifest
# and every rendered kustomization against the Kubernetes schemas, offline and strict
# (kubernetes-validate, kubectl kustomize). The Python tools come from the dev extra.
# The behavioural tests are in tests/deploy (pytest); they need what `install` installs.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${VENV_BIN:-.venv/bin}"
K8S_VERSION=1.37.0

install() {
    local missing=()
    command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    if ((${#missing[@]})); then
        echo "deploy-check: installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    local tool
    for tool in hadolint kubernetes-validate kubectl python; do
        if [ ! -x "$BIN/$tool" ]; then
            echo "deploy-check: $BIN/$tool is missing: run 'make install' first" >&2
            exit 1
        fi
    done
}

lint() {
    echo "== hadolint Dockerfile"
    "$BIN/hadolint" --no-color Dockerfile

    echo "== docker-compose config"
    docker-compose -f docker-compose.yml config -q
    docker-compose -f docker-compose.yml --profile scale config -q

    echo "== docker-compose.yml against the Compose specification schema"
    local schema
    schema="$(dpkg -L docker-compose | grep '/compose_spec.json$' | head -n 1)"
    "$BIN/python" - "$schema" docker-compose.yml <<'EOF'
import json
import sys

import jsonschema
import yaml

schema = json.load(open(sys.argv[1]))
document = yaml.safe_load(open(sys.argv[2]))
# The file says draft 2019-09 (with a trailing "#" that jsonschema does not recognise).
jsonschema.Draft201909Validator(schema).validate(document)
print(f"{sys.argv[2]} conforms to {schema['title']} ({sys.argv[1]})")
EOF

    echo "== kubernetes-validate (strict, offline, Kubernetes $K8S_VERSION)"
    local rendered
    rendered="$(mktemp -d)"
    trap 'rm -rf "$rendered"' RETURN
    local dir name
    for dir in deploy/k8s/base deploy/k8s/overlays/pvc deploy/kserve; do
        name="${dir//\//_}.yaml"
        "$BIN/kubectl" kustomize "$dir" >"$rendered/$name"
    done
    # Raw files too, and the kustomize outputs. KServe kinds have no schema here (a WARN);
    # tests/deploy/test_k8s.py validates their pod specs as core/v1 Pods.
    find deploy/k8s deploy/kserve -name '*.yaml' ! -name kustomization.yaml -print0 |
        xargs -0 "$BIN/kubernetes-validate" --strict --quiet -k "$K8S_VERSION"
    "$BIN/kubernetes-validate" --strict -k "$K8S_VERSION" "$rendered"/*.yaml
    echo "deploy-check: all passed"
}

case "${1:-all}" in
    install) install ;;
    lint) lint ;;
    all) install && lint ;;
    *) echo "usage: $0 [install|lint|all]" >&2 && exit 2 ;;
esac
