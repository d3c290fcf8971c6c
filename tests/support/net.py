"""Test helpers for faults on the wire: a free loopback port, and a TCP proxy that can cut
connections.

The proxy sits between s3fs and moto (or gcsfs and the GCS emulator) so that a test can
make "the server go away" at an exact point of a request (after N bytes of it went
upstream), or answer like a failing gateway, deterministically.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports: each is held while the next is asked for, as
    :func:`free_port` called twice may hand out the same port (Ray refuses a port given to
    two of its components)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


class CuttingProxy:
    """Forwards TCP to an upstream; can cut connections mid-request and go away entirely.

    ``cut_after``: once a connection has sent this many bytes upstream, both sides are reset
    (SO_LINGER 0) and, with ``go_away``, the proxy stops listening: connections are refused,
    as when a server dies mid-write. ``cuts`` bounds how many connections are cut.
    ``reply``: the first ``replies`` connections get this raw HTTP response once their
    request is read whole (headers and Content-Length body), as from a failing gateway.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.cut_after: int | None = None
        self.cuts = 0
        self.go_away = False
        self.cut_count = 0
        self.connections = 0
        self.reply: bytes | None = None
        self.replies = 0
        self.replied = 0
        self.listening = threading.Event()
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self.listening.set()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        self.listening.clear()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Wake a thread blocked in recv() on it (close() alone does not, and the socket
        # would live on, never reset, until the peer gives up); SHUT_RD sends no FIN.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)
        sock.close()

    def _answer(self, client: socket.socket) -> bool:
        """Read one whole request and send the canned reply, if one is due."""
        with self._lock:
            if self.reply is None or self.replied >= self.replies:
                return False
            self.replied += 1
            reply = self.reply
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = client.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(body) < length and (chunk := client.recv(65536)):
                body += chunk
            client.sendall(reply)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)
        client.close()
        return True

    def _serve(self, client: socket.socket) -> None:
        if self._answer(client):
            return
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        done = threading.Event()

        def down() -> None:  # upstream -> client
            try:
                while chunk := upstream.recv(65536):
                    client.sendall(chunk)
            except OSError:
                pass
            done.set()

        threading.Thread(target=down, daemon=True).start()
        sent = 0
        try:
            while chunk := client.recv(65536):
                with self._lock:
                    cutting = self.cut_after is not None and self.cut_count < self.cuts
                if cutting and self.cut_after is not None and sent + len(chunk) >= self.cut_after:
                    head = chunk[: max(0, self.cut_after - sent)]
                    if head:
                        upstream.sendall(head)
                    with self._lock:
                        self.cut_count += 1
                    if self.go_away:
                        self.stop()
                    self._reset(upstream)
                    self._reset(client)
                    return
                upstream.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        done.wait(5)
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.close()


def come_back_after_cut(proxy: CuttingProxy, down_seconds: float = 0.3) -> threading.Thread:
    """A started thread that restarts ``proxy`` once it has cut a request and stayed
    down for ``down_seconds`` (the first retries may be refused too); join it after."""

    def come_back() -> None:
        while proxy.cut_count == 0:
            time.sleep(0.01)
        time.sleep(down_seconds)
        proxy.start()

    thread = threading.Thread(target=come_back)
    thread.start()
    return thread
