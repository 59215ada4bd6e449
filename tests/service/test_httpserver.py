"""HttpEndpoint: real HTTP requests against a server on a free port."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request

import pytest

from syncd.metrics import Metrics
from syncd.service import httpserver
from syncd.service.httpserver import ClientErrors, HttpEndpoint, parse_listen


def get(url: str) -> tuple[int, str, str]:
    """GET ``url``: (status, content type, body), for error statuses too."""
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers.get("Content-Type", ""), err.read().decode()


def hung_up(client: socket.socket, within: float) -> bool:
    """Whether the server closes ``client`` within ``within`` s (whatever it sends first)."""
    client.settimeout(within)
    try:
        while client.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


@pytest.fixture
def metrics() -> Metrics:
    """A fresh metrics registry."""
    return Metrics()


def test_routes(metrics: Metrics) -> None:
    metrics.applied.labels(table="user").inc(3)
    state = {"ready": True}

    def ready() -> tuple[bool, str]:
        return (True, "secondary up") if state["ready"] else (False, "secondary down")

    with HttpEndpoint(
        "127.0.0.1:0", metrics.registry, ready=ready, status=lambda: {"applied": 3, "up": True}
    ) as http:
        host, port = http.address
        assert host == "127.0.0.1" and port > 0
        assert http.url == f"http://127.0.0.1:{port}"

        code, _, body = get(http.url + "/metrics")
        assert code == 200
        assert 'syncd_operations_applied_total{secondary="secondary",table="user"} 3.0' in body
        assert "_created" not in body  # half the series, read by nothing
        assert "_created" not in get(http.url + "/metrics?name[]=syncd_operations_applied_total")[2]

        assert get(http.url + "/healthz")[::2] == (200, "ok\n")

        assert get(http.url + "/readyz")[::2] == (200, "secondary up\n")
        state["ready"] = False
        assert get(http.url + "/readyz")[::2] == (503, "secondary down\n")

        code, ctype, body = get(http.url + "/status")
        assert (code, ctype) == (200, "application/json")
        assert json.loads(body) == {"applied": 3, "up": True}

        assert get(http.url + "/nope")[0] == 404


def test_defaults_are_ready_and_empty_status(metrics: Metrics) -> None:
    with HttpEndpoint("127.0.0.1:0", metrics.registry) as http:
        assert get(http.url + "/readyz")[0] == 200
        assert json.loads(get(http.url + "/status")[2]) == {}


def test_raising_callback_gives_500_and_server_keeps_serving(metrics: Metrics) -> None:
    def ready() -> tuple[bool, str]:
        raise RuntimeError("password=s3cret")

    def status() -> dict[str, object]:
        raise ValueError("boom")

    with HttpEndpoint("127.0.0.1:0", metrics.registry, ready=ready, status=status) as http:
        code, _, body = get(http.url + "/readyz")
        assert code == 500
        assert body == "internal error: RuntimeError\n"
        assert "s3cret" not in body and "Traceback" not in body
        assert get(http.url + "/status")[0] == 500
        assert get(http.url + "/healthz")[0] == 200
        assert get(http.url + "/readyz")[0] == 500


def test_stop_is_idempotent_and_frees_the_port(metrics: Metrics) -> None:
    http = HttpEndpoint("127.0.0.1:0", metrics.registry)
    http.stop()  # never started: no-op
    http.start()
    port = http.address[1]
    http.stop()
    http.stop()
    with pytest.raises(RuntimeError):
        _ = http.address

    with HttpEndpoint(f"127.0.0.1:{port}", metrics.registry) as again:
        assert again.address[1] == port
        assert get(again.url + "/healthz")[0] == 200


def test_taken_port_raises_oserror_naming_the_address(metrics: Metrics) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        http = HttpEndpoint(f"127.0.0.1:{port}", metrics.registry)
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            http.start()
        http.stop()  # harmless after a failed start


def test_parse_listen() -> None:
    assert parse_listen("0.0.0.0:9187") == ("0.0.0.0", 9187)
    assert parse_listen(":9187") == ("127.0.0.1", 9187)
    assert parse_listen("9187") == ("127.0.0.1", 9187)
    assert parse_listen("[::1]:0") == ("::1", 0)
    with pytest.raises(ValueError, match="port"):
        parse_listen("localhost:http")
    with pytest.raises(ValueError, match="range"):
        parse_listen("127.0.0.1:70000")


# An endpoint in its own process, logging JSON to stderr as the daemon does.
_SERVE = """
import sys
from syncd.logs import configure_logging
from syncd.metrics import Metrics
from syncd.service.httpserver import HttpEndpoint
configure_logging("info", json=True, stream=sys.stderr)
http = HttpEndpoint("127.0.0.1:0", Metrics().registry, client_timeout=1.0, error_log_interval=60)
http.start()
print(http.url, flush=True)
sys.stdin.read()
http.stop()
"""


@pytest.mark.timeout(60)
def test_a_flood_of_bad_clients_leaves_no_traceback_and_one_counted_line() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        host, port = url.removeprefix("http://").split(":")
        clients = []
        for n in range(200):
            client = socket.create_connection((host, int(port)), timeout=5)
            if n % 3 == 0:
                client.sendall(b"GET /metr")  # half a request line, then silence
            elif n % 3 == 1:
                client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # headers never end
            clients.append(client)
        for client in clients[::5]:  # hang up mid-request, with a reset
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        started = time.monotonic()
        code, _, body = get(url + "/metrics")  # answered during the flood
        assert code == 200 and "syncd_operations_applied_total" in body
        assert time.monotonic() - started < 2
        for client in clients:  # every silent client times out (client_timeout=1s)
            if client.fileno() != -1:
                assert hung_up(client, within=30)
        assert get(url + "/healthz")[0] == 200
        for client in clients:
            client.close()
    finally:
        _, stderr = proc.communicate("", timeout=30)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    lines = [json.loads(line) for line in stderr.splitlines()]
    errors = [e for e in lines if e["event"] == "http_client_error"]
    assert [e["event"] for e in lines if e not in errors] == ["http_listening"]
    # The first failure at once, the rest counted and logged at stop.
    assert 1 <= len(errors) <= 3
    assert sum(e["count"] for e in errors) == 200
    assert {e["level"] for e in errors} == {"warning"}
    kinds = set().union(*(e["error_types"] for e in errors))
    assert kinds <= {"TimeoutError", "ConnectionResetError", "BrokenPipeError"}


def test_client_errors_are_logged_once_per_interval_with_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logged: list[dict[str, object]] = []
    monkeypatch.setattr(
        httpserver.log, "warning", lambda event, **fields: logged.append({"event": event, **fields})
    )
    now = [100.0]
    monkeypatch.setattr(httpserver.time, "monotonic", lambda: now[0])
    errors = ClientErrors(interval=60)
    errors.record("TimeoutError")  # the first one at once
    for _ in range(5):
        errors.record("TimeoutError")
    errors.record("ConnectionResetError")
    assert [entry["count"] for entry in logged] == [1]
    now[0] += 61
    errors.record("TimeoutError")
    assert logged[1]["count"] == 7
    assert logged[1]["error_types"] == {"ConnectionResetError": 1, "TimeoutError": 6}
    errors.record("BrokenPipeError")
    errors.flush()  # at stop: what is left
    errors.flush()  # nothing more
    assert [entry["count"] for entry in logged] == [1, 7, 1]
    assert errors.total == 9


def test_a_traceback_wsgiref_writes_becomes_a_count() -> None:
    errors = ClientErrors(interval=60)
    sink = httpserver._CountingStderr(errors)
    try:
        raise TimeoutError("timed out, with a client's bytes: GET /secret")
    except TimeoutError as exc:
        traceback.print_exception(exc, file=sink)  # what wsgiref's log_exception does
    sink.flush()
    assert errors.total == 1
