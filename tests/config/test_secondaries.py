"""Which secondaries a selection (``--secondary``, ``pause``, ``only=``) picks (pure)."""

from __future__ import annotations

import pytest

from syncd.config import Config
from syncd.config.secondaries import select
from syncd.errors import UnknownSecondary

FLAT = Config.from_mapping({"secondary_url": "ws://archive:8000/rpc"})
THREE = Config.from_mapping(
    {
        "secondaries": [
            {"name": "cold", "url": "ws://cold:8000/rpc", "priority": 3},
            {"name": "archive", "url": "ws://archive:8000/rpc", "priority": 1},
            {"name": "analytics", "url": "ws://analytics:8000/rpc", "priority": 2},
        ]
    }
)


def test_none_selects_every_secondary_in_priority_order() -> None:
    assert select(THREE.secondary_names(), None) == ["archive", "analytics", "cold"]
    assert select(THREE.secondary_names(), []) == ["archive", "analytics", "cold"]
    assert select(FLAT.secondary_names(), None) == ["secondary"]


def test_a_selection_keeps_priority_order_and_each_name_once() -> None:
    assert select(THREE.secondary_names(), ["cold", "archive", "cold"]) == ["archive", "cold"]
    assert select(FLAT.secondary_names(), ["secondary"]) == ["secondary"]


def test_an_unknown_name_is_one_line_naming_the_configured_ones() -> None:
    with pytest.raises(UnknownSecondary) as info:
        select(THREE.secondary_names(), ["archive", "nope"])
    assert str(info.value) == "unknown secondary 'nope' (configured: archive, analytics, cold)"
