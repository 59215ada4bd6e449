"""A small HTTP endpoint for metrics, health and status.

Routes (GET or HEAD):

* ``/metrics``: Prometheus exposition of the given registry.
* ``/healthz``: 200 ``ok`` while the process is alive.
* ``/readyz``: 200 with the reason when the ``ready`` callback says ready,
  503 with the reason otherwise.
* ``/status``: the ``status`` callback's mapping as JSON (``syncd status``).
* anything else: 404.

It runs a stdlib WSGI server on background daemon threads, independent of
the event loop, so a scrape still answers while the loop is busy or stuck.
**The callbacks run on a server thread**, not the event loop: they must only
read simple attributes (or thread-safe state) and return quickly. A callback
that raises gets a one-line 500; the server keeps serving.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import CollectorRegistry, make_wsgi_app

from syncd.logs import get_logger

log = get_logger(__name__)

DEFAULT_HOST = "127.0.0.1"
_TEXT = [("Content-Type", "text/plain; charset=utf-8")]
_JSON = [("Content-Type", "application/json")]


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``"host:port"`` (``"[::1]:port"``, ``":port"`` or ``"port"``) into parts.

    An empty host means 127.0.0.1: exposing the endpoint beyond the machine
    must be a deliberate choice. Raises ``ValueError`` on a bad port.
    """
    host, sep, port = listen.strip().rpartition(":")
    if not sep:
        host, port = "", listen.strip()
    host = host.strip("[]") or DEFAULT_HOST
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"invalid listen address {listen!r}: port must be a number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"invalid listen address {listen!r}: port out of range")
    return host, number


class _QuietHandler(WSGIRequestHandler):
    """Request handler that neither logs requests to stderr nor waits forever."""

    # A client that connects and sends nothing must not hold a thread forever.
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        """Drop the per-request access log line."""


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    """Threaded WSGI server: one slow client does not block probes."""

    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), which
        # can stall for seconds; the server name is not needed here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
        self.setup_environ()


class _Server6(_Server):
    address_family = socket.AF_INET6


class HttpEndpoint:
    """Serve /metrics, /healthz, /readyz and /status on a background thread."""

    def __init__(
        self,
        listen: str,
        registry: CollectorRegistry,
        *,
        ready: Callable[[], tuple[bool, str]] | None = None,
        status: Callable[[], Mapping[str, object]] | None = None,
    ) -> None:
        """Prepare to serve on ``listen`` (``"host:port"``; port 0 picks a free one).

        ``ready`` and ``status`` default to "always ready" and an empty
        object. Nothing is bound until :meth:`start`.
        """
        self._host, self._port = parse_listen(listen)
        self._metrics_app = make_wsgi_app(registry)
        self._ready = ready or (lambda: (True, "ready"))
        self._status = status or dict
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Bind and start serving; raises ``OSError`` naming the address if it can't bind."""
        with self._lock:
            if self._server is not None:
                return
            server_class = _Server6 if ":" in self._host else _Server
            try:
                server = make_server(self._host, self._port, self._app, server_class, _QuietHandler)
            except OSError as exc:
                raise OSError(
                    exc.errno,
                    f"cannot listen on {self._host}:{self._port}: {exc.strerror or exc}",
                ) from exc
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},  # how long stop() may wait
                name=f"syncd-http-{server.server_port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
        log.info("http_listening", url=self.url)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and release the port; does nothing if not running."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        if thread is not None:
            thread.join(timeout)
        server.server_close()

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``; raises ``RuntimeError`` before :meth:`start`."""
        server = self._server
        if server is None:
            raise RuntimeError("HttpEndpoint is not started")
        host, port = server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """Base URL, like ``http://127.0.0.1:9187``."""
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def __enter__(self) -> HttpEndpoint:
        """Start serving."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving."""
        self.stop()

    # -- request handling (server threads) ------------------------------------

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _reply(start_response, "405 Method Not Allowed", "method not allowed\n")
        try:
            if path == "/metrics":
                # Materialise here so a failing collector lands in our except.
                return list(self._metrics_app(environ, start_response))
            if path == "/healthz":
                return _reply(start_response, "200 OK", "ok\n")
            if path == "/readyz":
                ok, reason = self._ready()
                code = "200 OK" if ok else "503 Service Unavailable"
                return _reply(start_response, code, f"{reason}\n")
            if path == "/status":
                body = json.dumps(dict(self._status()), default=str, sort_keys=True)
                return _reply(start_response, "200 OK", body + "\n", _JSON)
        except Exception as exc:
            # The type only: a message could carry record data, and a
            # traceback in a response body helps nobody.
            log.warning("http_handler_failed", path=path, error_type=type(exc).__name__)
            return _reply(
                start_response,
                "500 Internal Server Error",
                f"internal error: {type(exc).__name__}\n",
            )
        return _reply(start_response, "404 Not Found", "not found\n")


def _reply(
    start_response: StartResponse,
    status: str,
    body: str,
    headers: list[tuple[str, str]] = _TEXT,
) -> list[bytes]:
    data = body.encode()
    start_response(status, [*headers, ("Content-Length", str(len(data)))])
    return [data]
