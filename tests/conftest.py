"""Shared fixtures: the anyio backend (asyncio: the SurrealDB SDK is asyncio-only)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Run every async test on asyncio."""
    return "asyncio"
