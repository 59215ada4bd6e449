"""``syncd verify --repair``: resend what verify found missing or differing, then verify again.

The records go through the normal pipeline (a :class:`~syncd.service.fanout.Fanout`:
batched idempotent UPSERTs, natural keys, retries, dead letters), as the
primary holds them at the time of the verification, page by page, so memory
stays bounded (the queue spills to disk).

Each secondary is repaired on its own: what verify found missing there goes
to that secondary only. Its fan-out keeps its spool in ``repair/`` under
that secondary's state directory, not in the daemon's spool: a daemon may be
running on the same state directory, and two processes appending to one
spool would corrupt it. A lock file keeps two repairs apart. Dead letters of
the repair are moved into that secondary's dead-letter file afterwards, where
``syncd dlq`` finds them; operations not applied within the flush timeout
stay in the repair spool and are sent by the next ``--repair``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from syncd.config import Config
from syncd.errors import SyncdError
from syncd.pipeline.deadletter import DeadLetterFile
from syncd.pipeline.statedir import state_files
from syncd.service.fanout import Fanout
from syncd.surreal.endpoints import Caller
from syncd.tools.control import refuse_while_paused
from syncd.tools.verify import Progress, Verifier, VerifyOptions, VerifyReport, apply_schema

__all__ = [
    "FLUSH_TIMEOUT",
    "REPAIR_DIR",
    "RepairOutcome",
    "adopt_dead_letters",
    "verify_and_repair",
]

#: Sub-directory of ``state_dir`` holding the repair's spool and lock.
REPAIR_DIR = "repair"
#: Longest wait for the repaired records to be applied before verifying again.
FLUSH_TIMEOUT = 300.0


@dataclass
class RepairOutcome:
    """What a repair did: the first verification, what it sent, the second verification."""

    first: VerifyReport
    enqueued: int = 0
    flushed: bool = True  # False: not everything was applied within FLUSH_TIMEOUT
    dead_lettered: int = 0  # repaired records the secondary refused (now in the dlq)
    second: VerifyReport | None = None  # None: the first run did not complete
    schema_applied: int = 0  # definitions sent to the secondary
    schema_refused: list[str] = field(default_factory=list)  # and those it refused

    @property
    def consistent(self) -> bool:
        """Whether the replica is consistent after the repair."""
        return self.second is not None and self.second.consistent

    def to_json(self) -> dict[str, Any]:
        """JSON-able form for ``--json``."""
        return {
            "consistent": self.consistent,
            "before": self.first.to_json(),
            "enqueued": self.enqueued,
            "flushed": self.flushed,
            "dead_lettered": self.dead_lettered,
            "schema_applied": self.schema_applied,
            "schema_refused": self.schema_refused,
            "after": None if self.second is None else self.second.to_json(),
        }


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SyncdError(f"another repair is running (lock {lock_path} is held)") from None
        yield
    finally:
        os.close(fd)


def adopt_dead_letters(source: Path, target: Path) -> int:
    """Move the well-formed entries of the dead-letter file ``source`` to ``target``."""
    src = DeadLetterFile(source)
    entries, _malformed = src.read()  # malformed lines stay where they are, for a human
    dst = DeadLetterFile(target)
    for entry in entries:
        dst.append(
            entry.op,
            entry.error,
            first_failed_at=entry.first_failed_at,
            last_failed_at=entry.last_failed_at,
        )
    src.remove([entry.line_no for entry in entries])
    return len(entries)


async def verify_and_repair(
    config: Config,
    primary: Caller,
    secondary: Caller,
    options: VerifyOptions,
    *,
    secondary_name: str | None = None,
    progress_path: Path | None = None,
    on_progress: Progress | None = None,
) -> RepairOutcome:
    """Verify, enqueue the missing and differing records, wait for them, verify again.

    ``config`` is the whole configuration; ``secondary`` is the connection to
    the secondary ``secondary_name`` (default: the first one), which is the
    only one repaired: its own repair spool, lock and dead-letter file.
    Raises ``SyncdError`` at once when that secondary is paused (``syncd pause``).
    """
    name = secondary_name or config.secondary_names()[0]
    refuse_while_paused(config, "a repair", [name])
    own_state = config.secondary_state(name)
    repair_dir = own_state / REPAIR_DIR
    # A state of its own (spool, lock, dead letters) inside the secondary's,
    # so a repair can run beside the daemon that holds the secondary's spool.
    rep_config = config.model_copy(update={"state_dir": str(repair_dir), "metrics_listen": None})
    with _exclusive(repair_dir / "lock"):
        # No re-sync ledger: the next verify finds again what this one could not keep.
        async with Fanout(rep_config, ledger=False, only=name) as fanout:
            enqueued = 0

            def enqueue(_table: str, rows: list[dict[str, Any]]) -> None:
                nonlocal enqueued
                enqueued += fanout.capture(rows, source="repair")

            first = await Verifier(
                config,
                primary,
                secondary,
                options,
                progress_path=progress_path,
                repair=enqueue,
                on_progress=on_progress,
            ).run()
            outcome = RepairOutcome(first, enqueued=enqueued)
            applied, refused = await apply_schema(secondary, first.schema_drift)
            outcome.schema_applied, outcome.schema_refused = applied, refused
            try:
                await fanout.flush(timeout=FLUSH_TIMEOUT)
            except TimeoutError:
                outcome.flushed = False
        repair_dlq = state_files(rep_config.secondary_state(name))[1]
        outcome.dead_lettered = adopt_dead_letters(repair_dlq, state_files(own_state)[1])
    if not first.complete:
        return outcome
    again = replace(options, max_pages=None, restart=True)
    outcome.second = await Verifier(
        config, primary, secondary, again, on_progress=on_progress
    ).run()
    return outcome
