"""How an operator tool's messages name the secondaries it acts on.

Rules of this file:

- ``--secondary NAME`` (repeatable) selects, through
  :func:`syncd.config.secondaries.select`: none selects every secondary, always in
  priority order, each once; an unknown name is one line and exit 2, before
  anything is opened;
- the one secondary of the flat ``secondary_*`` keys is "the secondary" in
  messages, as it always was; a named one is "secondary NAME".

Pure: no I/O.
"""

from __future__ import annotations

from syncd.config.secondaries import FLAT_NAME

__all__ = ["label", "resume_hint"]


def label(name: str) -> str:
    """How messages name secondary ``name``: ``"the secondary"`` or ``"secondary NAME"``."""
    return "the secondary" if name == FLAT_NAME else f"secondary {name}"


def resume_hint(name: str) -> str:
    """The command that resumes secondary ``name``."""
    return "syncd resume" if name == FLAT_NAME else f"syncd resume --secondary {name}"
