"""A threaded stdlib WSGI server that can also drop a connection with a TCP reset (the fault)."""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from .app import RESET_KEY, WSGIApp


class _Handler(WSGIRequestHandler):
    verbose = False

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.verbose:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def handle(self) -> None:
        """As WSGIRequestHandler.handle, plus the reset and a multithreaded environ."""
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        environ = self.get_environ()
        output: Any = self.wfile  # a BufferedIOBase; typeshed wants IO[bytes]
        handler = ServerHandler(self.rfile, output, self.get_stderr(), environ, multithread=True)
        handler.request_handler = self  # type: ignore[attr-defined]
        handler.run(self.server.get_app())  # type: ignore[attr-defined]
        if environ.get(RESET_KEY):
            self.server.reset_on_close(self.connection)  # type: ignore[attr-defined]


class SimServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], verbose: bool = False) -> None:
        handler = type("Handler", (_Handler,), {"verbose": verbose})
        super().__init__(address, handler)
        self._resets: set[socket.socket] = set()
        self._resets_lock = threading.Lock()

    def reset_on_close(self, sock: socket.socket) -> None:
        with self._resets_lock:
            self._resets.add(sock)

    def shutdown_request(self, request: Any) -> None:
        with self._resets_lock:
            reset = request in self._resets
            self._resets.discard(request)
        if not reset:
            super().shutdown_request(request)
            return
        with contextlib.suppress(OSError):  # linger 0: close() sends RST instead of FIN
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_request(request)


def make_server(host: str, port: int, app: WSGIApp, verbose: bool = False) -> SimServer:
    server = SimServer((host, port), verbose=verbose)
    server.set_app(app)
    return server
