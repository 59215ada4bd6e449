"""A small HTTP endpoint for metrics, health and status.

Routes (GET or HEAD):

* ``/metrics``: Prometheus exposition of the given registry.
* ``/healthz``: 200 ``ok`` while the process is alive.
* ``/readyz``: 200 with the reason when the ``ready`` callback says ready,
  503 with the reason otherwise.
* ``/status``: the ``status`` callback's mapping as JSON (``syncd status``).
* ``POST /pause``, ``POST /resume``: the ``control`` callback's answer as JSON
  (who may ask, and what it answers: :mod:`syncd.service.control`); 405 for
  any other method. Without a ``control`` callback they are unknown paths.
* anything else: 404.

It runs a stdlib WSGI server on background daemon threads, independent of
the event loop, so a scrape still answers while the loop is busy or stuck.
**The callbacks run on a server thread**, not the event loop: they must only
read simple attributes (or thread-safe state) and return quickly. A callback
that raises gets a one-line 500; the server keeps serving.

Clients misbehave: a scanner opens hundreds of connections, a slow one sends
half a request line and stalls, another hangs up mid-request. The stdlib
server prints a traceback to stderr for each (measured: 113 of them in the
JSON log under a 200-connection flood). Here each failed connection is
counted instead, and reported as one ``http_client_error`` warning per
``error_log_interval`` with the count and the error types.
"""

from __future__ import annotations

import json
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import CollectorRegistry, make_wsgi_app

from syncd.errors import ConfigError
from syncd.logs import get_logger
from syncd.metrics import WithoutCreated

#: ``control(action, environ) -> (HTTP status line, JSON body)``, for POST /pause and /resume.
Control = Callable[[str, WSGIEnvironment], tuple[str, Mapping[str, object]]]
#: The paths ``control`` answers, and the action each names.
CONTROL_PATHS = {"/pause": "pause", "/resume": "resume"}

log = get_logger(__name__)

DEFAULT_HOST = "127.0.0.1"
#: Seconds between two ``http_client_error`` lines, however many clients fail.
ERROR_LOG_INTERVAL = 60.0
#: Seconds a client may stay silent mid-request before it is disconnected.
CLIENT_TIMEOUT = 10.0
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


class ClientErrors:
    """Failed client connections, counted; one ``http_client_error`` per interval. Thread-safe."""

    def __init__(self, interval: float = ERROR_LOG_INTERVAL) -> None:
        """Log at most once per ``interval`` seconds (the first failure at once)."""
        self._interval = interval
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._logged_at = -float("inf")
        self.total = 0

    def record(self, error_type: str) -> None:
        """Count one failed connection; log the counts if the interval has passed."""
        with self._lock:
            self.total += 1
            self._counts[error_type] = self._counts.get(error_type, 0) + 1
            now = time.monotonic()
            if now - self._logged_at < self._interval:
                return
            self._logged_at = now
            counts, self._counts = self._counts, {}
        self._log(counts)

    def flush(self) -> None:
        """Log what was counted since the last line (at stop)."""
        with self._lock:
            counts, self._counts = self._counts, {}
        if counts:
            self._log(counts)

    def _log(self, counts: dict[str, int]) -> None:
        # Types only: a client's bytes and an exception's text stay out of the log.
        log.warning(
            "http_client_error",
            count=sum(counts.values()),
            error_types=dict(sorted(counts.items())),
            interval=self._interval,
        )


class _CountingStderr:
    """What wsgiref's handler takes for stderr: the traceback it writes becomes one count."""

    def __init__(self, errors: ClientErrors) -> None:
        self._errors = errors
        self._last = ""

    def write(self, text: str) -> int:
        """Keep the last line of the traceback being written."""
        # The traceback's last line is "ErrorType: message"; only the type is kept.
        for line in text.splitlines():
            if line.strip():
                self._last = line.strip()
        return len(text)

    def flush(self) -> None:
        """The traceback is complete: count it."""
        if self._last:
            self._errors.record(self._last.partition(":")[0])
            self._last = ""


