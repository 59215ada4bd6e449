"""Which secondaries an operator's tool acts on, and how its output names them.

Rules of this file:

- ``--secondary NAME`` (repeatable) selects; none selects every secondary.
  The selection is always in priority order (lowest number first), each name
  once, whatever order the flags came in;
- a name the configuration does not define is an
  :class:`~syncd.errors.UnknownSecondary` (a ConfigError: one line, exit 2)
  naming it and the configured names, raised before anything is opened;
- the one secondary of the flat ``secondary_*`` keys is "the secondary" in
  messages, as it always was; a named one is "secondary NAME".

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from syncd.config import Config
from syncd.errors import UnknownSecondary
from syncd.secondaries import FLAT_NAME

__all__ = ["label", "resume_hint", "select"]


def select(config: Config, names: Sequence[str] | None) -> list[str]:
    """The secondaries a tool acts on: ``names`` checked, or every one; priority order.

    Raises:
        UnknownSecondary: a name the configuration does not define.
    """
    configured = config.secondary_names()
    if not names:
        return configured
    for name in names:
        if name not in configured:
            raise UnknownSecondary(
                f"unknown secondary {name!r} (configured: {', '.join(configured)})"
            )
    return [name for name in configured if name in names]


def label(name: str) -> str:
    """How messages name secondary ``name``: ``"the secondary"`` or ``"secondary NAME"``."""
    return "the secondary" if name == FLAT_NAME else f"secondary {name}"


def resume_hint(name: str) -> str:
    """The command that resumes secondary ``name``."""
    return "syncd resume" if name == FLAT_NAME else f"syncd resume --secondary {name}"
