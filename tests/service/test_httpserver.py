"""HttpEndpoint: real HTTP requests against a server on a free port."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest

from syncd.metrics import Metrics
from syncd.service.httpserver import HttpEndpoint, parse_listen


def get(url: str) -> tuple[int, str, str]:
    """GET ``url``: (status, content type, body), for error statuses too."""
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers.get("Content-Type", ""), err.read().decode()


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
        assert 'syncd_operations_applied_total{table="user"} 3.0' in body

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
