"""Merged reads through the wrapper: what the application sees when the secondary cannot answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from syncd.service.replicator import Replicator
from tests.support.replica import dead_url, make_config


def replicator(tmp_path: Path, url: str, **overrides: Any) -> Replicator:
    return Replicator(make_config(tmp_path, url, **overrides), registry=CollectorRegistry())


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_a_primary_error_in_a_merged_read_is_the_sdks_own(
    tmp_path: Path, primary: Any
) -> None:
    with pytest.raises(RuntimeError):
        await primary.select("a b")  # the bare SDK: a parse error, RuntimeError
    async with replicator(tmp_path, dead_url()) as rep:
        db = rep.wrap(primary)
        with pytest.raises(RuntimeError):
            await db.select("a b")
