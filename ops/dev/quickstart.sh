#!/usr/bin/env bash
# Quick start: set up ceso, start a simulated ESXi host and a worker, and run ceso's jobs
# against it on the built-in defaults (no config file). State goes to a scratch data dir
# (CESO_DATA_DIR) so your own ceso database is not touched; everything started is stopped
# at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash ops/dev/setup.sh
bash ops/dev/services.sh

export PATH="$PWD/.venv/bin:$PATH"
export CESO_DATA_DIR=${CESO_DATA_DIR:-$(mktemp -d /tmp/ceso-quickstart.XXXXXX)}
sim_bin=$(bash ops/simulator/build.sh | tail -1)
sim_tmp=$(mktemp -d /tmp/ceso-sim.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$sim_tmp"
}
trap cleanup EXIT

# The simulator prints its URL on the first line of stdout.
TMPDIR=$sim_tmp "$sim_bin" -listen 127.0.0.1:0 >"$sim_tmp/url" 2>"$sim_tmp/log" &
pids+=($!)
for _ in $(seq 1 100); do [[ -s $sim_tmp/url ]] && break; sleep 0.1; done
url=$(head -1 "$sim_tmp/url")
echo "== simulated ESXi host at $url"
python ops/simulator/seed.py "$url" --count 2 --prefix legacy
# A small OVA shaped like Ubuntu's cloud image (8 MiB disk made stream-optimized by qemu-img).
python ops/simulator/make_ova.py "$sim_tmp/ubuntu-24.04-golden.ova"

step() { echo; echo "\$ $*"; "$@"; }
step ceso db upgrade
echo simulator | step ceso host add esxi-sim --url "$url" --user root --password-stdin
step ceso host check esxi-sim
ceso worker --host esxi-sim --concurrency 2 --metrics-port 0 >"$CESO_DATA_DIR/worker.log" 2>&1 &
pids+=($!)
step ceso host ping esxi-sim --timeout 60
step ceso template import ubuntu-24.04-golden --host esxi-sim --from "$sim_tmp/ubuntu-24.04-golden.ova" \
    --timeout 120
step ceso --dry-run vm create web-01 --template ubuntu-24.04-golden --ip 192.0.2.10/24 --gateway 192.0.2.1 \
    --dns 192.0.2.53
step ceso vm create web-01 --template ubuntu-24.04-golden --cpus 2 --memory 4G --disk 40G \
    --ip 192.0.2.10/24 --gateway 192.0.2.1 --dns 192.0.2.53 --timeout 120
step ceso vm clone web-01 web-02 --shutdown-source --ip 192.0.2.11/24 --gateway 192.0.2.1 --timeout 120
step ceso vm info web-01
step ceso vm list
step ceso job list
echo
echo "quick start done (state in $CESO_DATA_DIR; worker log in $CESO_DATA_DIR/worker.log)"
