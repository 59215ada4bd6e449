"""How the tools name a secondary in their messages (pure)."""

from __future__ import annotations

from syncd.tools.targets import label, resume_hint


def test_the_flat_secondary_keeps_its_old_words() -> None:
    assert (label("secondary"), resume_hint("secondary")) == ("the secondary", "syncd resume")
    assert label("archive") == "secondary archive"
    assert resume_hint("archive") == "syncd resume --secondary archive"
