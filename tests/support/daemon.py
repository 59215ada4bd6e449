"""``syncd run`` as a real process for tests, and helpers to write to and compare databases."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import yaml
from prometheus_client.parser import text_string_to_metric_families
from surrealdb import AsyncSurreal

from syncd.dev.process import DevServerProcess as ServerProcess
from tests.support.replica import DATABASE, NAMESPACE, rows_by_id, secondary_rows

APP_NS, APP_DB = "app", "main"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SyncdProcess:
    """``python -m syncd run`` with a config in tmp_path."""

    def __init__(self, tmp_path: Path, primary: str, secondary: str | None, **extra: Any) -> None:
        """``secondary`` None: the secondaries come as a ``secondaries`` list in ``extra``."""
        self.port = free_port()
        self.config = tmp_path / "syncd.yaml"
        self.state = tmp_path / "state"
        data = {
            "primary_url": primary,
            "primary_user": "root",
            "primary_pass": "root",
            "primary_namespace": APP_NS,
            "primary_database": APP_DB,
            **(
                {}
                if secondary is None
                else {
                    "secondary_url": secondary,
                    "secondary_user": "root",
                    "secondary_pass": "root",
                    "secondary_namespace": NAMESPACE,
                    "secondary_database": DATABASE,
                }
            ),
            "state_dir": str(self.state),
            "metrics_listen": f"127.0.0.1:{self.port}",
            "health_check_interval": "1s",
            "reconnect_backoff": "500ms",
            "connect_timeout": "2s",
            "write_timeout": "3s",
            "changefeed_poll_interval": "50ms",
            "drain_timeout": "10s",
            "log_json": True,
            **extra,
        }
        self.config.write_text(yaml.safe_dump(data))
        self.log = tmp_path / "syncd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None) -> None:
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run", "-c", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        log.close()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            if self.http("/readyz")[0] == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"syncd never became ready:\n{self.log.read_text()}")

    def http(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return 0, ""

    def events(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        """The JSON log lines of ``event`` so far whose ``fields`` match, oldest first."""
        found = []
        for line in self.log.read_text().splitlines():
            if not line.startswith("{"):
                continue  # a line a process wrote past the logger (an exit message)
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # the last line, half written as we read
            if entry.get("event") == event and all(entry.get(k) == v for k, v in fields.items()):
                found.append(entry)
        return found

    def metric(self, name: str) -> float:
        """The sum of ``name``'s samples on /metrics, every label together (0: none, or
        /metrics did not answer)."""
        code, body = self.http("/metrics")
        if code != 200:
            return 0.0
        return sum(
            sample.value
            for family in text_string_to_metric_families(body)
            for sample in family.samples
            if sample.name == name
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def secondary_entry(name: str, server: ServerProcess, priority: int) -> dict[str, Any]:
    """One entry of a ``secondaries`` list pointing at ``server``."""
    return {
        "name": name,
        "url": f"{server.url}/rpc",
        "user": "root",
        "pass": "root",
        "namespace": NAMESPACE,
        "database": DATABASE,
        "priority": priority,
    }


async def connect(url: str) -> Any:
    db: Any = AsyncSurreal(url)
    with anyio.fail_after(10):
        await db.connect()
        await db.signin({"username": "root", "password": "root"})
        await db.use(APP_NS, APP_DB)
    return db


async def events_daemon(
    primary: ServerProcess, secondary: ServerProcess, factory: Any, **extra: Any
) -> tuple[Any, SyncdProcess]:
    """A primary connection with a changefeed on ``events``, and syncd running and ready."""
    db = await connect(primary.url)
    await db.query("DEFINE TABLE events CHANGEFEED 1d")
    syncd = factory(primary.url, secondary.url, tables={"events": {}}, **extra)
    syncd.start()
    syncd.wait_ready()
    return db, syncd


async def converge(primary: Any, secondary_url: str, table: str, within: float = 60) -> None:
    """Wait until the secondary holds every record of ``table`` exactly as the primary."""
    expected = await rows_by_id(primary, table)
    deadline = time.monotonic() + within
    replica: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            replica = await secondary_rows(secondary_url, table)
        except Exception:  # the secondary may be restarting
            replica = {}
        if all(replica.get(k) == v for k, v in expected.items()):
            return
        await anyio.sleep(0.3)
    missing = [k for k, v in expected.items() if replica.get(k) != v]
    raise AssertionError(f"{len(missing)} of {len(expected)} records differ, e.g. {missing[:3]}")
