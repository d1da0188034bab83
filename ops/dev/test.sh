#!/usr/bin/env bash
# Run the whole test suite: set up (idempotent), check services, then pytest, in parallel.
# Extra arguments go to pytest after the defaults, so they win: `ops/dev/test.sh -k cli -x`,
# `ops/dev/test.sh -n 0` (serial). CESO_TEST_WORKERS sets the number of parallel processes (3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash ops/dev/setup.sh
bash ops/dev/services.sh
# The whole suite includes the chaos suite (tests/chaos/), which a bare pytest leaves out.
export CESO_CHAOS=${CESO_CHAOS:-1}
# pytest-xdist: most of a test's time is spent waiting on workers, simulators and services, so
# three processes beat one even on two cores. Each takes its own Redis DB (tests/conftest.py).
# --dist loadgroup: tests go one by one to whichever process is free, except those marked
# xdist_group, which run in one process one after another (README.md, "Quick start").
# --durations: where the time went, in every CI log.
exec .venv/bin/python -m pytest -n "${CESO_TEST_WORKERS:-3}" --dist loadgroup --durations=30 "$@"
