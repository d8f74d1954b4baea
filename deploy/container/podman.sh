#!/usr/bin/env bash
# Podman as the container engine where Docker is not installed (Debian bookworm's podman 4.3).
#
#   bash deploy/container/podman.sh install   # Debian packages + /etc/containers/containers.conf
#   bash deploy/container/podman.sh check     # can this kernel run a container at all? exit 3 if not
#   bash deploy/container/podman.sh base      # print the base image to build from (builds a
#                                              # stand-in when python:3.11-slim-bookworm can't be pulled)
#   bash deploy/container/podman.sh nginx     # print the load balancer image (a local one from
#                                              # Debian's nginx when the official one can't be pulled)
#
# Every step is idempotent and cached: the stand-in images carry a label with the hash of what
# they were built from and are rebuilt only when that changes.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
HERE=deploy/container
OFFICIAL_BASE=python:3.11-slim-bookworm
OFFICIAL_NGINX=nginx:1.28-alpine
LOCAL_BASE=localhost/digitserve-base:bookworm-py311
LOCAL_NGINX=localhost/digitserve-nginx:bookworm
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
# Bump when the stand-in's recipe in base() changes: the cached image is rebuilt.
BASE_RECIPE=minbase+python3+python3-pip/3
DEBOOTSTRAP_CACHE=/var/cache/digitserve-debootstrap
PULL_TIMEOUT_S=${PULL_TIMEOUT_S:-60}
CONF=/etc/containers/containers.conf
# The highest limits this kind of machine accepts; podman's defaults are refused here.
ULIMITS='default_ulimits = ["nofile=20000:20000", "nproc=8192:8192"]'
# crun 1.8 refuses a hybrid cgroup hierarchy (v1 controllers plus a v2 mount that lists one);
# runc runs containers there.
RUNTIME='runtime = "runc"'

log() { echo "podman.sh: $*" >&2; }

install() {
    local missing=()
    local p
    # The dnsname plugin gives containers the compose service names in DNS (CNI backend).
    for p in podman runc catatonit debootstrap docker-compose \
        golang-github-containernetworking-plugin-dnsname; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" uidmap slirp4netns fuse-overlayfs >/dev/null
    fi
    mkdir -p /etc/containers
    [ -f "$CONF" ] || printf '# Written by digitserve deploy/container/podman.sh\n' >"$CONF"
    conf_set containers '^default_ulimits' "$ULIMITS"
    conf_set engine '^runtime *=' "$RUNTIME"
}

# Add LINE to [SECTION] of containers.conf unless a line matching PATTERN is there already.
conf_set() {
    local section=$1 pattern=$2 line=$3
    grep -q "$pattern" "$CONF" && return 0
    if grep -q "^\[$section\]" "$CONF"; then
        sed -i "/^\[$section\]/a $line" "$CONF"
    else
        printf '[%s]\n%s\n' "$section" "$line" >>"$CONF"
    fi
    log "$CONF: [$section] $line"
}

# Can a container start here? Uses an image we already have, or imports a one-file image.
check() {
    if ! command -v podman >/dev/null 2>&1; then
        echo "podman is not installed" && exit 3
    fi
    local out
    if ! out="$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>&1)"; then
        echo "podman info failed: ${out##*$'\n'}" && exit 3
    fi
    if ! podman image exists localhost/digitserve-probe:1; then
        local dir
        dir="$(mktemp -d)"
        # A static busybox-free probe: the host's own `true` plus the libraries it needs.
        mkdir -p "$dir/bin"
        cp /bin/true "$dir/bin/true"
        local lib
        for lib in $(ldd /bin/true | grep -o '/[^ ]*'); do
            mkdir -p "$dir$(dirname "$lib")" && cp -L "$lib" "$dir$lib"
        done
        tar -C "$dir" -c . | podman import -q - localhost/digitserve-probe:1 >/dev/null
        rm -rf "$dir"
    fi
    if ! out="$(timeout 120 podman run --rm --network none localhost/digitserve-probe:1 /bin/true 2>&1)"; then
        echo "podman cannot run a container on this kernel: ${out##*$'\n'}" && exit 3
    fi
    echo "ok"
}

