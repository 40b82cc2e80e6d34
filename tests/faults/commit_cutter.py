"""A TCP relay between a service and its PostgreSQL that can lose one commit's answer.

Armed, it lets the next ``COMMIT`` (or the next batch of a writer, named by a marker its bytes
carry) through to the server, waits for the server's answer (the transaction is then
recorded), and instead of passing the answer on it cuts that connection: the writer sent a
commit that happened and never heard so. ``cut`` is set at that moment, so
a test can stop PostgreSQL right then (a known point, not a sleep)."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable

from tools.devservers import free_port

HOST = "127.0.0.1"


class CommitCutter:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.cut = threading.Event()
        self.on_cut: Callable[[], None] | None = None
        self._armed = False
        self._marker = b"COMMIT"
        self._lock = threading.Lock()
        self._server = socket.create_server((HOST, self.port))
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []

    def url(self, database: str) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{database}"

    def arm(self, marker: bytes = b"COMMIT") -> None:
        """Lose the answer to the next message any connection sends with ``marker`` in it: a
        COMMIT, or a batch of the writer's by a topic of its events (the recorder sends a
        batch as one statement in autocommit, committed as it is answered: no COMMIT)."""
        with self._lock:
            self.cut.clear()
            self._marker = marker
            self._armed = True

    def start(self) -> None:
        thread = threading.Thread(target=self._accept, name="commit-cutter", daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._server.close()
        for s in list(self._sockets):
            with contextlib.suppress(OSError):
                s.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((HOST, self.upstream_port), timeout=2)
            except OSError:
                client.close()  # the server is down: so is the way to it
                continue
            upstream.settimeout(None)
            self._sockets += [client, upstream]
            thread = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        cutting = False  # this connection's COMMIT went up: its answer is not passed down
        try:
            while True:
                readable, _, _ = select.select([client, upstream], [], [], 0.5)
                if self._closed:
                    return
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    if source is client:
                        with self._lock:
                            if self._armed and self._marker in data:
                                self._armed, cutting = False, True
                        upstream.sendall(data)
                    elif cutting:
                        # The server answered the COMMIT: it is recorded. Nobody hears it.
                        if self.on_cut is not None:
                            self.on_cut()
                        self.cut.set()
                        return
                    else:
                        client.sendall(data)
        except OSError:
            return
        finally:
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
