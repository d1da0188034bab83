"""The chaos suite: faults injected into real services (Redis, PostgreSQL, the host, workers).

Each case asserts on reality read independently (the simulator's inventory and datastore files,
SQL rows, the backup target), never only on what ceso reports. The suite runs under ``CI=true``
and locally with ``CESO_CHAOS=1``; without either its tests are deselected (and counted in the
summary), not skipped.
"""
