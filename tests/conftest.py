"""Shared fixtures: the anyio backend, a real secondary process, an embedded primary."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import SyncdProcess
from tests.support.replica import embedded_primary
from tests.support.server import ServerProcess


@pytest.fixture
def anyio_backend() -> str:
    """Run every async test on asyncio (the SurrealDB SDK is asyncio-only)."""
    return "asyncio"


def _served(store: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(store=f"surrealkv://{store}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def secondary_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A devserver process on 127.0.0.1 whose store survives kill and restart."""
    yield from _served(tmp_path / "secondary-store")


@pytest.fixture
def primary_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A primary served the same way, for tests where syncd runs as its own process."""
    yield from _served(tmp_path / "primary-store")


@pytest.fixture
async def primary() -> AsyncIterator[Any]:
    """An embedded in-memory primary, connected and using app/main."""
    async with embedded_primary() as db:
        yield db


@pytest.fixture
def syncd_factory(tmp_path: Path) -> Iterator[Any]:
    """Make ``syncd run`` processes for a test; each is killed at the end if still running."""
    made: list[SyncdProcess] = []

    def make(primary: str, secondary: str, **extra: Any) -> SyncdProcess:
        proc = SyncdProcess(tmp_path, primary, secondary, **extra)
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.stop()
