"""Transports for the simulator: an in-process httpx2 client and a threaded loopback server.

The server is a small HTTP/1.1 WSGI runner on ``http.server``: bodies without a
Content-Length go out chunked, one chunk per item the app yields, so a clean end (terminating
chunk) and an abrupt drop (socket shut down mid-body) look different to the client.
"""

from __future__ import annotations

import contextlib
import io
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httpx2

from bookgen.simulator.app import SimulatedDrop

if TYPE_CHECKING:
    from bookgen.simulator.app import Simulator


def make_http_client(sim: Simulator) -> httpx2.Client:
    """An httpx2 client whose requests go straight to ``sim`` (any base URL works)."""
    return httpx2.Client(transport=httpx2.WSGITransport(app=sim.wsgi_app))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bookgen-simulator"
    sys_version = ""
    server: SimulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: never log requests (headers carry API keys)."""

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _environ(self, body: bytes) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path),
            "QUERY_STRING": query,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_LENGTH": str(len(body)),
        }
        for key, value in self.headers.items():
            name = key.upper().replace("-", "_")
            if name == "CONTENT_TYPE":
                environ[name] = value
            elif name not in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
                environ["HTTP_" + name] = value
        return environ

    def _handle(self) -> None:
        body = self._read_body()
        seen: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            seen["status"], seen["headers"] = status, headers
            return lambda data: None

        try:
            result = self.server.app(self._environ(body), start_response)
        except Exception:  # the app failed before answering
            self.send_error(500)
            return
        try:
            code, _, reason = seen["status"].partition(" ")
            self.send_response(int(code), reason)
            headers = seen["headers"]
            sized = any(k.lower() == "content-length" for k, _ in headers)
            for key, value in headers:
                self.send_header(key, value)
            if not sized:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if self.command == "HEAD":
                return
            try:
                for chunk in result:
                    if not chunk:
                        continue
                    if sized:
                        self.wfile.write(chunk)
                    else:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                if not sized:
                    self.wfile.write(b"0\r\n\r\n")
            except SimulatedDrop:
                self._drop()
            except OSError:  # the client went away
                self.close_connection = True
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def _drop(self) -> None:
        """Close the socket abruptly: no further bytes, no chunk terminator."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class SimulatorHTTPServer(ThreadingHTTPServer):
    """Threaded loopback server for a Simulator; ``shutdown()`` also closes the socket."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, sim: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.sim = sim
        self.app = sim.wsgi_app

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (reset, broken pipe) are normal; report anything else."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def shutdown(self) -> None:
        super().shutdown()
        self.server_close()


def serve(
    sim: Simulator, host: str = "127.0.0.1", port: int = 0
) -> tuple[SimulatorHTTPServer, int]:
    """Serve ``sim`` on a background thread; returns (server, port). ``server.shutdown()`` stops."""
    server = SimulatorHTTPServer(sim, host, port)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="bookgen-simulator", daemon=True
    )
    thread.start()
    return server, server.port
