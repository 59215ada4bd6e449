"""Helpers for the operator-tool tests: run the CLI, write its config, reach the databases."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import yaml
from surrealdb import AsyncSurreal

from syncd.dev.process import DevServerProcess as ServerProcess

NAMESPACE = "app"


def syncd(
    *args: str, cwd: Path, timeout: float = 120, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m syncd ARGS`` (no TTY, no SYNCD_* variables) and return the result."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        input=stdin if stdin is not None else "",
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(
    path: Path,
    *,
    primary: ServerProcess | None,
    secondary: ServerProcess | None,
    database: str,
    **extra: Any,
) -> Path:
    """A YAML config for the CLI: both databases in ``app/<database>``, state under ``path``.

    A ``secondaries`` list in ``extra`` replaces the flat secondary keys.
    """
    flat = {
        "secondary_url": f"{secondary.url}/rpc" if secondary else "ws://127.0.0.1:10/rpc",
        "secondary_pass": "root",
        "secondary_namespace": NAMESPACE,
        "secondary_database": database,
    }
    data: dict[str, Any] = {
        **({} if "secondaries" in extra else flat),
        "primary_url": f"{primary.url}/rpc" if primary else "ws://127.0.0.1:9/rpc",
        "primary_pass": "root",
        "primary_namespace": NAMESPACE,
        "primary_database": database,
        "state_dir": str(path / "state"),
        "metrics_listen": None,
        "connect_timeout": "2s",
        "write_timeout": "5s",
        "health_check_interval": "1s",
        "reconnect_backoff": "500ms",
        "sync_retry_interval": "50ms",
        "batch_timeout": "5ms",
    }
    data.update(extra)
    file = path / "syncd.yaml"
    file.write_text(yaml.safe_dump(data), encoding="utf-8")
    return file


async def connect(server: ServerProcess, database: str) -> Any:
    """A direct SDK connection to ``app/<database>`` on ``server``."""
    db: Any = AsyncSurreal(server.url)
    with anyio.fail_after(10):
        await db.connect()
        await db.signin({"username": "root", "password": "root"})
        await db.use(NAMESPACE, database)
    return db


async def close(db: Any) -> None:
    """Close an SDK connection, bounded."""
    with anyio.move_on_after(5):
        await db.close()


def syncd_on_a_terminal(*args: str, cwd: Path, timeout: float = 120) -> tuple[int, str]:
    """Run ``python -m syncd ARGS`` with a pseudo-terminal as stdout and stderr.

    Returns the exit status and everything written to the terminal (escape
    sequences included): what an operator at a terminal sees, frame by frame.
    """
    import pty

    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env.update(COLUMNS="160", LINES="40", TERM="xterm")
    main, child = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "syncd", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=child,
            stderr=child,
        )
        os.close(child)
        child = -1
        chunks: list[bytes] = []
        while True:
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        code = process.wait(timeout=timeout)
    finally:
        os.close(main)
        if child >= 0:
            os.close(child)
    return code, b"".join(chunks).decode("utf-8", "replace")
