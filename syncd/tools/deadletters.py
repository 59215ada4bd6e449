"""The dead-letter files of the selected secondaries, read together, and entry ids across them.

Rules of this file:

- every secondary has its own dead-letter file, ``deadletters.jsonl`` in its
  own state directory (:meth:`syncd.config.Config.secondary_state`); an entry
  belongs to the secondary whose file holds it, and is replayed to that one
  only;
- an entry's id is ``NAME:LINE`` (``archive:3``): the secondary's name and the
  entry's line number in that file, which is what the file itself knows. A
  bare ``LINE`` stays valid when one secondary is selected (``--secondary``,
  or only one configured); with several it is ambiguous, and refused with
  one line saying how to write it;
- reading never changes a file: malformed lines are reported, never removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from syncd.config import Config
from syncd.errors import ConfigError, UnknownSecondary
from syncd.pipeline.deadletter import DeadLetter, DeadLetterFile
from syncd.pipeline.statedir import state_files

__all__ = ["LetterFile", "entry_id", "find_entry", "read_files"]


@dataclass
class LetterFile:
    """One secondary's dead-letter file, as read."""

    name: str
    dlq: DeadLetterFile
    entries: list[DeadLetter] = field(default_factory=list)
    malformed: list[tuple[int, str]] = field(default_factory=list)


def read_files(config: Config, names: Sequence[str]) -> list[LetterFile]:
    """The dead-letter files of secondaries ``names``, read (a missing file is empty)."""
    files = []
    for name in names:
        dlq = DeadLetterFile(state_files(config.secondary_state(name))[1])
        entries, malformed = dlq.read()
        files.append(LetterFile(name, dlq, entries, malformed))
    return files


def entry_id(name: str, line_no: int) -> str:
    """The id of line ``line_no`` of secondary ``name``'s file: ``NAME:LINE``."""
    return f"{name}:{line_no}"


def find_entry(files: Sequence[LetterFile], text: str) -> tuple[LetterFile, int]:
    """The file and line ``text`` (``NAME:LINE``, or ``LINE`` with one file) points at.

    The line is not looked up: the caller says what is on it (an entry, a
    malformed line, nothing).

    Raises:
        ConfigError: not an id, or a bare line among several secondaries.
        UnknownSecondary: ``NAME`` is not one of ``files``.
    """
    name, sep, line = text.rpartition(":")
    if not line.isdigit() or int(line) < 1 or (sep and not name):
        raise ConfigError(
            f"entry {text!r}: not an entry id (NAME:LINE or LINE, as `syncd dlq list` shows)"
        )
    if not sep:
        if len(files) != 1:
            shown = " or ".join(entry_id(f.name, int(line)) for f in files)
            raise ConfigError(
                f"entry {line}: several secondaries have a dead-letter file; "
                f"say which, e.g. {shown} (or select one with --secondary)"
            )
        return files[0], int(line)
    for file in files:
        if file.name == name:
            return file, int(line)
    known = ", ".join(f.name for f in files)
    raise UnknownSecondary(f"entry {text}: unknown secondary {name!r} (selected: {known})")