class _QuietHandler(WSGIRequestHandler):
    """Request handler that neither logs requests to stderr nor waits forever."""

    # A client that connects and sends nothing must not hold a thread forever.
    timeout = CLIENT_TIMEOUT
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Drop the per-request access log line."""

    def get_stderr(self) -> Any:
        """Where wsgiref writes a failed response's traceback: counted, not printed."""
        return _CountingStderr(self.server.client_errors)


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    """Threaded WSGI server: one slow client does not block probes."""

    daemon_threads = True
    # socketserver's default backlog of 5 drops connections under a burst of scrapes.
    request_queue_size = 128
    client_errors = ClientErrors()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection failed (timeout, reset, malformed): count it; no traceback on stderr."""
        exc = sys.exc_info()[1]
        self.client_errors.record(type(exc).__name__ if exc is not None else "unknown")

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
        error_log_interval: float = ERROR_LOG_INTERVAL,
        client_timeout: float = CLIENT_TIMEOUT,
        control: Control | None = None,
    ) -> None:
        """Prepare to serve on ``listen`` (``"host:port"``; port 0 picks a free one).

        ``ready`` and ``status`` default to "always ready" and an empty
        object; without ``control``, /pause and /resume are unknown paths.
        Nothing is bound until :meth:`start`. Failed client
        connections are logged at most once per ``error_log_interval`` seconds;
        a client silent for ``client_timeout`` seconds is disconnected.
        """
        self._host, self._port = parse_listen(listen)
        self._metrics_app = make_wsgi_app(WithoutCreated(registry))
        self._ready = ready or (lambda: (True, "ready"))
        self._status = status or dict
        self._control = control
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: Failed client connections (see the module docstring).
        self.client_errors = ClientErrors(error_log_interval)
        # A handler class per endpoint: the stdlib reads the timeout from the class.
        self._handler = type("_Handler", (_QuietHandler,), {"timeout": client_timeout})

    def start(self) -> None:
        """Bind and start serving; raises ``OSError`` naming the address if it can't bind."""
        with self._lock:
            if self._server is not None:
                return
            server_class = _Server6 if ":" in self._host else _Server
            try:
                server = make_server(self._host, self._port, self._app, server_class, self._handler)
            except OSError as exc:
                raise OSError(
                    exc.errno,
                    f"cannot listen on {self._host}:{self._port}: {exc.strerror or exc}",
                ) from exc
            server.client_errors = self.client_errors
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
        self.client_errors.flush()

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
        if path in CONTROL_PATHS and self._control is not None:
            return self._control_app(CONTROL_PATHS[path], environ, start_response)
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

    def _control_app(
        self, action: str, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            # State changes only by POST: a crawler or a prefetching browser GETs.
            headers = [*_TEXT, ("Allow", "POST")]
            return _reply(start_response, "405 Method Not Allowed", "use POST\n", headers)
        assert self._control is not None
        try:
            code, answer = self._control(action, environ)
        except Exception as exc:
            log.warning("http_handler_failed", path=f"/{action}", error_type=type(exc).__name__)
            code, answer = "500 Internal Server Error", {"error": type(exc).__name__}
        return _reply(start_response, code, json.dumps(dict(answer)) + "\n", _JSON)


def serve(
    listen: str,
    registry: CollectorRegistry,
    *,
    ready: Callable[[], tuple[bool, str]] | None = None,
    status: Callable[[], Mapping[str, object]] | None = None,
    required: bool = False,
    control: Control | None = None,
) -> HttpEndpoint | None:
    """A started :class:`HttpEndpoint`; ``None`` if ``listen`` cannot be bound and not ``required``.

    Raises:
        ConfigError: naming ``metrics_listen``, when ``required`` (the daemon) and
            the address cannot be bound.
    """
    http = HttpEndpoint(listen, registry, ready=ready, status=status, control=control)
    try:
        http.start()
    except OSError as exc:
        if required:
            raise ConfigError(f"metrics_listen: {exc}") from None
        # In an application, a taken port must not stop it starting.
        log.warning("metrics_endpoint_unavailable", error=str(exc))
        return None
    return http


def _reply(
    start_response: StartResponse,
    status: str,
    body: str,
    headers: list[tuple[str, str]] = _TEXT,
) -> list[bytes]:
    data = body.encode()
    start_response(status, [*headers, ("Content-Length", str(len(data)))])
    return [data]
