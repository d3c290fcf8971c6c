"""Test helper: gcp-storage-emulator's GCS JSON API served on loopback, in this process.

The emulator's request handler and in-memory storage run behind an ``HTTPServer`` that
this helper binds and closes itself, so that a test can stop the server (open connections
reset, new ones refused) and start it again on the same port with every object still
there, as when a real endpoint comes back.

The emulator's own ``create_server`` serves one connection at a time: one idle connection
(a proxy's, a pooled client's) would stall it. Here each connection gets a thread and the
emulator's handlers run one at a time under a lock (its storage is not thread-safe).

Tests read what the emulator holds over HTTP with urllib: an independent client, not
gcsfs and not the store.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

from gcp_storage_emulator.server import RequestHandler
from gcp_storage_emulator.storage import Storage

from support.net import free_port

log = logging.getLogger("tests.gcs_emulator")


def _one_at_a_time(handle: Callable[[Any], None]) -> Callable[[_SerialHandler], None]:
    """``handle`` (an emulator ``do_*``) under the server's lock: its storage is not
    thread-safe."""

    def serial(self: _SerialHandler) -> None:
        with self.server.serial:
            handle(self)

    return serial


class _SerialHandler(RequestHandler):
    """The emulator's handler, one request at a time (after the request line is in)."""

    server: _EmulatorHTTPServer

    do_GET = _one_at_a_time(RequestHandler.do_GET)
    do_POST = _one_at_a_time(RequestHandler.do_POST)
    do_PUT = _one_at_a_time(RequestHandler.do_PUT)
    do_DELETE = _one_at_a_time(RequestHandler.do_DELETE)
    do_PATCH = _one_at_a_time(RequestHandler.do_PATCH)


class _EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any) -> None:
        super().__init__(address, handler)
        self.serial = threading.Lock()
        self.open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self.open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self.open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A request cut mid-body (the fault tests do that on purpose) ends here.
        log.debug("gcs emulator: request from %s failed", client_address, exc_info=True)

    def drop_connections(self) -> None:
        with self._open_lock:
            sockets = list(self.open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class GcsEmulator:
    """The GCS emulator on 127.0.0.1, in memory; its objects survive stop()/start()."""

    def __init__(self) -> None:
        self.port = free_port()
        self.storage = Storage(use_memory_fs=True)
        self._httpd: _EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> None:
        handler = partial(_SerialHandler, self.storage)
        deadline = time.monotonic() + 5
        while True:
            try:
                httpd = _EmulatorHTTPServer(("127.0.0.1", self.port), handler)
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="gcs-emulator",
            daemon=True,
        )
        thread.start()
        self._httpd, self._thread = httpd, thread

    def stop(self) -> None:
        """Stop serving: open connections are reset, new ones refused."""
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            httpd.drop_connections()
        if thread is not None:
            thread.join(5)

    # -------------------------------------------------------------- direct access

    def _call(self, method: str, path: str, body: bytes | None = None, **headers: str) -> Any:
        request = urllib.request.Request(
            self.endpoint + path, data=body, method=method, headers=headers
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def create_bucket(self, name: str) -> None:
        existing = self._call("GET", "/storage/v1/b?project=test").get("items") or []
        if name not in {bucket["name"] for bucket in existing}:
            body = json.dumps({"name": name}).encode()
            self._call(
                "POST", "/storage/v1/b?project=test", body, **{"Content-Type": "application/json"}
            )

    def put(self, bucket: str, name: str, data: bytes) -> None:
        """Upload an object straight to the emulator (a single media upload)."""
        self._call(
            "POST",
            f"/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quote(name, safe='')}",
            data,
            **{"Content-Type": "application/octet-stream"},
        )

    def listing(self, bucket: str) -> dict[str, dict[str, Any]]:
        """Every live object of a bucket, by name, as the JSON API describes it."""
        items = self._call("GET", f"/storage/v1/b/{bucket}/o").get("items") or []
        return {item["name"]: item for item in items}

    def objects(self, bucket: str) -> dict[str, int]:
        """Name → size of every live object of a bucket."""
        return {name: int(item["size"]) for name, item in self.listing(bucket).items()}

    def content(self, bucket: str, name: str) -> bytes:
        request = urllib.request.Request(
            f"{self.endpoint}/download/storage/v1/b/{bucket}/o/{quote(name, safe='')}?alt=media"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            data: bytes = response.read()
        return data
