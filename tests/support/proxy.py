"""Loopback TCP proxies for fault injection: :class:`FaultProxy` cuts, black-holes and restores a
service; :class:`FlakyProxy` records requests and cuts responses after so many bytes."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class FlakyProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``; the first ``cuts`` connections are closed after
    ``cut_after`` bytes of response. ``requests`` keeps the first 4 KiB each client sent."""

    upstream: tuple[str, int]
    cut_after: int = 0
    cuts: int = 0
    requests: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                cut = self.cuts > 0
                if cut:
                    self.cuts -= 1
            threading.Thread(target=self._serve, args=(client, cut), daemon=True).start()

    def _serve(self, client: socket.socket, cut: bool) -> None:
        upstream = socket.create_connection(self.upstream)
        first = client.recv(4096)
        self.requests.append(first)
        upstream.sendall(first)

        def pump_up() -> None:
            try:
                while data := client.recv(65536):
                    upstream.sendall(data)
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    upstream.shutdown(socket.SHUT_WR)

        threading.Thread(target=pump_up, daemon=True).start()
        sent = 0
        try:
            while data := upstream.recv(65536):
                if cut and sent + len(data) >= self.cut_after:
                    client.sendall(data[: max(0, self.cut_after - sent)])
                    break
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            # shutdown first: close() alone sends no FIN while the other thread sits in recv().
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self._stop = True
        self._server.close()


class FaultProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``, until told otherwise:

    * :meth:`cut`: every open connection is reset, and new ones are reset as soon as they are
      accepted (the service "went away" for whoever uses it; the shared server is untouched);
    * :meth:`blackhole`: connections are still accepted and read, but nothing is forwarded
      either way and nothing is answered (a host that hangs); open ones fall silent too;
    * :meth:`slow`: every chunk forwarded either way waits ``delay_s`` first, and the bytes of a
      connection are held to ``rate`` bytes a second (a host far away or on a thin link);
    * :meth:`restore`: new connections are forwarded again at full speed (those opened while
      black-holed stay silent);
    * :meth:`trip`: a cut once so many bytes have gone to clients (in the middle of a transfer),
      restored after a given outage.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._lock = threading.Lock()
        self._state = "open"  # open | cut | blackhole
        self._delay_s = 0.0
        self._rate: float | None = None
        self.chunks = 0  # forwarded either way since the start: a slow host was really met
        self._closed = False
        self._sockets: list[socket.socket] = []
        self._trip: tuple[int, float | None] | None = None  # bytes to clients left, outage
        self.tripped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def trip(self, after_bytes: int, outage_s: float | None) -> None:
        """:meth:`cut` once ``after_bytes`` more bytes have gone to clients (mid-transfer, wherever it
        is), then :meth:`restore` after ``outage_s`` (None: stay cut). :attr:`tripped` is set at the cut."""
        with self._lock:
            self._trip = (after_bytes, outage_s)
            self.tripped.clear()

    def _count(self, n: int) -> None:
        with self._lock:
            if self._trip is None:
                return
            left, outage_s = self._trip
            self._trip = (left - n, outage_s) if left > n else None
        if left > n:
            return
        self.cut()
        self.tripped.set()
        if outage_s is not None:
            timer = threading.Timer(outage_s, self.restore)
            timer.daemon = True
            timer.start()

    def cut(self) -> None:
        with self._lock:
            self._state = "cut"
            doomed, self._sockets = self._sockets, []
        for sock in doomed:
            _reset(sock)

    def blackhole(self) -> None:
        with self._lock:
            self._state = "blackhole"

    def slow(self, delay_s: float, rate: float | None = None) -> None:
        """Forward again, each chunk ``delay_s`` late and at most ``rate`` bytes a second."""
        with self._lock:
            self._state = "open"
            self._delay_s, self._rate = delay_s, rate

    def restore(self) -> None:
        with self._lock:
            self._state = "open"
            self._delay_s, self._rate = 0.0, None

    def close(self) -> None:
        """Stop accepting and reset every connection."""
        self._closed = True
        self.cut()
        self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                state = self._state
                if state != "cut":
                    self._sockets.append(client)
            if state == "cut":
                _reset(client)
            elif state == "blackhole":
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
            else:
                threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    @staticmethod
    def _swallow(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while sock.recv(65536):
                pass

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _reset(client)
            return
        upstream.settimeout(None)
        with self._lock:
            if self._state == "cut":
                _reset(client)
                _reset(upstream)
                return
            self._sockets.append(upstream)
        threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
        self._pump(upstream, client, to_client=True)

    def _pump(self, src: socket.socket, dst: socket.socket, *, to_client: bool = False) -> None:
        try:
            while data := src.recv(65536):
                if self._state == "blackhole":
                    continue  # read and dropped: the other side hears nothing
                self.chunks += 1
                delay, rate = self._delay_s, self._rate
                if rate:
                    delay += len(data) / rate
                if delay:
                    time.sleep(delay)
                dst.sendall(data)
                if to_client:
                    self._count(len(data))
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (linger 0), so the peer sees the connection break, not end."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
