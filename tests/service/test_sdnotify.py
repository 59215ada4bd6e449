"""sd_notify over a real unix datagram socket."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from structlog.testing import capture_logs

from syncd.service.sdnotify import Notifier


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled and notifier.watchdog_interval is None
    notifier.ready("x")  # must not raise


def test_messages_reach_the_socket(tmp_path: Path) -> None:
    path = tmp_path / "n.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "4000000"})
        notifier.ready("lag 0.0s")
        notifier.watchdog()
        notifier.stopping("draining")
        got = [sock.recv(1024).decode() for _ in range(3)]
    assert got == ["READY=1\nSTATUS=lag 0.0s", "WATCHDOG=1", "STOPPING=1\nSTATUS=draining"]
    assert notifier.watchdog_interval == 2.0


def test_watchdog_for_another_pid_is_ignored() -> None:
    env = {"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}
    assert os.getpid() != 1
    assert Notifier(env).watchdog_interval is None


def test_a_dead_socket_is_logged_not_raised(tmp_path: Path) -> None:
    with capture_logs() as logs:
        Notifier({"NOTIFY_SOCKET": str(tmp_path / "missing.sock")}).ready("x")
    assert [(e["event"], e["log_level"], e["fields"]) for e in logs] == [
        ("sd_notify_failed", "warning", ["READY", "STATUS"])
    ]
    assert logs[0]["error"]  # the OS's reason
