#!/usr/bin/env bash
# Run the whole test suite: set up (idempotent), check services, then pytest.
# Extra arguments go to pytest, e.g. `ops/dev/test.sh -k cli -x`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash ops/dev/setup.sh
bash ops/dev/services.sh
# The whole suite includes the chaos suite (tests/chaos/), which a bare pytest leaves out.
export CESO_CHAOS=${CESO_CHAOS:-1}
exec .venv/bin/python -m pytest "$@"
