"""Replaying dead letters into the secondary, and removing exactly the ones applied.

The staleness hazard: an entry holds the version of a record that failed,
possibly long ago. If the primary has changed the record since, writing the
stored version would overwrite newer data on the secondary. So by default the
record's *current* state is read from the primary (by natural key when the
table has one and the entry carries it, else by record id) and that is
applied; only when the primary no longer has the record is the stored
version applied (the record was deleted later, and the secondary is an
archive). ``from_file_only`` applies the stored versions as they are.

Entries are applied in file order, a batch at a time, through the same
:class:`~syncd.sink.executor.Executor` as the pipeline, which reports which
records the secondary refused. Only the applied entries are removed, matched
again by content right before the rewrite, so lines appended meanwhile (the
daemon may be running) or rewritten by another command are never removed by
mistake.

Each secondary has its own dead-letter file; :func:`replay_files` sends each
file's entries back to the secondary it came from, never to another one.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from syncd.config import Config
from syncd.errors import SyncdError
from syncd.pipeline.deadletter import DeadLetter, DeadLetterFile
from syncd.sink.executor import Executor
from syncd.sink.operation import Operation
from syncd.surreal.connection import ManagedConnection
from syncd.surreal.endpoints import Caller, open_connection
from syncd.tools.control import refuse_while_paused
from syncd.tools.deadletters import LetterFile
from syncd.tools.records import lookup
from syncd.tools.verify import key_spec

__all__ = ["ReplayResult", "identity", "remove_letters", "replay", "replay_files"]

Identity = tuple[str, str, float, float, str, int]


def identity(letter: DeadLetter) -> Identity:
    """What identifies an entry apart from its line number (which a rewrite changes)."""
    op = letter.op
    return (op.table, op.key, letter.first_failed_at, letter.last_failed_at, letter.error, op.seq)


def remove_letters(dlq: DeadLetterFile, letters: Sequence[DeadLetter]) -> int:
    """Remove the entries ``letters`` (as read earlier) from ``dlq``; returns how many.

    Lines are matched by :func:`identity` in the file as it is now, so an
    entry that was already removed, or moved by another rewrite, is handled.
    """
    wanted: dict[Identity, int] = defaultdict(int)
    for letter in letters:
        wanted[identity(letter)] += 1
    entries, _malformed = dlq.read()
    lines = []
    for entry in entries:
        ident = identity(entry)
        if wanted.get(ident, 0) > 0:
            wanted[ident] -= 1
            lines.append(entry.line_no)
    return dlq.remove(lines)


@dataclass
class ReplayResult:
    """What a replay did."""

    applied: list[DeadLetter] = field(default_factory=list)
    failed: list[tuple[DeadLetter, str]] = field(default_factory=list)
    not_attempted: list[DeadLetter] = field(default_factory=list)  # secondary went away
    from_primary: int = 0  # applied as the primary holds them now
    stored: int = 0  # applied as stored in the file
    removed: int = 0
    error: str | None = None  # why the replay stopped early
    secondary: str = ""  # whose dead-letter file the entries came from

    def to_json(self) -> dict[str, object]:
        """JSON-able form for ``--json``."""
        return {
            "applied": len(self.applied),
            "applied_from_primary": self.from_primary,
            "applied_as_stored": self.stored,
            "removed": self.removed,
            "still_failing": [
                {"line": letter.line_no, "key": letter.op.key, "error": error}
                | ({"secondary": self.secondary} if self.secondary else {})
                for letter, error in self.failed
            ],
            "not_attempted": len(self.not_attempted),
            "error": self.error,
        }


async def _current_versions(
    config: Config, primary: Caller, letters: Sequence[DeadLetter]
) -> dict[int, dict[str, object]]:
    """The primary's current record for each letter that still exists, by line number."""
    by_table: dict[str, list[DeadLetter]] = defaultdict(list)
    for letter in letters:
        by_table[letter.op.table].append(letter)
    current: dict[int, dict[str, object]] = {}
    for table, group in by_table.items():
        spec = key_spec(config, table)
        found = {
            spec.key(row): row for row in await lookup(primary, spec, [g.op.record for g in group])
        }
        for letter in group:
            row = found.get(spec.key(letter.op.record))
            if row is not None:
                current[letter.line_no] = row
    return current


async def replay(
    config: Config,
    dlq: DeadLetterFile,
    letters: Sequence[DeadLetter],
    secondary: ManagedConnection,
    primary: Caller | None,
    *,
    secondary_name: str | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Apply ``letters`` to the secondary and remove the applied ones from ``dlq``.

    ``secondary`` is the connection to ``secondary_name`` (default: the first
    secondary), whose file ``dlq`` is. ``primary`` ``None`` applies the stored
    versions (``--from-file-only``). When a database becomes unreachable, the
    replay stops there (``result.error``); what was applied up to then is
    still removed. Raises ``SyncdError`` at once when that secondary is
    paused (``syncd pause``).
    """
    name = secondary_name or config.secondary_names()[0]
    refuse_while_paused(config, "a replay", [name])
    executor = Executor(
        secondary,
        keys=config.key_rule(),
        write_timeout=config.write_timeout,
        versions=config.versions(),
    )
    result = ReplayResult(secondary=name)
    size = config.sync_batch_size
    for start in range(0, len(letters), size):
        batch = letters[start : start + size]
        try:
            current = await _current_versions(config, primary, batch) if primary else {}
            ops = [
                Operation(
                    table=letter.op.table,
                    key=letter.op.key,
                    record=current.get(letter.line_no, letter.op.record),
                    source="replay",
                )
                for letter in batch
            ]
            rejected = await executor.apply(ops)
        except SyncdError as exc:
            # Unreachable, or a lookup refused: stop here, but still remove
            # what was applied so far.
            result.error = str(exc)
            result.not_attempted.extend(letters[start:])
            break
        refused = {id(r.op): r.text for r in rejected}
        for letter, op in zip(batch, ops, strict=True):
            if id(op) in refused:
                result.failed.append((letter, refused[id(op)]))
                continue
            result.applied.append(letter)
            if letter.line_no in current:
                result.from_primary += 1
            else:
                result.stored += 1
        if on_batch is not None:
            on_batch(len(batch))
    result.removed = remove_letters(dlq, result.applied)
    return result


async def replay_files(
    config: Config, chosen: Sequence[tuple[LetterFile, Sequence[DeadLetter]]], from_file_only: bool
) -> list[ReplayResult]:
    """Replay each file's ``letters`` to the secondary that file belongs to; one result each.

    The primary is opened once (not at all with ``from_file_only``), then each
    secondary in turn, in priority order.

    Raises:
        SyncdError: a secondary with entries to replay is paused (before any
            is written to); a database cannot be reached or refuses the
            credentials (what the secondaries before it got stays applied
            and removed; ``--secondary`` replays the others meanwhile).
    """
    work = [(file, letters) for file, letters in chosen if letters]
    refuse_while_paused(config, "a replay", [file.name for file, _ in work])
    done: dict[str, ReplayResult] = {}
    if work:
        async with contextlib.AsyncExitStack() as stack:
            primary = None
            if not from_file_only:
                primary = await stack.enter_async_context(open_connection(config, "primary"))
            for file, letters in work:
                async with open_connection(config, "secondary", secondary=file.name) as secondary:
                    done[file.name] = await replay(
                        config, file.dlq, letters, secondary, primary, secondary_name=file.name
                    )
    return [done.get(file.name) or ReplayResult(secondary=file.name) for file, _ in chosen]
