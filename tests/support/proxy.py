"""A loopback TCP proxy for fault injection: it records requests and can cut connections."""

from __future__ import annotations

import contextlib
import socket
import threading
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


class BlackholeProxy:
    """Forwards 127.0.0.1:<port> to ``upstream`` until :meth:`blackhole`; from then on it still
    accepts connections and reads what clients send, but forwards nothing either way and never
    answers (a host that hangs), until :meth:`restore`. Connections opened while black-holed stay
    silent; new ones after :meth:`restore` are forwarded again."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._holed = threading.Event()
        self._closed = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def blackhole(self) -> None:
        self._holed.set()

    def restore(self) -> None:
        self._holed.clear()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self._track(client)
            holed = self._holed.is_set()
            threading.Thread(target=self._serve, args=(client, holed), daemon=True).start()

    def _swallow(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while sock.recv(65536):
                pass

    def _serve(self, client: socket.socket, holed: bool) -> None:
        if holed:
            self._swallow(client)
            return
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        self._track(upstream)

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    if self._holed.is_set():
                        continue  # read and dropped: the other side hears nothing
                    dst.sendall(data)
            except OSError:
                pass

        threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
        pump(upstream, client)

    def close(self) -> None:
        """Stop accepting and close every connection (clients then see a reset or EOF)."""
        self._closed = True
        self._server.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