# Pull an image unless it is already here; false when it can't be had.
have_or_pull() {
    podman image exists "$1" && return 0
    timeout "$PULL_TIMEOUT_S" podman pull -q "$1" >/dev/null 2>&1
}

# The stand-in for python:3.11-slim-bookworm: Debian minbase + Debian's python3 (3.11) and pip,
# laid out where the official image has them (/usr/local/bin/python3.11, pip on PATH, no
# "externally managed" marker), trusting this machine's CA bundle.
base() {
    if [ "${DIGITSERVE_BASE_IMAGE:-}" ]; then echo "$DIGITSERVE_BASE_IMAGE" && return; fi
    if have_or_pull "$OFFICIAL_BASE"; then echo "$OFFICIAL_BASE" && return; fi
    local inputs
    inputs="$( (echo "$BASE_RECIPE"; cat "$CA_BUNDLE") | sha256sum | cut -c1-16)"
    if [ "$(podman image inspect --format '{{index .Labels "digitserve.inputs"}}' "$LOCAL_BASE" 2>/dev/null)" = "$inputs" ]; then
        echo "$LOCAL_BASE" && return
    fi
    log "$OFFICIAL_BASE can't be pulled: building the stand-in $LOCAL_BASE with debootstrap"
    local root
    root="$(mktemp -d /var/tmp/digitserve-rootfs.XXXXXX)"
    # shellcheck disable=SC2064
    trap "rm -rf '$root'" RETURN
    mkdir -p "$DEBOOTSTRAP_CACHE"
    nice debootstrap --variant=minbase --include=python3,python3-pip --cache-dir="$DEBOOTSTRAP_CACHE" \
        bookworm "$root" >&2
    # As Debian's slim images: no documentation, manual pages or translations, now or later.
    rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/usr/share/locale/*
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-exclude /usr/share/man/*' \
        'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
        >"$root/etc/dpkg/dpkg.cfg.d/docker-slim"
    ln -sf /usr/bin/python3.11 "$root/usr/local/bin/python3.11"
    ln -sf /usr/bin/python3.11 "$root/usr/local/bin/python3"
    ln -sf /usr/bin/python3.11 "$root/usr/local/bin/python"
    rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    # Last, so that nothing the packages install overwrites it. OpenSSL's default CA file points at
    # it too, since minbase has no ca-certificates package to lay out the hashed certs folder.
    mkdir -p "$root/etc/ssl/certs"
    cp "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
    ln -sf /etc/ssl/certs/ca-certificates.crt "$root/usr/lib/ssl/cert.pem"
    tar --numeric-owner -C "$root" -c . | podman import -q \
        --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" \
        --change "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt" \
        --change 'CMD ["python3"]' \
        --change "LABEL digitserve.inputs=$inputs" \
        - "$LOCAL_BASE" >/dev/null
    echo "$LOCAL_BASE"
}

nginx_image() {
    if [ "${LB_IMAGE:-}" ]; then echo "$LB_IMAGE" && return; fi
    if have_or_pull "$OFFICIAL_NGINX"; then echo "$OFFICIAL_NGINX" && return; fi
    local from inputs
    from="$(base)"
    inputs="$( (cat "$HERE/nginx.Containerfile"; podman image inspect --format '{{.Id}}' "$from") | sha256sum | cut -c1-16)"
    if [ "$(podman image inspect --format '{{index .Labels "digitserve.inputs"}}' "$LOCAL_NGINX" 2>/dev/null)" = "$inputs" ]; then
        echo "$LOCAL_NGINX" && return
    fi
    log "$OFFICIAL_NGINX can't be pulled: building $LOCAL_NGINX from Debian's nginx"
    nice podman build -q --build-arg "BASE_IMAGE=$from" --label "digitserve.inputs=$inputs" \
        -f "$HERE/nginx.Containerfile" -t "$LOCAL_NGINX" "$HERE" >&2
    echo "$LOCAL_NGINX"
}

case "${1:-}" in
    install) install ;;
    check) check ;;
    base) base ;;
    nginx) nginx_image ;;
    *) echo "usage: $0 install|check|base|nginx" >&2 && exit 2 ;;
esac
