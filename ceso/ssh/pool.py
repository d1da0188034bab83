"""The process's SSH connections: one pooled, kept-alive :class:`SshClient` per host.

Logins come from the host rows (:mod:`ceso.ssh.target`). A forked process (a Celery prefork child) never reuses its
parent's connections: the pool notices the new pid and starts empty.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from ceso.ssh.client import SshClient
from ceso.ssh.target import SshTarget, ssh_secret_key, ssh_target

if TYPE_CHECKING:
    from ceso.db.models import Host
    from ceso.secrets import SecretStore

__all__ = ["SshPool"]


class SshPool:
    """Pooled SSH clients of one process, keyed by everything that identifies a login."""

    def __init__(self, secrets: SecretStore, *, connect_timeout: float, command_timeout: float) -> None:
        self.secrets = secrets
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self._clients: dict[SshTarget, SshClient] = {}
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def client(self, host: Host) -> SshClient:
        """The pooled client of ``host`` (connected lazily, on its first command)."""
        target = ssh_target(host)
        secrets, key = self.secrets, ssh_secret_key(host.name, target.auth)
        with self._lock:
            if self._pid != os.getpid():  # forked: the sockets belong to the parent
                self._clients, self._pid = {}, os.getpid()
            client = self._clients.get(target)
            if client is None:
                client = SshClient(
                    target,
                    lambda: secrets.get(key),
                    connect_timeout=self.connect_timeout,
                    command_timeout=self.command_timeout,
                )
                self._clients[target] = client
        return client

    def close(self) -> None:
        """Close every pooled connection; never raises."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        if self._pid == os.getpid():
            for client in clients:
                client.close()
