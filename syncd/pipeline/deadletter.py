"""The dead-letter file: operations the secondary kept rejecting, one JSON line each.

An operator lists, inspects and replays them (``syncd deadletters ...``). A
line is versioned and carries both a human-readable rendering of the record
(``record``, via :func:`syncd.keys.canonical`) and the exact operation
(``payload``: base64 of :meth:`Operation.to_bytes`, which keeps SurrealDB
types); replay uses only ``payload``::

    {"v": 1, "table": ..., "key": ..., "record_id": ..., "source": ...,
     "error": <one line, <= 500 chars>, "attempts": ..., "first_failed_at": ISO,
     "last_failed_at": ISO, "enqueued_at": ISO, "record": {...}, "payload": ...}

A line that does not parse (not JSON, a field missing, a payload that does
not decode) is reported with its line number and never deleted: not by
:meth:`DeadLetterFile.remove`, not by :meth:`DeadLetterFile.purge`. Blank
lines are neither entries nor problems, and are kept too.

The daemon appends while an operator's CLI may rewrite the file, so every
access holds a ``flock`` on the file (shared to read, exclusive to change) on
top of a thread lock; a rewrite swaps the inode, so whoever waited on the old
one opens the file again.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from syncd.errors import DeadLetterError, SpoolCorrupt
from syncd.files import fsync_path, write_all, write_atomically
from syncd.keys import canonical
from syncd.sink.operation import Operation

VERSION = 1
MAX_ERROR_CHARS = 500
# Fields read back; the others (record, record_id, source, enqueued_at) are for humans.
_REQUIRED: dict[str, type] = {
    "v": int,
    "table": str,
    "key": str,
    "error": str,
    "attempts": int,
    "first_failed_at": str,
    "last_failed_at": str,
    "payload": str,
}


@dataclass(frozen=True)
class DeadLetter:
    """One well-formed entry of the dead-letter file."""

    line_no: int  # 1-based line in the file
    op: Operation
    error: str
    attempts: int
    first_failed_at: float  # unix time
    last_failed_at: float


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _unix(text: str) -> float:
    when = datetime.fromisoformat(text)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def one_line(error: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``error`` on a single line (whitespace runs collapsed), cut to ``limit`` characters."""
    text = " ".join(error.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def encode_line(op: Operation, error: str, first_failed_at: float, last_failed_at: float) -> bytes:
    """The JSON line, newline included, recording ``op`` as dead."""
    rid = op.record.get("id")
    entry = {
        "v": VERSION,
        "table": op.table,
        "key": op.key,
        "record_id": "" if rid is None else str(rid),
        "source": op.source,
        "error": one_line(error),
        "attempts": op.attempts,
        "first_failed_at": _iso(first_failed_at),
        "last_failed_at": _iso(last_failed_at),
        "enqueued_at": _iso(op.enqueued_at),
        "record": canonical(op.record),
        "payload": base64.b64encode(op.to_bytes()).decode("ascii"),
    }
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def parse_line(line_no: int, raw: bytes) -> DeadLetter | str:
    """The entry on line ``line_no``, or a description of what is wrong with it."""
    try:
        data = json.loads(raw)
    except ValueError:  # UnicodeDecodeError is one too
        return "not JSON"
    if not isinstance(data, dict):
        return "not a JSON object"
    for name, kind in _REQUIRED.items():
        value = data.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"field {name!r} missing or not a {kind.__name__}"
    if data["v"] != VERSION:
        return f"unsupported version {data['v']}"
    try:
        op = Operation.from_bytes(base64.b64decode(data["payload"], validate=True))
    except (ValueError, SpoolCorrupt) as exc:  # binascii.Error is a ValueError
        return f"bad payload: {exc}"
    try:
        first, last = _unix(data["first_failed_at"]), _unix(data["last_failed_at"])
    except ValueError as exc:
        return f"bad timestamp: {exc}"
    return DeadLetter(line_no, op, data["error"], data["attempts"], first, last)


def _lines(data: bytes) -> list[bytes]:
    """Split on ``\\n`` only (what the line numbers mean), terminators kept."""
    parts = data.split(b"\n")
    return [p + b"\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


@dataclass(frozen=True)
class _Tally:
    """What :meth:`DeadLetterFile.live_count` counted, and in which version of the file."""

    inode: int = 0
    size: int = 0
    mtime_ns: int = 0
    count: int = 0
    # The last bytes counted: tell an append from a rewrite that reused the inode.
    tail: bytes = b""


class DeadLetterFile:
    """The dead-letter file at ``path``; a missing file is an empty one. Thread-safe."""

    def __init__(self, path: Path) -> None:
        """Bind to ``path``; the file is created (mode 0600) by the first append."""
        self.path = Path(path)
        self._lock = threading.Lock()
        self._tally = _Tally()
        self._tally_lock = threading.Lock()

    @contextmanager
    def _locked(self, *, exclusive: bool, create: bool = False) -> Iterator[int | None]:
        """An fd on the current file under ``flock``; ``None`` if it does not exist."""
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT if create else os.O_RDONLY
        with self._lock:
            while True:
                try:
                    fd = os.open(self.path, flags, 0o600)
                except FileNotFoundError:
                    yield None
                    return
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                    # Replaced while we waited: this inode is no longer the file.
                    try:
                        current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
                    except FileNotFoundError:
                        current = False
                    if current:
                        yield fd
                        return
                finally:
                    os.close(fd)  # releases the flock too

    def append(
        self,
        op: Operation,
        error: str,
        *,
        first_failed_at: float,
        last_failed_at: float | None = None,
    ) -> bool:
        """Record ``op`` as dead (``last_failed_at`` defaults to now); fsynced before return.

        One entry per record and reason: when the file already holds ``op``'s
        table and key with the same error (a backfill run again, a replay
        refused again), that entry is kept (with this ``op``'s record if it
        changed, and its first failure time), not repeated. Returns whether
        an entry was added.
        """
        last = datetime.now(UTC).timestamp() if last_failed_at is None else last_failed_at
        line = encode_line(op, error, first_failed_at, last)
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with self._locked(exclusive=True, create=True) as fd:
                assert fd is not None
                size = os.fstat(fd).st_size
                if size and self._merge_into_same(fd, size, op, error, last):
                    return False
                if size == 0:
                    os.fchmod(fd, 0o600)  # os.open's mode is subject to the umask
                elif os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # a torn last line must not swallow this one
                write_all(fd, line)
                os.fsync(fd)
                if size == 0:
                    fsync_path(self.path.parent)
        except OSError as exc:
            raise DeadLetterError(f"cannot append to {self.path}: {exc}") from exc
        return True

    def _merge_into_same(self, fd: int, size: int, op: Operation, error: str, last: float) -> bool:
        """Whether the file (``fd``, locked) already has ``op``'s record for ``error``.

        If it has, and the record changed since, that line is rewritten (same
        place, first failure kept). Only the lines' ``table``/``key``/``error``
        are read: no payload is decoded.
        """
        lines = _lines(os.pread(fd, size, 0))
        reason = one_line(error)
        for index, raw in enumerate(lines):
            try:
                data = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(data, dict) or (
                data.get("table"),
                data.get("key"),
                data.get("error"),
            ) != (op.table, op.key, reason):
                continue
            payload = base64.b64encode(op.to_bytes()).decode("ascii")
            if data.get("payload") == payload:
                return True
            try:
                first = _unix(str(data.get("first_failed_at")))
            except ValueError:
                first = last
            lines[index] = encode_line(op, error, first, last)
            write_atomically(self.path, b"".join(lines))  # under the flock: appenders retry
            return True
        return False

    def _raw_lines(self) -> list[bytes]:
        try:
            with self._locked(exclusive=False) as fd:
                if fd is None:
                    return []
                with open(fd, "rb", closefd=False) as f:
                    return _lines(f.read())
        except OSError as exc:
            raise DeadLetterError(f"cannot read {self.path}: {exc}") from exc

    def read(self) -> tuple[list[DeadLetter], list[tuple[int, str]]]:
        """All entries, and the malformed lines as ``(line_no, problem)``; never raises on them."""
        entries: list[DeadLetter] = []
        problems: list[tuple[int, str]] = []
        # Parsed outside the lock: decoding payloads is slow, appends must not wait on it.
        for line_no, raw in enumerate(self._raw_lines(), 1):
            if not raw.strip():
                continue
            parsed = parse_line(line_no, raw)
            if isinstance(parsed, DeadLetter):
                entries.append(parsed)
            else:
                problems.append((line_no, parsed))
        return entries, problems

    def count(self) -> int:
        """Number of well-formed entries (decodes every payload: call it off the event loop)."""
        return len(self.read()[0])

    def live_count(self) -> int:
        """Well-formed entries in the file *now*, cheap enough for every scrape.

        The file is shared with other processes (``syncd dlq replay`` and
        ``purge`` rewrite it), so a count kept in memory would go stale; this
        one follows the file. Unchanged (same inode, size, mtime): the last
        count, without opening it. Grown in place (appends): only the new
        lines are parsed. Replaced or shrunk: counted again from the start.
        """
        with self._tally_lock:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                self._tally = _Tally()
                return 0
            except OSError as exc:
                raise DeadLetterError(f"cannot read {self.path}: {exc}") from exc
            old = self._tally
            if (st.st_ino, st.st_size, st.st_mtime_ns) == (old.inode, old.size, old.mtime_ns):
                return old.count
            try:
                with self._locked(exclusive=False) as fd:
                    if fd is None:
                        self._tally = _Tally()
                        return 0
                    st = os.fstat(fd)
                    # The previous count ended on a line boundary: appends only add lines.
                    grown = (
                        st.st_ino == old.inode
                        and st.st_size >= old.size
                        and os.pread(fd, len(old.tail), old.size - len(old.tail)) == old.tail
                    )
                    start = old.size if grown else 0
                    data = os.pread(fd, st.st_size - start, start)
            except OSError as exc:
                raise DeadLetterError(f"cannot read {self.path}: {exc}") from exc
            lines = _lines(data)
            if lines and not lines[-1].endswith(b"\n"):
                # A torn last line (or one being written) is counted next time, whole.
                data, lines = data[: -len(lines[-1])], lines[:-1]
            added = sum(
                1 for raw in lines if raw.strip() and isinstance(parse_line(0, raw), DeadLetter)
            )
            count = (old.count if grown else 0) + added
            end = start + len(data)
            tail = (old.tail + data)[-64:] if grown else data[-64:]
            self._tally = _Tally(st.st_ino, end, st.st_mtime_ns, count, tail)
            return count

    def remove(self, line_nos: Collection[int]) -> int:
        """Drop the entries on ``line_nos``; malformed or blank lines there are kept.

        The file is rewritten atomically; every other line is kept byte for
        byte. Returns how many entries were removed.
        """
        wanted = set(line_nos)
        return self._rewrite(lambda no: no in wanted) if wanted else 0

    def purge(self) -> int:
        """Drop every well-formed entry, keeping malformed lines; returns how many."""
        return self._rewrite(lambda no: True)

    def _rewrite(self, selected: Callable[[int], bool]) -> int:
        try:
            with self._locked(exclusive=True) as fd:
                if fd is None:
                    return 0
                with open(fd, "rb", closefd=False) as f:
                    lines = _lines(f.read())
                kept = [
                    raw
                    for no, raw in enumerate(lines, 1)
                    if not (selected(no) and isinstance(parse_line(no, raw), DeadLetter))
                ]
                if len(kept) == len(lines):
                    return 0
                # Still under the flock: appenders retry on the new file.
                write_atomically(self.path, b"".join(kept))
            return len(lines) - len(kept)
        except OSError as exc:
            raise DeadLetterError(f"cannot rewrite {self.path}: {exc}") from exc


def filter_letters(
    letters: Collection[DeadLetter],
    *,
    table: str | None = None,
    error_contains: str | None = None,
    older_than: float | None = None,
    newer_than: float | None = None,
) -> list[DeadLetter]:
    """The letters matching every given criterion, in their order.

    ``error_contains`` is case-insensitive; ``older_than`` and ``newer_than``
    are unix times compared with ``last_failed_at`` (when the operation was
    given up on), so "older than 2 hours" is ``older_than=time.time() - 7200``.
    """
    needle = error_contains.casefold() if error_contains is not None else None
    return [
        letter
        for letter in letters
        if (table is None or letter.op.table == table)
        and (needle is None or needle in letter.error.casefold())
        and (older_than is None or letter.last_failed_at < older_than)
        and (newer_than is None or letter.last_failed_at > newer_than)
    ]
