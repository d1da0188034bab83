"""The process-wide handles every command and worker needs, built lazily.

A Runtime holds settings and creates, on first use only, the database engine
(with the schema checked), the secret store and the pool of ESXi sessions,
so a command pays only for what it touches.
"""

from __future__ import annotations

import atexit
import functools
import threading
from typing import TYPE_CHECKING, Protocol

from ceso.settings import Settings, get_settings

if TYPE_CHECKING:
    import redis
    from sqlalchemy.engine import Engine

    from ceso.backends.routes import BackendFactory
    from ceso.esxi.client import EsxiClient
    from ceso.locks import LockManager
    from ceso.secrets import SecretStore
    from ceso.ssh.pool import SshPool

__all__ = ["HostLoginData", "Runtime", "get_runtime"]


class HostLoginData(Protocol):
    """What a session to a host is made from: a ``Host`` row or a ``ceso.hosts.direct.HostLogin``."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def thumbprint(self) -> str | None: ...


class Runtime:
    """Lazily built engine, secret store and ESXi session pool for one process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[str, EsxiClient] = {}
        self._lock = threading.Lock()
        # Set only by tests: jobs then get this backend instead of the API or SSH route's.
        self.backend_factory: BackendFactory | None = None

    @functools.cached_property
    def engine(self) -> Engine:
        """The database engine, schema checked (an empty SQLite DB is upgraded)."""
        from ceso.db.engine import get_engine
        from ceso.db.migrate import ensure_schema

        engine = get_engine(self.settings.database_url)
        ensure_schema(engine)
        return engine

    @functools.cached_property
    def secrets(self) -> SecretStore:
        from ceso.secrets import open_secret_store
        from ceso.security.redact import RememberingSecretStore

        settings = self.settings
        if settings.secret_store == "sql":  # noqa: S105  (a store's name, not a password)
            from ceso.sql_secret_store import SqlSecretStore

            store: SecretStore = SqlSecretStore(
                lambda: self.engine, key_file=settings.master_key_file, data_dir=settings.data_dir
            )
        else:
            store = open_secret_store(settings.secret_store, settings.data_dir)
        # Every secret read or written is remembered, so it is redacted wherever it shows up later.
        return RememberingSecretStore(store)

    @functools.cached_property
    def redis(self) -> redis.Redis:
        """A client of the configured Redis that fails fast instead of retrying in the background."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # A lock lease must not outlive its TTL while redis-py retries behind the caller's back.
        return redis.Redis.from_url(
            self.settings.redis_url, socket_timeout=5, socket_connect_timeout=3, retry=Retry(NoBackoff(), 0)
        )

    @functools.cached_property
    def locks(self) -> LockManager:
        """The lock manager on the configured Redis."""
        from ceso.locks import LockManager

        return LockManager(self.redis, ttl_s=self.settings.locks.ttl_s)

    @functools.cached_property
    def ssh(self) -> SshPool:
        """The pooled SSH connections (one per host per process) of the SSH route."""
        from ceso.ssh.pool import SshPool

        atexit.register(self.close)
        return SshPool(
            self.secrets,
            connect_timeout=self.settings.esxi_timeout_s,
            command_timeout=self.settings.esxi_task_timeout_s,
        )

    def client(self, host: HostLoginData) -> EsxiClient:
        """The pooled, logged-in session to ``host`` (one per host per process)."""
        from ceso.esxi.client import EsxiClient
        from ceso.hosts.endpoint import parse_endpoint
        from ceso.secrets import host_secret_key

        key = f"{host.name}|{host.url}|{host.thumbprint}|{host.username}"
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                secrets = self.secrets
                name = host.name
                client = EsxiClient(
                    name=host.name,
                    endpoint=parse_endpoint(host.url),
                    username=host.username,
                    password=lambda: secrets.get(host_secret_key(name)),
                    thumbprint=host.thumbprint,
                    timeout=self.settings.esxi_timeout_s,
                )
                if not self._clients:
                    atexit.register(self.close)
                _observe(client)
                self._clients[key] = client
        if not client.connected:
            client.connect()
        return client

    def close(self) -> None:
        """Log out of every pooled session (ESXi limits concurrent sessions)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.logout()
        if "ssh" in self.__dict__:  # only if this process ever opened an SSH connection
            self.ssh.close()


@functools.cache
def get_runtime(config: str | None = None) -> Runtime:
    """The Runtime of this process for a config path (cached)."""
    return Runtime(get_settings(config))


def _observe(client: EsxiClient) -> None:
    """Feed a pooled client's SOAP requests into the metrics (a no-op outside metric-serving processes)."""
    from ceso.metrics.record import observe_esxi_request

    host = client.name
    client.stats.observers.append(
        lambda method, seconds, fault: observe_esxi_request(host, method, seconds, fault)
    )
