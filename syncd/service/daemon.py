"""``syncd run``: the standalone daemon — changefeed capture into the shared pipeline.

Start-up, in order (each step logged; ``/readyz`` answers 503 until the end):
1. open the state dir, start the pipeline (queue, workers, secondary
   connection, HTTP endpoint) and the primary's connection manager;
2. wait for the primary (never giving up: reconnects with backoff);
3. make sure every replicated table has a changefeed — enable it with
   ``DEFINE TABLE OVERWRITE`` (see :mod:`syncd.capture.changefeed`) or, when
   ``changefeed_auto_enable`` is off, exit 2 naming the table and the fix;
4. load the checkpoint; with none, a backfill in progress, or one older than
   the feed's retention, backfill (bracketed by the feed position taken
   before the copy) for every secondary;
5. ``READY=1``; tail the feed into every secondary's queue. A secondary the
   checkpoint does not speak for (added since the last run) joins meanwhile:
   its backlog is held while the tables are copied to it, then applied
   (:mod:`syncd.service.joining`); the others stream throughout.

While running: the feed is read once for every secondary, as fast as the one
with the most room takes it; one that is behind (down, slow, paused with
``syncd pause``, joining) spools its backlog. While every secondary is behind,
or a spool refuses writes, the feed is the buffer: nothing is read. The
checkpoint advances to the lowest watermark of applied positions once a second;
the primary's definitions are read every ``schema_poll_interval`` and new or
changed ones applied to every secondary (:mod:`syncd.service.schemamirror`);
with ``tables`` omitted, new tables are found every
``changefeed_scan_interval`` and enabled and backfilled.

Signals: SIGTERM/SIGINT stop reading, ``STOPPING=1``, drain for up to
``drain_timeout``, save the checkpoint, exit 0; a second one exits at once
(the checkpoint still protects the data). SIGHUP re-reads the config file's
``log_level`` and ``log_json`` and re-opens the log stream; everything else
needs a restart.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TypeVar

import anyio
import structlog

from syncd.capture.backfill import copy_tables, keep_nothing, primary_connection, start_backfill
from syncd.capture.changefeed import ChangefeedReader
from syncd.capture.checkpoint import Checkpoint, CheckpointFile, out_of_retention
from syncd.capture.feedtables import FeedTables
from syncd.capture.tail import FeedTail
from syncd.config import Config, load_config, redact_url
from syncd.errors import ConfigError, PrimaryUnavailable
from syncd.service.checkpointer import Checkpointer
from syncd.service.connfailures import failure_label, reporter
from syncd.service.fanout import Fanout
from syncd.service.httpserver import HttpEndpoint, serve
from syncd.service.joining import joining, run_join
from syncd.service.replicator import fresh_rates, status_of
from syncd.service.schemamirror import managed_query
from syncd.service.sdnotify import Notifier
from syncd.service.stopping import Stopped, unless_stopped
from syncd.surreal.dialect import dialect_for
from syncd.surreal.errors import cause

log = structlog.get_logger("syncd.service.daemon")
T = TypeVar("T")

_READ_LIMIT = 1000
_CHECKPOINT_INTERVAL = 1.0
_STATUS_INTERVAL = 5.0
_TABLE_SCAN_INTERVAL = 10.0


class Daemon:
    """Runs changefeed capture until told to stop; see the module docstring."""

    def __init__(
        self,
        config: Config,
        *,
        config_path: Path | None = None,
        notifier: Notifier | None = None,
        reload_logging: Callable[[Config], None] | None = None,
        resync: bool = False,
    ) -> None:
        self.config = config
        self._config_path = config_path
        self._notifier = notifier or Notifier()
        self._reload_logging = reload_logging
        # No re-sync ledger: what a spool cannot take waits in memory, and the
        # feed delivers it again after a crash.
        self.fanout = Fanout(config, ledger=False, schema_poll=config.schema_poll_interval)
        self.metrics = self.fanout.metrics
        self.primary = primary_connection(config)
        self.fanout.schema.primary = managed_query(self.primary, config.write_timeout)
        self.primary.on_state = lambda up: self.metrics.primary_up.set(1 if up else 0)
        self.primary.on_failure = reporter(self.metrics, "primary")
        self.reader = ChangefeedReader(self.primary, timeout=config.write_timeout)
        self.checkpointer = Checkpointer(
            CheckpointFile(config.state_path), self.reader, self.metrics, resync=resync
        )
        self._stop = anyio.Event()
        self.feeds = FeedTables(config, self.reader)
        self.tail = FeedTail(
            self.reader,
            self.fanout,
            replicates=self.feeds.replicates,
            poll=config.changefeed_poll_interval,
            stop=self._stop,
            before_read=self._adopt_if_pending,
        )
        self.http: HttpEndpoint | None = None
        self._ready = False
        self._rates = fresh_rates()
        self._joining: list[str] = []
        #: Replicated tables whose changefeed went away while running, and why it
        #: is not back yet (``/readyz`` answers 503 while there is one).
        self._feeds_lost: dict[str, str] = {}

    # -- the whole life ----------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; return the process exit code."""
        # Signals and the watchdog live in the outer group: they must keep
        # working while the pipeline drains (a drain can outlast WatchdogSec/2,
        # and a second signal during it must still exit at once).
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._signals)
            if self._notifier.watchdog_interval:
                outer.start_soon(self._watchdog, self._notifier.watchdog_interval)
            saved = await anyio.to_thread.run_sync(self.checkpointer.peek)
            self._joining = joining(self.config.secondary_names(), saved)
            self.fanout.hold(self._joining)
            async with self.fanout, anyio.create_task_group() as tg:
                self._serve_http()
                await tg.start(self.primary.run)
                try:
                    await self._unless_stopped(self._start_up)
                except ConfigError:
                    tg.cancel_scope.cancel()
                    raise
                except Stopped:
                    pass
                if not self._stop.is_set():
                    self._ready = True
                    self._notifier.ready(self.fanout.summary())
                    log.info("daemon_ready", position=self.checkpointer.position())
                    tg.start_soon(self._status_loop)
                    if self.config.log_summary_interval > 0:
                        tg.start_soon(self._summary_loop, self.config.log_summary_interval)
                    if self.config.log_summary_interval > 0:
                        tg.start_soon(self._summary_loop, self.config.log_summary_interval)
                    tg.start_soon(self._scan_tables_loop)
                    for name in self._joining:
                        tg.start_soon(self._join, name)
                    await self._tail()
                self._notifier.stopping("draining")
                log.info("daemon_draining", drain_timeout=self.config.drain_timeout)
                tg.cancel_scope.cancel()
            # The pipeline has drained (Fanout.__aexit__); record how far.
            await self.checkpointer.save_applied(self.fanout, self.tail.newest_seen)
            if self.http is not None:
                self.http.stop()
            log.info("daemon_stopped", position=self.checkpointer.position())
            outer.cancel_scope.cancel()
        return 0

    async def _start_up(self) -> None:
        await self._wait_primary()
        if self._stop.is_set():
            return
        await self._retry_primary(self._detect_dialect)
        await self.feeds.ensure(self._retry_primary)
        checkpoint = await self.checkpointer.load_resumable()
        names = self.config.secondary_names()
        self.checkpointer.caught_up = tuple(n for n in names if n not in self._joining)
        checkpoint, copied = await self._maybe_backfill(checkpoint)
        if copied:
            # A whole backfill ran: it served every secondary, nobody joins.
            self.checkpointer.caught_up = tuple(names)
            for name in self._joining:
                await self.fanout.release(name)
            self._joining = []
        else:
            self.checkpointer.resume(checkpoint, self.fanout)
        self.tail.newest_seen = checkpoint.position

    async def _detect_dialect(self) -> None:
        """Ask the primary its version: feed positions and SurrealQL depend on its generation."""
        version = await self.primary.call(lambda c: c.version(), self.config.write_timeout)
        try:
            dialect = dialect_for(str(version))
        except ValueError:
            raise ConfigError(
                f"primary at {redact_url(self.config.primary_url)} answers version "
                f"{str(version)[:40]!r}: not a SurrealDB 2.x or later server"
            ) from None
        if not dialect.tested:
            log.warning("server_untested", role="primary", version=str(version), rules=3)
        self.checkpointer.server_version, self.reader.dialect = str(version), dialect

    async def _unless_stopped(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run ``step``; a stop request cancels it and raises :class:`Stopped`."""
        await unless_stopped(self._stop, step)

    async def _wait_primary(self) -> None:
        with anyio.move_on_after(self.config.connect_timeout):
            await self.primary.wait_up()
        if not self.primary.is_up:
            log.warning("waiting_for_primary", error=self.primary.last_error)
            async with anyio.create_task_group() as tg:

                async def stop_waiting() -> None:
                    await self._stop.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(stop_waiting)
                await self.primary.wait_up()
                tg.cancel_scope.cancel()

    # -- changefeeds -------------------------------------------------------

    async def _maybe_backfill(self, checkpoint: Checkpoint | None) -> tuple[Checkpoint, bool]:
        """The checkpoint to tail from, and whether a whole backfill ran to make it."""
        if checkpoint is not None and checkpoint.backfill is None:
            if not out_of_retention(checkpoint.saved_at, self.feeds.retention(), time.time()):
                await self.checkpointer.check_not_ahead(checkpoint, self._retry_primary)
                return checkpoint, False
            log.warning(
                "checkpoint_out_of_retention",
                saved_at=checkpoint.saved_at,
                retention=self.feeds.retention(),
            )
            checkpoint = None
        if checkpoint is None or checkpoint.backfill is None:
            position = await self._retry_primary(self.reader.latest_position)
            checkpoint = Checkpoint(position=None, backfill=start_backfill(position or 0))
            await self.checkpointer.save(checkpoint)
        assert checkpoint.backfill is not None
        log.info("backfill_started", start_position=checkpoint.backfill.start_position)
        checkpoint = await copy_tables(
            primary=self.primary,
            intake=self.fanout,
            tables=self.feeds.wanted(),
            checkpoint=checkpoint,
            save=self.checkpointer.save,
            query_seconds=self.config.write_timeout,
        )
        assert checkpoint.backfill is not None
        # Resume the feed at the position taken before the copy (inclusive);
        # an empty feed then is read from its start.
        start = checkpoint.backfill.start_position
        done = replace(checkpoint, backfill=None).advanced(start - 1)
        if start == 0:
            done = replace(done, position=None)
        await self.checkpointer.save(done)
        log.info("backfill_done", position=done.position)
        return done, True

    async def _scan_tables_loop(self) -> None:
        """Every ``_TABLE_SCAN_INTERVAL``: tables created since start-up (``tables``
        omitted) and replicated tables whose changefeed is gone (a ``DEFINE TABLE ...
        OVERWRITE`` without ``CHANGEFEED``, a migration tool) are adopted again."""
        while True:
            await anyio.sleep(_TABLE_SCAN_INTERVAL)
            try:
                tables = await self.reader.tables()
            except PrimaryUnavailable:
                continue
            for table in self.feeds.lost_in(tables):
                if table not in self._feeds_lost:
                    # Writes since the feed went are in no feed: the table is
                    # copied again once its feed is back (see _adopt_new_tables).
                    log.error("changefeed_lost", table=table)
                    self._feeds_lost[table] = "gone"
            new = self.feeds.new_in(tables)
            # A lost feed an operator restored: its table is copied again.
            new += [t for t in self._feeds_lost if self.feeds.has_feed(tables, t) and t not in new]
            if new:
                self._pending_new_tables = new

    _pending_new_tables: list[str] | None = None

    async def _adopt_new_tables(self) -> None:
        """Enable the feed of tables created since start-up (or whose feed was lost),
        then copy them.

        Runs between two reads of the tail, so the tables' feed entries (all
        after the enable) are read after their copy is applied. With
        ``changefeed_auto_enable`` off, a lost feed stays reported (``/readyz``
        503) until an operator restores it; then the table is copied.
        """
        new, self._pending_new_tables = self._pending_new_tables or [], None
        try:
            await self.feeds.ensure(self._retry_primary)
        except ConfigError as exc:
            for table in new:
                if table in self._feeds_lost:
                    self._feeds_lost[table] = str(exc)
            log.error("changefeed_not_restored", tables=new, error=str(exc))
            return
        checkpoint = Checkpoint(position=None, backfill=start_backfill(0))
        await copy_tables(
            primary=self.primary,
            intake=self.fanout,
            tables=new,
            checkpoint=checkpoint,
            save=keep_nothing,
            query_seconds=self.config.write_timeout,
        )
        restored = [t for t in new if self._feeds_lost.pop(t, None) is not None]
        if restored:
            log.warning("changefeed_restored", tables=restored)
        log.info("new_tables_adopted", tables=new)

    async def _join(self, name: str) -> None:
        await run_join(
            self.config,
            name,
            primary=self.primary,
            tables=self.feeds.wanted,
            fanout=self.fanout,
            checkpointer=self.checkpointer,
        )
        self._joining.remove(name)

    # -- the tail ----------------------------------------------------------

    async def _tail(self) -> None:
        position = self.tail.newest_seen
        since = 0 if position is None else self.reader.dialect.next_position(position)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._checkpoint_loop)
            await self.tail.run(since)
            if self.tail.stuck is not None:
                await self._stop.wait()  # loud and idle until stopped: never a busy loop
            tg.cancel_scope.cancel()

    async def _adopt_if_pending(self) -> None:
        if not self._pending_new_tables:
            return
        with contextlib.suppress(Stopped):
            await self._unless_stopped(partial(self._guard_primary, self._adopt_new_tables))

    async def _sleep_or_stop(self, seconds: float) -> None:
        with anyio.move_on_after(seconds):
            await self._stop.wait()

    async def _guard_primary(self, step: Callable[[], Awaitable[None]]) -> None:
        try:
            await step()
        except PrimaryUnavailable:
            await self._sleep_or_stop(self.config.changefeed_poll_interval)

    async def _retry_primary(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run a start-up step, waiting out primary outages; stop if asked to."""
        while True:
            try:
                return await fn()
            except PrimaryUnavailable as exc:
                log.warning("primary_unavailable", error=str(exc))
                await self._wait_primary()
                if self._stop.is_set():
                    raise Stopped from exc

    # -- checkpoint ----------------------------------------------------------

    async def _checkpoint_loop(self) -> None:
        while True:
            await anyio.sleep(_CHECKPOINT_INTERVAL)
            await self.checkpointer.save_applied(self.fanout, self.tail.newest_seen)

    # -- HTTP, status, watchdog, signals ---------------------------------------

    def _serve_http(self) -> None:
        """Serve ``/metrics``, ``/readyz``, ``/status`` and pause/resume on ``metrics_listen``.

        Raises:
            ConfigError: the address cannot be bound (a daemon must be scraped).
        """
        if self.config.metrics_listen:
            self.http = serve(
                self.config.metrics_listen,
                self.metrics.registry,
                ready=self.readiness,
                status=self.status,
                required=True,
                control=self.fanout.pauses.endpoint(self.config.control_token),
            )

    def readiness(self) -> tuple[bool, str]:
        """``/readyz``: not ready while starting or stopping, while the feed's position is
        stuck, or while a secondary is refused or down too long (the reason says which)."""
        if not self._ready:
            # What holds the start up (a refused password, a primary out of
            # reach), not just "starting": the operator reads this first.
            why = [*self.fanout.refusals(), *filter(None, [self._primary_problem()])]
            return False, "starting" if not why else f"starting: {why[0]}"
        if not self.fanout.running or self._stop.is_set():
            return False, "stopping"
        if self.tail.stuck is not None:
            return False, self.tail.stuck
        if self._feeds_lost:
            lost = ", ".join(f"{t} ({why})" for t, why in sorted(self._feeds_lost.items()))
            return False, f"changefeed lost on the primary: {lost}"
        problems = self.fanout.problems()
        if problems:
            return False, "; ".join(problems)
        return True, "ready"

    def _primary_problem(self) -> str | None:
        """Why the start waits on the primary, while it does (``/readyz``'s reason)."""
        primary = self.primary
        if primary.is_up or primary.failure is None:
            return None
        return f"primary down: {cause(primary.failure)}"

    def status(self) -> dict[str, object]:
        """``/status``: the secondaries' state, the checkpoint and the primary."""
        return {**status_of(self.fanout, self._rates, self.readiness()), **self._status_extra()}

    def _status_extra(self) -> dict[str, object]:
        saved = self.checkpointer.saved
        return {
            "checkpoint": {
                "position": None if saved is None else saved.position,
                "saved_at": None if saved is None else saved.saved_at,
                "backfill": None if saved is None or saved.backfill is None else True,
            },
            "primary": {
                "up": self.primary.is_up,
                "since": self.primary.since,
                "version": self.checkpointer.server_version,
                "tested": self.reader.dialect.tested if self.checkpointer.server_version else None,
                "failure": failure_label(self.primary),
            },
            "newest_seen": self.tail.newest_seen,
        }

    async def _status_loop(self) -> None:
        while True:
            await anyio.sleep(_STATUS_INTERVAL)
            self._notifier.status(self.fanout.summary())

    async def _summary_loop(self, interval: float) -> None:
        """One info line per ``interval``: a terminal (or journal) shows the daemon at work."""
        applied = self.metrics.snapshot()["applied"]
        while True:
            await anyio.sleep(interval)
            fanout = self.fanout
            now = self.metrics.snapshot()["applied"]
            log.info(
                "replication_summary",
                applied=int(now),
                applied_per_second=round((now - applied) / interval, 1),
                lag_seconds=round(fanout.lag_seconds(), 3) if self.primary.is_up else None,
                backlog=fanout.queue_depth + fanout.spool_depth,
                secondaries=fanout.states(),
            )
            applied = now

    async def _watchdog(self, interval: float) -> None:
        while True:
            self._notifier.watchdog()
            await anyio.sleep(interval)

    async def _signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    self._reload()
                    continue
                if self._stop.is_set():
                    log.warning("second_signal_exiting_now", signal=signum.name)
                    os._exit(1)
                log.info("stop_requested", signal=signum.name)
                self._stop.set()

    def _reload(self) -> None:
        if self._config_path is None or self._reload_logging is None:
            return
        try:
            fresh = load_config(self._config_path)
        except ConfigError as exc:
            log.error("reload_failed", error=str(exc))
            return
        self._reload_logging(fresh)
        log.info("reloaded", log_level=fresh.log_level)
