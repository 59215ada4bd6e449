"""The schema mirror: every secondary defined as the primary is (tables, fields, indexes...).

What is mirrored and how a definition is translated between generations is
:mod:`syncd.surreal.schema` (pure); this module reads and writes.

Rules of this file:

- a secondary is brought in line when its connection comes up (start-up and
  every reconnect), when the primary's definitions change (the library: a
  ``DEFINE``/``ALTER``/``REMOVE`` sent through the wrapped connection; the
  daemon: a poll every ``schema_poll_interval``), and by ``verify --repair``;
- each secondary has its own task: one that is down or frozen holds back no
  other, and the data keeps flowing meanwhile (indexes are built
  ``CONCURRENTLY``);
- one statement per round trip, each under ``write_timeout``; a statement the
  secondary refuses is logged (event, kind, definition name, never record
  contents), counted in ``syncd_schema_refused_total`` and not sent again
  until the primary's definition changes; the rest still apply;
- a definition the primary removed is kept on the secondary (an archive) and
  reported, unless ``schema: {mirror_removals: true}``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio
import structlog
from anyio.abc import TaskStatus

from syncd.capture.recopier import AppPrimary
from syncd.config import Config
from syncd.errors import DatabaseUnavailable
from syncd.metrics import Metrics
from syncd.surreal.connection import ManagedConnection
from syncd.surreal.dialect import dialect_for, quote_ident
from syncd.surreal.errors import describe
from syncd.surreal.schema import Change, Key, Schema, diff, from_info, select

__all__ = [
    "Query",
    "SchemaMirror",
    "SchemaState",
    "app_query",
    "compare",
    "managed_query",
    "read_schema",
]

log = structlog.get_logger("syncd.service.schemamirror")

#: Runs one statement on a database and returns its result (raises on a refusal).
Query = Callable[[str], Awaitable[Any]]

_RETRY = 5.0
_PAUSED_CHECK = 1.0


async def read_schema(query: Query, tables: Callable[[Iterable[str]], Iterable[str]]) -> Schema:
    """``INFO FOR DB``, then ``INFO FOR TABLE`` for each of ``tables(db's tables)``."""
    db = await query("INFO FOR DB")
    db = db if isinstance(db, dict) else {}
    listed = db.get("tables")
    names = sorted(tables(listed.keys() if isinstance(listed, dict) else []))
    infos = {}
    for name in names:
        info = await query(f"INFO FOR TABLE {quote_ident(name)}")
        infos[name] = info if isinstance(info, dict) else {}
    return from_info(db, infos)


def app_query(conn: Any, seconds: float) -> Query:
    """A :data:`Query` through the application's own SDK connection (the library)."""
    primary = AppPrimary(conn)

    async def query(sql: str) -> Any:
        return await primary.call(lambda c: c.query(sql), seconds)

    return query


def managed_query(conn: ManagedConnection, seconds: float) -> Query:
    """A :data:`Query` on a managed connection, each call under ``seconds``."""

    async def query(sql: str) -> Any:
        return await conn.call(lambda c: c.query(sql), seconds)

    return query


async def compare(
    config: Config,
    primary: Query,
    secondary: Query,
    secondary_version: str | None,
    *,
    settled: dict[Key, tuple[str, str]] | None = None,
) -> list[Change]:
    """What a secondary lacks, has differently, or keeps after the primary removed it."""
    policy = config.schema_policy
    primary_all = await read_schema(primary, lambda names: [n for n in names if policy(n)])
    wanted = select(primary_all, policy)
    tables = {d.table for d in wanted.values() if d.table}

    def secondary_tables(names: Iterable[str]) -> set[str]:
        return tables | {n for n in names if policy(n)}

    have = await read_schema(secondary, secondary_tables)
    rules = dialect_for(secondary_version).rules if secondary_version else 3
    return diff(
        wanted,
        have,
        rules,
        primary=primary_all,
        policy=policy,
        removals=config.schema_.mirror_removals,
        settled=settled,
    )


@dataclass
class SchemaState:
    """What the mirror last found and did on one secondary (for ``status``)."""

    checked_at: float | None = None
    applied: int = 0
    refused: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        """For ``status()``."""
        return {
            "checked_at": self.checked_at,
            "applied": self.applied,
            "refused": list(self.refused),
            "archived": list(self.archived),
            "error": self.error,
        }


class _Slot:
    """One secondary's part: its connection, metrics, and what the mirror remembers."""

    def __init__(self, name: str, conn: ManagedConnection, metrics: Metrics) -> None:
        self.name = name
        self.conn = conn
        self.metrics = metrics
        self.due = True
        self.wake: anyio.Event | None = None
        #: (primary text, secondary text) last applied and read back, by key.
        self.settled: dict[Key, tuple[str, str]] = {}
        #: (key, primary text) refused once: not sent again until the text changes.
        self.refused: set[tuple[Key, str]] = set()
        self.state = SchemaState()

    def poke(self) -> None:
        self.due = True
        if self.wake is not None:
            self.wake.set()


class SchemaMirror:
    """Keeps each secondary's definitions in line with the primary's (see the module)."""

    def __init__(
        self,
        config: Config,
        secondaries: Iterable[tuple[str, ManagedConnection, Metrics]],
        *,
        poll_interval: float | None = None,
        paused: Callable[[str], bool] = lambda _name: False,
    ) -> None:
        """``secondaries``: (name, connection, metrics bound to it) of each secondary.

        ``poll_interval``: read the primary that often and act on a change
        (the daemon); None: only when told (:meth:`changed`). ``paused(name)``:
        a paused secondary (``syncd pause``) gets no definitions until resumed.
        """
        self.config = config
        self._slots = {name: _Slot(name, conn, metrics) for name, conn, metrics in secondaries}
        self._poll = poll_interval
        self._paused = paused
        self._seconds = config.write_timeout
        #: Reads the primary (set by ``Replicator.wrap`` or the daemon); None: not yet.
        self.primary: Query | None = None
        self._seen: frozenset[tuple[Key, str]] | None = None

    @property
    def enabled(self) -> bool:
        """Whether anything can be mirrored (``schema: off`` everywhere: not)."""
        return self.config.schema_.mirrors or any(
            t.schema_ == "mirror" for t in (self.config.tables or {}).values()
        )

    def changed(self, name: str | None = None) -> None:
        """The primary's definitions may have changed (``name``: that secondary only)."""
        for slot in self._slots.values():
            if name is None or slot.name == name:
                slot.poke()

    def state(self, name: str) -> SchemaState:
        """What the mirror last found and did on secondary ``name``."""
        return self._slots[name].state

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """One task per secondary, and the poll (if any), until cancelled."""
        for slot in self._slots.values():
            slot.wake = anyio.Event()
            if slot.due:
                slot.wake.set()
        async with anyio.create_task_group() as tg:
            if self.enabled:
                for slot in self._slots.values():
                    tg.start_soon(self._serve, slot)
                if self._poll is not None:
                    tg.start_soon(self._poll_primary, self._poll)
            task_status.started()

    async def _serve(self, slot: _Slot) -> None:
        with structlog.contextvars.bound_contextvars(secondary=slot.name):
            while True:
                assert slot.wake is not None
                await slot.wake.wait()
                slot.wake = anyio.Event()
                if self.primary is None or not slot.due:
                    continue
                await slot.conn.wait_up()
                if self._paused(slot.name):
                    await anyio.sleep(_PAUSED_CHECK)
                    slot.poke()
                    continue
                slot.due = False
                try:
                    await self.sync(slot.name)
                except DatabaseUnavailable as exc:
                    # The secondary coming back up pokes us; the primary does not.
                    slot.state.error = str(exc)
                    log.info("schema_sync_deferred", error=str(exc))
                    await anyio.sleep(_RETRY)
                    slot.poke()
                except Exception as exc:
                    # An INFO answer syncd cannot read, say: replication goes on,
                    # and the next change or reconnect tries again.
                    slot.state.error = describe(exc)
                    log.warning("schema_sync_failed", error=describe(exc))

    async def _poll_primary(self, interval: float) -> None:
        policy = self.config.schema_policy
        while True:
            await anyio.sleep(interval)
            if self.primary is None:
                continue
            try:
                schema = await read_schema(self.primary, lambda ns: [n for n in ns if policy(n)])
            except DatabaseUnavailable:
                continue
            except Exception as exc:
                log.warning("schema_read_failed", error=describe(exc))
                continue
            seen = frozenset((k, d.text) for k, d in select(schema, policy).items())
            if seen != self._seen:
                # The first poll counts as a change too: a definition made
                # between the start-up check and this poll is not missed.
                if self._seen is not None:
                    log.info("schema_changed_on_primary")
                self.changed()
            self._seen = seen

    async def sync(self, name: str, *, repair: bool = True) -> list[Change]:
        """Compare secondary ``name`` with the primary; apply the differences when
        ``repair``. Returns the changes found (those applied included).

        Raises:
            DatabaseUnavailable: either database is unreachable.
        """
        slot = self._slots[name]
        if self.primary is None:
            raise RuntimeError("the schema mirror has no primary to read yet")
        secondary = managed_query(slot.conn, self._seconds)
        changes = await compare(
            self.config,
            self.primary,
            secondary,
            slot.conn.server_version,
            settled=slot.settled,
        )
        state = slot.state
        state.checked_at, state.error = time.time(), None
        state.archived = [c.definition.describe() for c in changes if c.action == "archived"]
        slot.metrics.schema_archived.set(len(state.archived))
        if not repair:
            return changes
        applied: list[Change] = []
        for change in changes:
            if change.action == "unsupported":
                self._refuse(slot, change, "no form of it in this server generation")
            elif change.statement is not None:
                if (change.definition.key, change.definition.text) in slot.refused:
                    continue
                try:
                    await secondary(change.statement)
                except DatabaseUnavailable:
                    raise
                except Exception as exc:
                    self._refuse(slot, change, describe(exc))
                    continue
                applied.append(change)
                slot.metrics.schema_applied.labels(change.definition.kind).inc()
                state.applied += 1
                log.info(
                    "schema_applied",
                    action=change.action,
                    kind=change.definition.kind,
                    definition=change.definition.describe(),
                )
        if applied:
            await self._settle(slot, applied)
        return changes

    def _refuse(self, slot: _Slot, change: Change, why: str) -> None:
        marker = (change.definition.key, change.definition.text)
        if marker in slot.refused:
            return
        slot.refused.add(marker)
        slot.metrics.schema_refused.labels(change.definition.kind).inc()
        slot.state.refused.append(change.definition.describe())
        # The reason is the server's parse or validation message: it quotes
        # the definition (schema), never a record.
        log.warning(
            "schema_refused",
            action=change.action,
            kind=change.definition.kind,
            definition=change.definition.describe(),
            reason=why[:300],
        )

    async def _settle(self, slot: _Slot, applied: list[Change]) -> None:
        """Read back what was applied, so a pair the comparison cannot match is not
        applied again at every check (a default one generation prints, say)."""
        tables = {c.definition.table for c in applied if c.definition.table}
        query = managed_query(slot.conn, self._seconds)
        have = await read_schema(query, lambda names: tables)
        for change in applied:
            key = change.definition.key
            if key in have:
                slot.settled[key] = (change.definition.text, have[key].text)
