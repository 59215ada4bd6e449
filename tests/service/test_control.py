"""POST /pause and /resume: who may (loopback, or the token), what they get, what is logged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from syncd.metrics import Metrics
from syncd.pipeline.pause import PauseFile
from syncd.service.control import ControlEndpoint, is_loopback, refusal
from syncd.service.httpserver import HttpEndpoint
from syncd.service.pausing import PauseControl
from tests.support.control import non_loopback_address, post

TOKEN = "s3cret-token-value"


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),  # all of 127.0.0.0/8 is loopback
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # a dual-stack socket's view of 127.0.0.1
        ("192.0.2.2", False),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("fe80::1%eth0", False),
        ("", False),
        ("not-an-address", False),
    ],
)
def test_is_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


@pytest.mark.parametrize(
    ("client", "header", "token", "label"),
    [
        ("127.0.0.1", None, "", None),
        ("192.0.2.2", None, "", "not_loopback"),
        ("192.0.2.2", f"Bearer {TOKEN}", "", "not_loopback"),  # no token configured: none accepted
        ("192.0.2.2", f"Bearer {TOKEN}", TOKEN, None),
        ("192.0.2.2", f"bearer  {TOKEN} ", TOKEN, None),
        ("192.0.2.2", None, TOKEN, "no_token"),
        ("192.0.2.2", f"Basic {TOKEN}", TOKEN, "no_token"),
        ("192.0.2.2", "Bearer ", TOKEN, "no_token"),
        ("192.0.2.2", "Bearer wrong", TOKEN, "wrong_token"),
        ("127.0.0.1", None, TOKEN, "no_token"),  # with a token, loopback must present it too
        ("127.0.0.1", "Bearer wrong", TOKEN, "wrong_token"),
    ],
)
def test_refusal(client: str, header: str | None, token: str, label: str | None) -> None:
    refused = refusal(client, header, token)
    assert (refused[0] if refused else None) == label


@pytest.fixture
def pauses(tmp_path: Path) -> PauseControl:
    """A PauseControl over a state dir in tmp_path (not started: changes run on the caller)."""
    return PauseControl(tmp_path / "state", Metrics())


def environ(client: str, query: str = "", authorization: str | None = None) -> dict[str, Any]:
    env: dict[str, Any] = {"REMOTE_ADDR": client, "QUERY_STRING": query}
    if authorization is not None:
        env["HTTP_AUTHORIZATION"] = authorization
    return env


def test_a_refusal_is_403_logged_and_counted_without_the_token(pauses: PauseControl) -> None:
    metrics = Metrics()
    control = ControlEndpoint(
        lambda a, s: [p.as_dict() for p in pauses.from_thread(a, s)], SecretStr(TOKEN), metrics
    )
    with capture_logs() as logs:
        status, body = control("pause", environ("192.0.2.9", authorization="Bearer wrong-guess"))
    assert status == "403 Forbidden"
    assert "not control_token" in str(body["error"])
    assert not pauses.is_paused()
    [event] = [e for e in logs if e["event"] == "control_refused"]
    assert event["log_level"] == "warning"
    assert event["client"] == "192.0.2.9"
    assert "not control_token" in event["reason"]
    assert "wrong-guess" not in repr(logs) + repr(body)
    assert TOKEN not in repr(logs) + repr(body)
    sample = metrics.registry.get_sample_value
    assert sample("syncd_control_refused_total", {"reason": "wrong_token"}) == 1.0


def test_a_fake_remote_client_without_a_token_configured_is_refused(pauses: PauseControl) -> None:
    control = pauses.endpoint(SecretStr(""))
    with capture_logs() as logs:
        status, _ = control("pause", environ("203.0.113.7"))
    assert status == "403 Forbidden"
    assert [e["client"] for e in logs if e["event"] == "control_refused"] == ["203.0.113.7"]
    assert control("pause", environ("127.0.0.1"))[0] == "200 OK"
    assert pauses.is_paused()


def test_pause_and_resume_over_http(tmp_path: Path, pauses: PauseControl) -> None:
    metrics = Metrics()
    with HttpEndpoint(
        "127.0.0.1:0", metrics.registry, control=pauses.endpoint(SecretStr(""))
    ) as http:
        status, first = post(http.url + "/pause")
        assert status == 200
        assert first["secondary"] == "secondary" and first["paused"] is True
        assert isinstance(first["since"], float)
        # Idempotent: the pause started at the first request.
        assert post(http.url + "/pause?secondary=secondary") == (200, first)
        assert PauseFile(tmp_path / "state").load() == {"secondary": first["since"]}

        status, body = post(http.url + "/pause?secondary=archive")
        assert status == 404 and "unknown secondary 'archive'" in body["error"]
        status, body = post(http.url + "/pause", method="GET")
        assert status == 405  # a state change is never a GET

        assert post(http.url + "/resume") == (
            200,
            {"secondary": "secondary", "paused": False, "since": None},
        )
        assert post(http.url + "/resume")[0] == 200  # idempotent
        assert not PauseFile(tmp_path / "state").path.exists()


def test_without_a_control_callback_pause_is_an_unknown_path() -> None:
    with HttpEndpoint("127.0.0.1:0", Metrics().registry) as http:
        assert post(http.url + "/pause")[0] == 405  # POST, as on any other path
        assert post(http.url + "/pause", method="GET")[0] == 404


@pytest.fixture
def remote_address() -> str:
    """This machine's non-loopback address: requests to it come from a non-loopback client."""
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    return address


def test_a_non_loopback_client_needs_the_token(pauses: PauseControl, remote_address: str) -> None:
    with HttpEndpoint(
        "0.0.0.0:0", Metrics().registry, control=pauses.endpoint(SecretStr(""))
    ) as http:
        url = f"http://{remote_address}:{http.address[1]}"
        with capture_logs() as logs:
            status, body = post(url + "/pause")
        assert status == 403 and "not a loopback client" in body["error"]
        assert [e["client"] for e in logs if e["event"] == "control_refused"] == [remote_address]
        assert not pauses.is_paused()
        # The same endpoint over loopback: allowed, no token configured.
        assert post(f"http://127.0.0.1:{http.address[1]}/pause")[0] == 200


def test_with_a_token_every_client_must_present_it(
    pauses: PauseControl, remote_address: str
) -> None:
    with HttpEndpoint(
        "0.0.0.0:0", Metrics().registry, control=pauses.endpoint(SecretStr(TOKEN))
    ) as http:
        port = http.address[1]
        remote, local = f"http://{remote_address}:{port}", f"http://127.0.0.1:{port}"
        with capture_logs() as logs:
            assert post(remote + "/pause")[0] == 403
            assert post(remote + "/pause", token="wrong")[0] == 403
            assert post(local + "/pause")[0] == 403  # loopback too
            assert not pauses.is_paused()
        assert TOKEN not in repr(logs)
        status, body = post(remote + "/pause", token=TOKEN)
        assert status == 200 and body["paused"] is True
        assert post(local + "/resume", token=TOKEN)[1]["paused"] is False
