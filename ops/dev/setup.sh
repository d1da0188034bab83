#!/usr/bin/env bash
# Set up a development / test machine (Debian, Python >= 3.11): system packages, the
# virtualenv in .venv with ceso and its dev tools, and the simulated ESXi host binary.
# Idempotent and quiet when there is nothing to do.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# openssl: the secrets .env.example makes (tests/ops/test_compose_run.py); util-linux: unshare, which
# gives each "machine" of tests/ops/test_deploy_two_machines.py its own mounts; qemu-utils: qemu-img, which
# makes the stream-optimized VMDKs of the image import tests (tests/support/images.py).
apt_packages=(golang-go golang-github-vmware-govmomi-dev openssh-server redis-server zstd curl prometheus systemd openssl util-linux qemu-utils)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# docker-compose only validates docker-compose.yml in the tests (no Docker engine runs here);
# without Recommends it does not pull in docker.io.
if ! dpkg-query -W -f='${Status}' docker-compose 2>/dev/null | grep -q "install ok installed"; then
    echo "setup: installing Debian package docker-compose (without Recommends)" >&2
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
fi
# The tests start their own Prometheus on free ports; do not keep Debian's service on :9090.
if [[ -d /run/systemd/system ]] && systemctl is-enabled -q prometheus 2>/dev/null; then
    if [[ $(id -u) -eq 0 ]]; then systemctl disable --now -q prometheus; else sudo systemctl disable --now -q prometheus; fi
fi

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    echo "setup: creating .venv" >&2
    "$python" -m venv .venv
fi
stamp=.venv/.ceso-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
    echo "setup: installing ceso and its dependencies into .venv" >&2
    log=$(mktemp)
    # The "compat" editable mode puts the checkout on sys.path with a plain .pth line, as an
    # installed wheel would be found; the default mode's import hook costs every ceso process
    # ~10 ms at start-up (docs/benchmarks.md). setuptools calls compat transitional: when a
    # release drops it, the default mode is used.
    if ! { .venv/bin/python -m pip install -q --upgrade pip \
        && { .venv/bin/python -m pip install -q -e '.[dev]' --config-settings editable_mode=compat \
            || .venv/bin/python -m pip install -q -e '.[dev]'; }; } >"$log" 2>&1; then
        cat "$log" >&2
        exit 1
    fi
    rm -f "$log"
    touch "$stamp"
fi

bash ops/simulator/build.sh >/dev/null
