"""``syncd status``'s own parts: the daemon's URL, asking it, counting a spool read-only,
and the one flat mapping both sources make (tests/cli/test_status.py runs the command)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from syncd.pipeline.recovery import TAIL_BASE
from syncd.pipeline.segments import HEADER, MAGIC, frame
from syncd.tools.status import count_spool, daemon_url, fetch_daemon_status, gather, status_url
from tests.support.replica import dead_url, entry, make_config


@pytest.mark.parametrize(
    ("listen", "url"),
    [
        (None, None),
        ("", None),
        ("127.0.0.1:0", None),
        ("127.0.0.1:", None),
        ("127.0.0.1:9464", "http://127.0.0.1:9464/status"),
        ("0.0.0.0:9464", "http://127.0.0.1:9464/status"),
        (":9464", "http://127.0.0.1:9464/status"),
        ("[::]:9464", "http://[::1]:9464/status"),
        ("[fe80::1]:9464", "http://[fe80::1]:9464/status"),
        ("db.local:80", "http://db.local:80/status"),
    ],
)
def test_status_url(listen: str | None, url: str | None) -> None:
    assert status_url(listen) == url


def test_daemon_url_takes_any_path() -> None:
    assert daemon_url("127.0.0.1:1", "/pause") == "http://127.0.0.1:1/pause"


class _Handler(BaseHTTPRequestHandler):
    answers: dict[str, tuple[int, bytes]] = {}

    def do_GET(self) -> None:
        code, body = self.answers[self.path]
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(30)


def test_fetch_answers_the_status_object_or_why_not(server: str) -> None:
    _Handler.answers = {
        "/ok": (200, b'{"ready": true}'),
        "/list": (200, b"[1]"),
        "/text": (200, b"hello"),
        "/gone": (503, b"{}"),
    }
    assert fetch_daemon_status(server + "/ok", 30) == ({"ready": True}, "")
    assert fetch_daemon_status(server + "/list", 30) == (None, "not a status object")
    data, why = fetch_daemon_status(server + "/text", 30)
    assert data is None and why
    assert fetch_daemon_status(server + "/gone", 30) == (None, "HTTP 503")


def test_fetch_from_nothing_says_why() -> None:
    url = dead_url().replace("ws://", "http://") + "/status"
    data, why = fetch_daemon_status(url, 30)
    assert data is None and "refused" in why.lower()


def segment(directory: Path, number: int, *frames: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"seg-{number:020d}.spool"
    path.write_bytes(HEADER.pack(MAGIC, b"\x07" * 8) + b"".join(frames))
    return path


def test_count_spool_counts_unconfirmed_frames_and_changes_nothing(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    assert count_spool(spool) == (0, 0)
    a, b, c = frame(1, 1.0, b"a" * 10), frame(2, 1.0, b"b" * 10), frame(3, 1.0, b"c")
    first = segment(spool, TAIL_BASE, a, b)
    torn = frame(4, 1.0, b"dddd")[:-1]
    second = segment(spool, TAIL_BASE + 1, c, torn)
    (spool / "seg-00000000000000000009.spool").write_bytes(b"SYN")  # header never written
    offsets = {first.name: [(b"\x07" * 8).hex(), HEADER.size + len(a)]}
    (spool / "head.json").write_text(json.dumps({"v": 1, "max_seq": 4, "offsets": offsets}))
    before = {p.name: p.read_bytes() for p in spool.iterdir()}
    assert count_spool(spool) == (2, len(b) + len(c))
    assert {p.name: p.read_bytes() for p in spool.iterdir()} == before  # torn tail kept
    assert second.exists()


def test_count_spool_with_a_damaged_position_file_counts_everything(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    segment(spool, TAIL_BASE, frame(1, 1.0, b"a"), frame(2, 1.0, b"b"))
    (spool / "head.json").write_text("[not an object")
    assert count_spool(spool)[0] == 2


def daemon_config(tmp_path: Path) -> Any:
    return make_config(
        tmp_path,
        None,
        secondaries=[entry("near", "ws://127.0.0.1:1", 0), entry("far", "ws://127.0.0.1:2", 1)],
        metrics_listen=None,
    )


def test_from_the_state_dir_every_secondary_is_listed_with_totals(tmp_path: Path) -> None:
    config = daemon_config(tmp_path)
    near_spool = config.secondary_state("near") / "spool"
    segment(near_spool, TAIL_BASE, frame(1, 1.0, b"x"))
    status = gather(config)
    assert status["source"] == "state_dir" and status["daemon_running"] is False
    assert status["note"] == "metrics_listen is disabled, or its port is 0 (unknown here)"
    assert [s["name"] for s in status["secondaries"]] == ["near", "far"]
    assert [s["spool_depth"] for s in status["secondaries"]] == [1, 0]
    assert status["spool_depth"] == 1 and status["dead_letters"] == 0
    assert status["secondaries"][0]["up"] is None  # only a live process knows
    assert status["checkpoint"] is None
    assert status["secondary"]["paused"] is False


def test_from_the_state_dir_an_unreadable_pause_file_is_reported(tmp_path: Path) -> None:
    config = daemon_config(tmp_path)
    config.state_path.mkdir(parents=True)
    (config.state_path / "paused.json").write_text("{")
    status = gather(config)
    assert status["secondary"]["paused"] is None
    assert "pause file" in status["secondary"]["pause_error"]
    assert all(s["paused"] is None for s in status["secondaries"])


def test_from_the_state_dir_an_unreadable_checkpoint_is_reported(tmp_path: Path) -> None:
    config = daemon_config(tmp_path)
    config.state_path.mkdir(parents=True)
    (config.state_path / "checkpoint.json").write_text("{}")
    assert "unknown format version" in gather(config)["checkpoint"]["error"]


def test_from_an_old_daemon_its_one_secondary_is_the_first_configured(
    tmp_path: Path, server: str
) -> None:
    old = {
        "ready": True,
        "secondary": {"up": False, "last_error": "refused", "since": 5.0},
        "lag_seconds": 2.5,
        "dead_letters": 3,
        "queue_depth": 7,
    }
    _Handler.answers = {"/status": (200, json.dumps(old).encode())}
    config = make_config(tmp_path, "ws://127.0.0.1:1", metrics_listen=server.split("//")[1])
    status = gather(config, timeout=30)
    assert status["source"] == "daemon" and status["note"] == ""
    [one] = status["secondaries"]
    assert (one["name"], one["up"], one["lag_seconds"], one["dead_letters"]) == (
        "secondary", False, 2.5, 3,
    )  # fmt: skip
    assert status["secondary"]["last_error"] == "refused"
    assert (status["queue_depth"], status["dead_letters"]) == (7, 3)
    assert status["resync_pending"] == []


def test_from_a_daemon_an_unreadable_count_is_unknown(tmp_path: Path, server: str) -> None:
    new = {
        "secondaries": [{"name": "a", "dead_letters": float("nan")}, {"up": True}],
        "metrics": {"dead_letters": 4},
    }
    _Handler.answers = {"/status": (200, json.dumps(new).encode())}
    config = make_config(tmp_path, "ws://127.0.0.1:1", metrics_listen=server.split("//")[1])
    status = gather(config, timeout=30)
    first, second = status["secondaries"]
    assert first["dead_letters"] is None
    assert second["name"] == "#2"  # more listed than configured
    assert status["dead_letters"] == 4
