"""Shared fixtures: the anyio backend, real database processes, the primary an application holds.

Every test that uses a database runs on both engine generations: the ``engine``
fixture is 2 (surrealdb-core 2.3.10, inside the SDK) or 3 (3.2.4, from
``surrealdb-embedded``), and the served databases and the application's
primary of one test are all of that generation (``[v2]`` / ``[v3]`` in test
ids). Mixed generations have tests of their own.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog

from syncd.dev.process import DevServerProcess as ServerProcess
from tests.support.daemon import SyncdProcess
from tests.support.daemon import connect as connect_primary
from tests.support.engines import GENERATIONS
from tests.support.replica import embedded_primary

pytest_plugins = ["tests.support.burn"]


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """Put the logging set-up back after each test.

    A command run in-process (typer's CliRunner) configures logging onto the
    runner's stream, which is closed when the command returns: left in place,
    every later test that logs would write to a closed file.
    """
    config = structlog.get_config()
    handlers = list(logging.getLogger().handlers)
    level = logging.getLogger().level
    yield
    structlog.configure(**config)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def anyio_backend() -> str:
    """Run every async test on asyncio (the SurrealDB SDK is asyncio-only)."""
    return "asyncio"


@pytest.fixture(params=GENERATIONS, ids=lambda g: f"v{g}")
def engine(request: pytest.FixtureRequest) -> int:
    """The engine generation of this test's databases: 2 or 3."""
    return int(request.param)


def _served(store: Path, engine: int) -> Iterator[ServerProcess]:
    server = ServerProcess(store=f"surrealkv://{store}", engine=engine)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def secondary_server(tmp_path: Path, engine: int) -> Iterator[ServerProcess]:
    """A devserver process on 127.0.0.1 whose store survives kill and restart."""
    yield from _served(tmp_path / "secondary-store", engine)


@pytest.fixture
def primary_server(tmp_path: Path, engine: int) -> Iterator[ServerProcess]:
    """A primary served the same way, for tests where syncd runs as its own process."""
    yield from _served(tmp_path / "primary-store", engine)


@pytest.fixture
async def primary(tmp_path: Path, engine: int) -> AsyncIterator[Any]:
    """The application's primary, connected and using app/main.

    2.x: the SDK's embedded in-memory engine. 3.x: the SDK's WebSocket client
    to a served 3.2.4 engine (the SDK embeds only 2.x).
    """
    if engine == 2:
        async with embedded_primary() as db:
            yield db
        return
    server = ServerProcess(store="mem://", engine=engine)
    server.start()
    try:
        db = await connect_primary(server.url)
        try:
            yield db
        finally:
            with anyio.move_on_after(5):
                await db.close()
    finally:
        server.stop()


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
