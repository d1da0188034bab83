"""What the two real routes' backends share: the client to the host, the recorder, the task time limit.

:class:`ceso.backends.api.ApiVmBackend` and :class:`ceso.backends.ssh.SshVmBackend` are built
alike by :func:`ceso.backends.routes.open_backend`; this base holds that constructor and the
``host`` both report in messages. The test backend (:mod:`ceso.backends.fake`) has no client.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar

from ceso.backends.protocol import Recorder

__all__ = ["RouteBackend"]


class _HostClient(Protocol):
    @property
    def name(self) -> str:
        """The host's name in ceso."""
        ...


ClientT = TypeVar("ClientT", bound=_HostClient)


def _not_recorded(_method: str, _args: dict[str, Any]) -> None:
    """The recorder of a backend used outside a job (nothing to record the calls on)."""


class RouteBackend(Generic[ClientT]):
    """A backend reaching one host through ``client``; each call is reported to ``record`` before
    it is made, and a host task may take ``task_timeout`` seconds."""

    def __init__(
        self, client: ClientT, record: Recorder | None = None, *, task_timeout: float = 1800.0
    ) -> None:
        self.client = client
        self.record: Recorder = record or _not_recorded
        self.task_timeout = task_timeout

    @property
    def host(self) -> str:
        """The host's name, for messages."""
        return self.client.name
