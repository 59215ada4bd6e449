"""Helpers for integration tests: configs pointing at a test secondary, and reading it back."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from prometheus_client import CollectorRegistry
from surrealdb import AsyncSurreal

from syncd.config import Config
from syncd.pipeline.spool import Spool
from syncd.service.replicator import Replicator
from syncd.surreal.failures import is_undefined_table

NAMESPACE = "replica"
DATABASE = "main"


@asynccontextmanager
async def embedded_primary() -> AsyncIterator[Any]:
    """An embedded in-memory primary using app/main, as an application holds it."""
    db: Any = AsyncSurreal("mem://")
    await db.connect()
    await db.use("app", "main")
    try:
        yield db
    finally:
        await db.close()
        # Measured: the embedded engine can abort the process at exit (a Rust
        # panic) when it is torn down right after close(); a pause avoids it.
        await anyio.sleep(0.1)


def make_config(tmp_path: Path, secondary_url: str | None, **overrides: Any) -> Config:
    """A config tuned for tests: short intervals, no HTTP endpoint, state under tmp_path.

    ``secondary_url`` None: the secondaries come as ``secondaries`` in ``overrides``
    (see :func:`entry`).
    """
    flat = {
        "secondary_url": secondary_url,
        "secondary_user": "root",
        "secondary_pass": "root",
        "secondary_namespace": NAMESPACE,
        "secondary_database": DATABASE,
    }
    data: dict[str, Any] = {
        **(flat if secondary_url is not None else {}),
        "state_dir": str(tmp_path / "state"),
        "metrics_listen": None,
        "health_check_interval": "1s",
        "reconnect_backoff": "500ms",
        "connect_timeout": "2s",
        "write_timeout": "2s",
        "query_timeout": "500ms",
        "sync_retry_interval": "50ms",
        "batch_timeout": "5ms",
        "drain_timeout": "10s",
    }
    data.update(overrides)
    return Config.from_mapping(data)


async def connect_secondary(url: str) -> Any:
    """A direct SDK connection to the secondary, to look at what arrived."""
    db: Any = AsyncSurreal(url)
    with anyio.fail_after(10):
        await db.connect()
        await db.signin({"username": "root", "password": "root"})
        await db.use(NAMESPACE, DATABASE)
    return db


async def table_rows(read: Callable[[], Awaitable[list[Any]]]) -> list[Any]:
    """What ``read()`` (a SELECT of one table) returns; nothing when the table is not defined.

    3.x fails a read of a table nothing was written to yet where 2.x returns
    nothing; a test polling a secondary for rows that are "not there yet" must
    see the same on both, as syncd's own readers of a secondary do.
    """
    try:
        return await read()
    except Exception as exc:
        if not is_undefined_table(exc):
            raise
        return []


async def rows_by_id(db: Any, table: str) -> dict[str, dict[str, Any]]:
    """Every row of ``table``, keyed by record id (none when the table is not defined)."""
    with anyio.fail_after(20):
        rows = await table_rows(lambda: db.query(f"SELECT * FROM {table}"))
    return {str(r["id"]): dict(r) for r in rows}


async def secondary_rows(url: str, table: str) -> dict[str, dict[str, Any]]:
    """Open, read ``table`` from the secondary, close."""
    db = await connect_secondary(url)
    try:
        return await rows_by_id(db, table)
    finally:
        with anyio.move_on_after(5):
            await db.close()


def without(rows: Mapping[str, Mapping[str, Any]], *fields: str) -> dict[str, dict[str, Any]]:
    """The rows with some fields dropped (for natural-key comparisons)."""
    return {k: {f: v for f, v in r.items() if f not in fields} for k, r in rows.items()}


def dead_url() -> str:
    """A ws:// URL on which nothing listens (a secondary that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"ws://127.0.0.1:{s.getsockname()[1]}"


def spooled_count(state: Path) -> int:
    """How many operations the spool under ``state`` holds (as the next start finds them)."""
    spool = Spool(state / "spool")
    spool.open()
    try:
        return len(spool)
    finally:
        spool.close()


def entry(name: str, url: str, priority: int = 0) -> dict[str, Any]:
    """One ``secondaries`` entry for a test secondary at ``url``."""
    return {
        "name": name,
        "url": url,
        "user": "root",
        "pass": "root",
        "namespace": NAMESPACE,
        "database": DATABASE,
        "priority": priority,
    }


def replicator(tmp_path: Path, url: str | None, **overrides: Any) -> Replicator:
    """A Replicator on :func:`make_config`, with a registry of its own (not the global one)."""
    return Replicator(make_config(tmp_path, url, **overrides), registry=CollectorRegistry())
