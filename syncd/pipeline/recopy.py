"""The re-copy ledger: tables whose operations could not all be kept on disk.

Status, logs and metrics call a table waiting here "re-sync pending"
(``resync_pending``, ``syncd_resync_pending``), as they always have.

When the spool cannot take an operation (disk full, ``spool_max_bytes``
reached), the library records its table here instead of dropping it silently;
the table is copied again from the primary once the secondary is back (see
:mod:`syncd.capture.recopier`), and leaves the ledger only when a copy that
started after its last unkept operation has been applied.

The ledger must be writable when the disk is full, so its file
(``resync.state``) is allocated once, at open, and only ever overwritten in
place: two slots of 64 KiB, written alternately, each ``<u32 crc32><u32
length><u64 generation><JSON list of tables>``; the valid slot with the highest
generation wins, so a write torn by a crash leaves the previous one. A write
is handed to the OS at once (a killed process loses nothing) and fsynced by
:meth:`RecopyLedger.sync`, which the queue's run task calls.

The spool's damage marks tables too: what a damaged frame or a missing
segment held is not known by table, so every replicated table is marked (the
``tables`` list, or :data:`EVERY_TABLE` when it is omitted).

A marked table also carries a count, in memory only, bumped by every unkept
operation: a copy clears the table only if the count it started with is
still current.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

import structlog

__all__ = ["EVERY_TABLE", "RecopyLedger", "read_ledger"]

log = structlog.get_logger("syncd.pipeline.recopy")

#: The entry for "every table of the primary": operations of unknown tables were
#: lost (a damaged spool) and no ``tables`` list says which are replicated.
EVERY_TABLE = "*"

_SLOT = 64 * 1024
_HEAD = struct.Struct("<IIQ")  # crc32 of the rest, payload length, generation


class RecopyLedger:
    """The tables that need a re-sync, kept durably; thread-safe."""

    def __init__(self, path: Path, *, on_change: Callable[[list[str]], None] | None = None) -> None:
        """Bind to ``path``; ``on_change`` gets the table list whenever mark or clear change it."""
        self.path = path
        self.on_change = on_change
        self._lock = threading.Lock()
        self._tables: dict[str, int] = {}
        self._generation = 0
        self._fd: int | None = None
        self._dirty = False

    def open(self) -> None:
        """Load the ledger (creating and allocating its file if needed)."""
        with self._lock:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            if os.fstat(self._fd).st_size < 2 * _SLOT:
                # Real blocks, not a sparse hole: an overwrite needs no free space.
                os.pwrite(self._fd, bytes(2 * _SLOT), 0)
                os.fsync(self._fd)
            best: tuple[int, list[str]] | None = None
            for slot in (0, 1):
                found = _read_slot(os.pread(self._fd, _SLOT, slot * _SLOT))
                if found is not None and (best is None or found[0] > best[0]):
                    best = found
            if best is not None:
                self._generation = best[0]
                self._tables = dict.fromkeys(best[1], 0)
        if self._tables:  # on_change is for changes: the caller reads the start state
            log.warning("resync_pending", tables=self.tables())

    def mark(self, table: str, seq: int) -> None:
        """Record that an operation of ``table`` (``seq``) was not kept."""
        with self._lock:
            known = table in self._tables
            self._tables[table] = self._tables.get(table, 0) + 1
            if known:
                return
            self._write()
        log.error("resync_marked", table=table, seq=seq)
        self._changed()

    def generation(self, table: str) -> int | None:
        """How many unkept operations ``table`` had so far (``None``: not marked)."""
        return self._tables.get(table)

    def clear(self, table: str, generation: int) -> bool:
        """Remove ``table`` if nothing was unkept since ``generation``; return whether it was."""
        with self._lock:
            if self._tables.get(table) != generation:
                return False
            del self._tables[table]
            self._write()
        log.info("resync_cleared", table=table)
        self._changed()
        return True

    def tables(self) -> list[str]:
        """The marked tables, sorted."""
        return sorted(self._tables)

    def __bool__(self) -> bool:
        """Whether any table needs a re-sync."""
        return bool(self._tables)

    def _write(self) -> None:
        if self._fd is None:
            raise RuntimeError("resync ledger is not open")
        payload = json.dumps(sorted(self._tables)).encode()
        if len(payload) > _SLOT - _HEAD.size:
            # Thousands of tables: keep what fits rather than fail; the rest
            # is still known in memory and re-synced in this run.
            log.error("resync_ledger_full", tables=len(self._tables))
            payload = json.dumps(sorted(self._tables)[: 1 + _SLOT // 128]).encode()
        self._generation += 1
        checksum = _crc(len(payload), self._generation, payload)
        head = _HEAD.pack(checksum, len(payload), self._generation)
        try:
            os.pwrite(self._fd, head + payload, (self._generation % 2) * _SLOT)
        except OSError as exc:
            # Called on the application's write path: never raise there. The
            # tables are known in memory and re-synced in this run all the same.
            log.error("resync_ledger_write_failed", error=str(exc))
            return
        self._dirty = True

    def sync(self) -> None:
        """Fsync the last write, if any since the last call."""
        with self._lock:
            fd, dirty, self._dirty = self._fd, self._dirty, False
        if fd is not None and dirty:
            os.fdatasync(fd)

    def close(self) -> None:
        """Fsync and release the file."""
        try:
            self.sync()
        except OSError as exc:
            log.error("resync_ledger_write_failed", error=str(exc))
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.tables())


def read_ledger(path: Path) -> list[str]:
    """The tables a ledger file names, read without changing anything (``syncd status``)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    slots = [_read_slot(data[i * _SLOT : (i + 1) * _SLOT]) for i in (0, 1)]
    best = max((s for s in slots if s is not None), default=None)
    return sorted(best[1]) if best is not None else []


def _crc(length: int, generation: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(struct.pack("<IQ", length, generation)))


def _read_slot(data: bytes) -> tuple[int, list[str]] | None:
    """(generation, tables) of a slot whose CRC checks out, else ``None``."""
    if len(data) < _HEAD.size:
        return None
    checksum, length, generation = _HEAD.unpack_from(data)
    payload = data[_HEAD.size : _HEAD.size + length]
    if not generation or len(payload) != length or _crc(length, generation, payload) != checksum:
        return None
    try:
        tables = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
        return None
    return generation, tables
