"""The compatibility matrix: whichever ``surrealdb`` SDK this environment has.

``make compat`` runs this directory in a second environment with SDK 1.0.8 and
LangChain's vector store (``.venv-compat``); the project's own environment
(SDK 2.0.0) runs it with the rest of the suite. Served databases run the
devserver with the 2.3.10 engine (``SYNCD_DEVSERVER_PYTHON``: the project's
own interpreter, whose SDK embeds it).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncd.dev.process import DevServerProcess


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every compat test tolerates the SDK's blocking WebSocket client's warning (it
    connects the way websockets 17.1 deprecated)."""
    for item in items:
        if "tests/compat/" in str(item.path).replace("\\", "/"):
            item.add_marker(
                pytest.mark.filterwarnings(
                    "ignore:connect\\(\\) must be used as a context manager:DeprecationWarning"
                )
            )


@pytest.fixture
def served() -> Iterator[DevServerProcess]:
    """A devserver on 127.0.0.1 (2.3.10 engine, in memory)."""
    server = DevServerProcess(store="mem://", engine=2)
    server.start()
    try:
        yield server
    finally:
        server.stop()
