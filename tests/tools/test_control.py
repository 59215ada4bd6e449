"""``refuse_while_paused``: a tool refuses only for the secondaries it writes to that are paused."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from syncd.config import Config
from syncd.errors import SyncdError
from syncd.pipeline.pause import PauseFile
from syncd.tools.control import refuse_while_paused


def config(tmp_path: Path) -> Config:
    return Config.from_mapping(
        {
            "secondaries": [
                {"name": "archive", "url": "ws://archive:8000/rpc", "priority": 1},
                {"name": "analytics", "url": "ws://analytics:8000/rpc", "priority": 2},
            ],
            "state_dir": str(tmp_path),
        }
    )


def test_only_the_selected_paused_secondaries_refuse(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    refuse_while_paused(cfg, "a backfill")  # nothing paused
    PauseFile(tmp_path).save({"analytics": time.time()})
    refuse_while_paused(cfg, "a backfill", ["archive"])  # analytics is not written to
    for names in (None, ["analytics"], ["archive", "analytics"]):
        with pytest.raises(SyncdError) as info:
            refuse_while_paused(cfg, "a backfill", names)
        assert str(info.value).startswith("secondary analytics is paused (since ")
        assert str(info.value).endswith(
            "a backfill would write to it; run `syncd resume --secondary analytics` first"
        )
