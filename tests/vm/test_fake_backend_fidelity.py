"""FakeBackend answers as the API route does: one scenario, run on the simulator and on the fake.

The step-logic tests on the fake (test_steps_on_fake.py) are only worth what
the fake's answers are worth; this pins them to the real route's: the same
results and the same CesoError classes for the same calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ceso.backends.api import ApiVmBackend
from ceso.backends.fake import FakeBackend
from ceso.backends.guest import shut_down_guest
from ceso.backends.protocol import AnyBackend
from ceso.errors import CesoError
from ceso.esxi.client import EsxiClient
from ceso.hosts.endpoint import parse_endpoint
from tests.conftest import unique
from tests.support.simulator import SimulatorHost
from tests.support.vms import create_vm, destroy_vm

DS = "LocalDS_0"


def _outcome(call: Callable[[], Any]) -> Any:
    """What a call gave: its (plain) value, or the class name of the CesoError it raised."""
    try:
        return call()
    except CesoError as exc:
        return type(exc).__name__


def _scenario(ops: AnyBackend, name: str) -> list[Any]:
    folder = f"[{DS}] {name}-dir"
    vm = ops.find(name)
    return [
        _outcome(lambda: ops.find(f"{name}-missing")),
        _outcome(lambda: ops.exists(name)),
        _outcome(lambda: ops.datastore(None)),
        _outcome(lambda: ops.datastore("no-such-datastore")),
        _outcome(lambda: ops.network("no-such-network")),
        _outcome(lambda: ops.make_directory(folder)),
        _outcome(lambda: ops.path_exists(folder)),
        _outcome(lambda: ops.make_directory(folder)),
        _outcome(lambda: ops.delete_path(folder)),
        _outcome(lambda: ops.path_exists(folder)),
        _outcome(lambda: ops.delete_path(folder)),
        _outcome(lambda: ops.path_exists(f"[{DS}] {name}/{name}.vmx")),
        _outcome(lambda: ops.power_state(vm)),
        _outcome(lambda: ops.power_off(vm)),
        _outcome(lambda: ops.power_on(vm)),
        _outcome(lambda: ops.power_on(vm)),
        _outcome(lambda: ops.power_state(vm)),
        _outcome(lambda: ops.destroy(vm)),
        _outcome(lambda: shut_down_guest(ops, vm, timeout=20)),
        _outcome(lambda: ops.power_state(vm)),
        _outcome(lambda: ops.create_snapshot(vm, "one") and None),
        _outcome(lambda: [n.name for n in ops.snapshot_tree(vm)]),
        _outcome(lambda: ops.remove_snapshot(ops.snapshot_tree(vm)[0].snapshot)),
        _outcome(lambda: ops.snapshot_tree(vm)),
        _outcome(lambda: ops.destroy(vm)),
        _outcome(lambda: ops.exists(name)),
        _outcome(lambda: ops.path_exists(f"[{DS}] {name}")),
    ]


@pytest.fixture
def api(sim: SimulatorHost) -> Iterator[tuple[ApiVmBackend, str]]:
    si = sim.connect()
    name = unique("fidelity")
    create_vm(si, name)
    client = EsxiClient(
        name="sim", endpoint=parse_endpoint(sim.url), username="root", password=lambda: "pw", thumbprint=None
    )
    yield ApiVmBackend(client.connect(), task_timeout=60), name
    destroy_vm(si, name)


def test_the_fake_answers_as_the_api_route(api: tuple[ApiVmBackend, str]) -> None:
    ops, name = api
    real = _scenario(ops, name)
    fake = FakeBackend(datastores=(DS,))
    fake.add_vm(name, datastore=DS)
    assert _scenario(fake, name) == real
    # The scenario is not vacuous: it saw each kind of answer.
    assert {"NotFoundError", "ConflictError", True, False, "poweredOn", "poweredOff"} <= set(
        r for r in real if isinstance(r, (str, bool))
    )
