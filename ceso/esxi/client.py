"""One authenticated vSphere API session to one ESXi host.

Contract: every public method either returns plain data / pyVmomi objects or
raises a :class:`ceso.errors.CesoError` chained from the original. The password
is not kept: a callable fetches it from the secret store when a login (or a
re-login after session expiry) needs it. Each SOAP request is counted and timed
so benchmarks and metrics can report round trips.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from ceso.backends.faults import fault_name, translate
from ceso.backends.vmomi import vim, vmodl
from ceso.errors import CesoError, OperationError, TimeoutExpiredError, TransientError
from ceso.esxi.layout import LayoutCache
from ceso.esxi.login import connect_with_deadline
from ceso.esxi.tlspin import pinned_context
from ceso.esxi.traversal import Hop, filter_spec
from ceso.hosts.endpoint import Endpoint
from ceso.metrics.record import observe_session

__all__ = ["EsxiClient", "RequestStats"]

log = logging.getLogger(__name__)
T = TypeVar("T")
PAGE_SIZE = 500


@dataclass
class RequestStats:
    """SOAP requests made by one client: count per method and total seconds."""

    calls: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    observers: list[Callable[[str, float, str | None], None]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.calls.values())


class EsxiClient:
    """A logged-in session to one host's SOAP API (``/sdk``)."""

    def __init__(
        self,
        *,
        name: str,
        endpoint: Endpoint,
        username: str,
        password: Callable[[], str],
        thumbprint: str | None,
        timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.username = username
        self._password = password
        self.thumbprint = thumbprint
        self.timeout = timeout
        self.stats = RequestStats()
        self._si: Any = None
        self._content: Any = None
        self._lock = threading.RLock()
        self.logins = 0
        #: The host's datacenter, folders, datastores and networks, kept for this session's jobs.
        self.layout_cache = LayoutCache(self)

    # -- session ---------------------------------------------------------
    def connect(self) -> EsxiClient:
        """Log in (again). Raises AuthenticationError, HostUnreachableError, ThumbprintMismatchError."""
        with self._lock:
            try:
                si = connect_with_deadline(
                    protocol=self.endpoint.scheme,
                    host=self.endpoint.hostname,
                    port=self.endpoint.port,
                    path=self.endpoint.path,
                    user=self.username,
                    pwd=self._password(),
                    # Hosts are pinned by thumbprint, not by a CA: ESXi certificates are self-signed.
                    ssl_context=pinned_context(self.thumbprint) if self.thumbprint else None,
                    timeout=self.timeout,
                )
                self._instrument(si._stub)
                content = si.RetrieveContent()
            except Exception as exc:
                raise translate(exc, host=self.name, action="login") from exc
            first = self._si is None
            self._si = si
            self._content = content
            self.logins += 1
            observe_session(self.name, "login" if self.logins == 1 else "relogin", 1 if first else 0)
        return self

    def _instrument(self, stub: Any) -> None:
        original = stub.InvokeMethod

        def counted(mo: Any, info: Any, args: Any, outer: Any = None) -> Any:
            return self.timed(info.wsdlName, lambda: original(mo, info, args, outer))

        stub.InvokeMethod = counted

    def timed(self, method: str, fn: Callable[[], T]) -> T:
        """Run one SOAP request ``fn``, counting and timing it as ``method`` (with its fault, if any)."""
        stats = self.stats
        start = time.perf_counter()
        fault: str | None = None
        try:
            return fn()
        except Exception as exc:
            fault = fault_name(exc)
            raise
        finally:
            elapsed = time.perf_counter() - start
            stats.calls[method] += 1
            stats.seconds += elapsed
            for observe in stats.observers:
                observe(method, elapsed, fault)

    @property
    def connected(self) -> bool:
        return self._si is not None

    def session_cookie(self) -> str:
        """The ``Cookie`` header value of this session (logs in first if needed).

        ESXi's ``/folder`` file service accepts the API session's cookie, so
        datastore files stream over HTTP(S) without a second login. The cookie
        is a credential: never log or store it.
        """
        if self._si is None:
            self.connect()
        return str(self._si._stub.cookie)

    @property
    def content(self) -> Any:
        """The ServiceContent (logs in first if needed)."""
        if self._content is None:
            self.connect()
        return self._content

    def logout(self) -> None:
        """End the session; never raises (a dead session is already gone)."""
        with self._lock:
            if self._content is not None:
                try:
                    self._content.sessionManager.Logout()
                except Exception as exc:  # logging out of a dead session is fine
                    log.debug("logout from %s failed: %s", self.name, exc)
                observe_session(self.name, "", -1)
            self._si = self._content = None

    def call(self, action: str, fn: Callable[[], T]) -> T:
        """Run one API interaction, re-logging in once if the session expired.

        Only session expiry, and a request that could not be sent (BrokenPipeError: the pooled
        keep-alive connection was closed by the host, or cut while idle; the stub drops it, so the
        second try opens a new one) are retried here; callers decide about other transient faults,
        because a write retried blindly could run twice.
        """
        if self._content is None:
            self.connect()
        try:
            return fn()
        except BrokenPipeError:
            log.info(
                "%s on host %s: its connection was gone before the request left; sending it again",
                action,
                self.name,
            )
        except Exception as exc:
            err = translate(exc, host=self.name, action=action)
            if fault_name(exc) != "NotAuthenticated":
                raise err from exc
            log.info("session to %s expired; logging in again", self.name)
            self.connect()
        try:
            return fn()
        except Exception as exc:
            raise translate(exc, host=self.name, action=action) from exc

    def read(self, action: str, fn: Callable[[], T]) -> T:
        """Like :meth:`call`, for reads only: also retried after a lost connection or an HTTP
        error such as 503, three tries in all. Reads are idempotent, so a retry is safe; faults
        that say the request itself is wrong are never retried.

        The first retry is immediate (a pooled keep-alive connection the host closed is the
        usual cause, and a new connection cures it); the next waits with capped backoff.
        tenacity is imported only when a retry is needed: its import costs more than a whole
        quick read such as ``vm list`` on a small host.
        """
        try:
            return self.call(action, fn)
        except TransientError as exc:
            log.info("%s on host %s: %s; trying again", action, self.name, exc.message)
        from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

        @retry(
            retry=retry_if_exception(lambda e: isinstance(e, TransientError)),
            stop=stop_after_attempt(2),
            wait=wait_exponential(multiplier=0.2, max=2.0),
            reraise=True,
        )
        def attempt() -> T:
            return self.call(action, fn)

        return attempt()

    # -- reads -----------------------------------------------------------
    def host_system(self) -> Any:
        """The (only) HostSystem of a standalone host."""
        hosts = self.retrieve("HostSystem", ["name"])
        if not hosts:
            raise OperationError(f"host {self.name}: the API shows no HostSystem", code="esxi_fault")
        return hosts[0]["obj"]

    def current_time(self) -> datetime:
        """The host's clock (a cheap authenticated round trip)."""
        # A lambda, not a bound method: after a re-login self._si is a new object.
        now: datetime = self.read("read the time", lambda: self._si.CurrentTime())  # noqa: PLW0108
        return now

    def retrieve(self, type_name: str, props: list[str], *, root: Any = None) -> list[dict[str, Any]]:
        """Read ``props`` of every object of ``type_name`` in one property-collector pass.

        Returns one dict per object with the key ``obj`` (the managed object)
        and each property that is set (unset ones are absent, not None).
        The container view is always destroyed.
        """
        vim_, vmodl_ = vim(), vmodl()

        def run() -> list[dict[str, Any]]:
            content = self._content
            view = content.viewManager.CreateContainerView(
                root or content.rootFolder, [getattr(vim_, type_name)], True
            )
            try:
                spec = vmodl_.query.PropertyCollector.FilterSpec(
                    objectSet=[
                        vmodl_.query.PropertyCollector.ObjectSpec(
                            obj=view,
                            skip=True,
                            selectSet=[
                                vmodl_.query.PropertyCollector.TraversalSpec(
                                    name="view", path="view", skip=False, type=vim_.view.ContainerView
                                )
                            ],
                        )
                    ],
                    propSet=[
                        vmodl_.query.PropertyCollector.PropertySpec(
                            type=getattr(vim_, type_name), pathSet=props
                        )
                    ],
                )
                return list(self._collect(spec))
            finally:
                view.DestroyView()

        return self.read(f"list {type_name}", run)

    def retrieve_walk(self, walk: tuple[Hop, ...], props: dict[str, list[str]]) -> list[dict[str, Any]]:
        """Read ``props`` (type name → paths) of every object ``walk`` reaches from the root folder.

        One request where :meth:`retrieve` takes three (see
        :mod:`ceso.esxi.traversal`). Rows are shaped as :meth:`retrieve`'s,
        one per object of a type named in ``props``; callers tell the types
        apart by ``obj``.
        """

        def run() -> list[dict[str, Any]]:
            return list(self._collect(filter_spec(self._content.rootFolder, walk, props)))

        return self.read(f"read {', '.join(props)}", run)

    def retrieve_object(self, obj: Any, props: list[str]) -> dict[str, Any]:
        """Read ``props`` of one managed object (unset properties are absent)."""
        vmodl_ = vmodl()

        def run() -> dict[str, Any]:
            spec = vmodl_.query.PropertyCollector.FilterSpec(
                objectSet=[vmodl_.query.PropertyCollector.ObjectSpec(obj=obj, skip=False)],
                propSet=[vmodl_.query.PropertyCollector.PropertySpec(type=type(obj), pathSet=props)],
            )
            found = list(self._collect(spec))
            return found[0] if found else {"obj": obj}

        return self.read("read properties", run)

    def _collect(self, spec: Any) -> Iterator[dict[str, Any]]:
        vmodl_ = vmodl()
        pc = self._content.propertyCollector
        options = vmodl_.query.PropertyCollector.RetrieveOptions(maxObjects=PAGE_SIZE)
        result = pc.RetrievePropertiesEx([spec], options)
        while result is not None:
            for oc in result.objects or []:
                for missing in oc.missingSet or []:
                    # A lost session can come back as objects whose properties are missing for want
                    # of authentication, not as a fault: raise it, so that call() logs in again.
                    if fault_name(missing.fault) == "NotAuthenticated":
                        raise missing.fault
                row: dict[str, Any] = {"obj": oc.obj}
                for prop in oc.propSet or []:
                    row[prop.name] = prop.val
                yield row
            if not result.token:
                break
            result = pc.ContinueRetrievePropertiesEx(result.token)

    # -- tasks -----------------------------------------------------------
    def wait_task(
        self,
        task: Any,
        *,
        action: str,
        timeout: float = 1800.0,
        on_progress: Callable[[int], None] | None = None,
    ) -> Any:
        """Wait for a vSphere task; return its result or raise its translated fault.

        ``on_progress`` is called with the task's ``info.progress`` (0-100) at each poll where the
        host has set it; a task that never sets it (the simulator's) never calls it.

        Reads ``info.state/error/result`` through the property collector
        (``task.info`` breaks for tasks on non-entities such as disk copies),
        polling with capped backoff. Raises TimeoutExpiredError naming host,
        action and task after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            wanted = ["info.state", "info.error", "info.result"]
            info = self.retrieve_object(task, [*wanted, "info.progress"] if on_progress else wanted)
            state = info.get("info.state")
            if on_progress is not None and state == "running" and info.get("info.progress") is not None:
                on_progress(int(info["info.progress"]))
            if state == "success":
                return info.get("info.result")
            if state == "error":
                error = info.get("info.error")
                exc = error if isinstance(error, BaseException) else OperationError(str(error))
                raise translate(exc, host=self.name, action=action) from exc
            if time.monotonic() > deadline:
                raise TimeoutExpiredError(
                    f"{action} on host {self.name}: task {task._moId} still {state} after {timeout:.0f}s"
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    @contextmanager
    def translating(self, action: str) -> Iterator[None]:
        """Translate any foreign exception raised in the block."""
        try:
            yield
        except CesoError:
            raise
        except Exception as exc:
            raise translate(exc, host=self.name, action=action) from exc


def is_transient(exc: BaseException) -> bool:
    """True for faults worth retrying: connection loss, session expiry, HTTP 5xx."""
    return isinstance(exc, TransientError)
