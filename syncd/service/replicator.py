"""The Replicator: the library's face — wrap, flush, pause, status — over the fan-out.

Usage (the public contract): ``async with syncd.Replicator(config) as rep:
db = rep.wrap(primary); ...; await rep.flush(timeout=30)`` (see the README).

Every captured operation is in the spool under ``state_dir`` before the
application's write returns (see :mod:`syncd.pipeline.queue`): an application
killed at any moment loses nothing, and the next start on the same
``state_dir`` delivers what was not applied, in order. The secondaries'
replicas, their pauses, their start-up and their drain are the
:class:`~syncd.service.fanout.Fanout`'s; the Replicator adds merged reads,
the HTTP endpoint (``/metrics``, ``/readyz``, ``/status``, pause and resume)
and the public methods.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import anyio
from prometheus_client import CollectorRegistry

from syncd.capture.wrapper import ReplicatedConnection
from syncd.config import Config
from syncd.reads.merged import MergedReads, Source
from syncd.service.fanout import Fanout
from syncd.service.httpserver import HttpEndpoint, serve
from syncd.service.rates import RateSampler
from syncd.service.schemamirror import app_query
from syncd.surreal.kinds import check_kind

__all__ = ["Replicator"]

# Counters whose last-minute rates status() reports (Metrics.snapshot() names).
_RATE_COUNTERS = ("applied", "enqueued", "dead_lettered")


class Replicator:
    """Replicates captured writes to every secondary and merges reads from them."""

    def __init__(
        self,
        config: Config,
        *,
        registry: CollectorRegistry | None = None,
        serve_http: bool = True,
    ) -> None:
        """Build every replica; nothing is opened or started until ``async with``.

        ``registry``: where the metrics are registered (a test's own); the
        HTTP endpoint on ``metrics_listen`` is served unless ``serve_http`` is
        false.
        """
        self.config = config
        #: Every secondary's replica, their pauses and their life.
        self.fanout = Fanout(config, registry)
        self.metrics = self.fanout.metrics
        self.reads = MergedReads(
            [Source(r.name, r.secondary) for r in self.fanout],
            self.fanout.keys,
            query_timeout=config.query_timeout,
            metrics=self.metrics,
            active=lambda: self.config.sync_enabled and self.fanout.running,
            newest=config.newest_fields(),
            max_rows=config.merge_max_rows,
            primary_unmergeable=config.primary_unmergeable(),
        )
        self._serve_http = serve_http
        self._entered = False
        self.http: HttpEndpoint | None = None
        # Sampled by status() itself, so the rates need no task of their own;
        # the first sample (all zeros) makes the first answer "since start".
        self._rates = fresh_rates()

    async def __aenter__(self) -> Replicator:
        """Open the state, start every replica, serve HTTP.

        Raises:
            ConfigError: ``state_dir`` is unusable (a file, read-only, locked),
                or ``metrics_listen`` cannot be bound.
        """
        await self.fanout.__aenter__()
        self._entered = True
        if self._serve_http and self.config.metrics_listen:
            try:
                self.http = serve(
                    self.config.metrics_listen,
                    self.metrics.registry,
                    ready=self.readiness,
                    status=self.status,
                    control=self.fanout.pauses.endpoint(self.config.control_token),
                )
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self.fanout.__aexit__(None, None, None)
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Drain within ``drain_timeout``, then persist what is left and stop."""
        try:
            await self.fanout.__aexit__(exc_type, exc, tb)
        finally:
            with anyio.CancelScope(shield=True):
                await self.reads.aclose()
            if self.http is not None:
                self.http.stop()

    # -- public API --------------------------------------------------------

    def wrap(self, primary: Any) -> ReplicatedConnection:
        """Wrap a connected SDK connection: writes replicate, reads merge.

        A re-sync (after a spool could not keep some operations) reads the
        primary through the connection wrapped last.

        Raises:
            TypeError: ``primary`` is not an asynchronous SDK connection (a
                blocking one is wrapped by ``syncd.BlockingReplicator``).
        """
        check_kind(primary, "async")
        for replica in self.fanout:
            if replica.recopier is not None:
                replica.recopier.primary = primary
        self.fanout.schema.primary = app_query(primary, self.config.write_timeout)
        self.fanout.schema.changed()
        return ReplicatedConnection(primary, self.fanout, self.reads)

    # The contract spells it ``flush(timeout=30)``; the deadline is applied
    # inside with anyio.fail_after, as ASYNC109 asks.
    async def flush(self, timeout: float | None = 30.0) -> None:  # noqa: ASYNC109
        """Wait until everything enqueued so far is applied or dead-lettered.

        On every secondary that is not paused (a paused one is not waited for,
        and one paused while this waits stops being waited for); that includes
        a re-sync of the tables whose operations a spool could not keep.
        ``TimeoutError`` after ``timeout`` seconds (``None``: wait as long as
        it takes), naming what each secondary still holds.
        """
        await self.fanout.flush(timeout)

    def pause(self, secondary: str | None = None) -> None:
        """Stop applying to ``secondary`` (``None``: every secondary) until :meth:`resume`.

        Synchronous and idempotent; call it from the event loop's thread.
        Capture goes on: operations wait in the queue and the spool, nothing
        is dropped; a batch already sent may finish. The pause is kept in
        ``state_dir`` and survives a restart.

        Raises:
            ConfigError: no secondary has that name, or ``state_dir`` cannot
                take the pause file.
        """
        self.fanout.pauses.pause(secondary)

    def resume(self, secondary: str | None = None) -> None:
        """Apply to ``secondary`` (``None``: every secondary) again; the backlog drains.

        Synchronous and idempotent; the same rules as :meth:`pause`.
        """
        self.fanout.pauses.resume(secondary)

    def is_paused(self, secondary: str | None = None) -> bool:
        """Whether ``secondary`` is paused (``None``: whether every secondary is)."""
        return self.fanout.pauses.is_paused(secondary)

    # -- health ------------------------------------------------------------

    def readiness(self) -> tuple[bool, str]:
        """``/readyz``: not ready while starting or stopping, or while a secondary is
        refused or down longer than ``readyz_down_threshold`` (the reason names it)."""
        if not self.fanout.running:
            return False, "stopping" if self._entered else "starting"
        problems = self.fanout.problems()
        if problems:
            return False, "; ".join(problems)
        return True, "ready"

    def status(self) -> dict[str, object]:
        """A snapshot for ``/status`` and ``syncd status`` (``rates``: over about the last
        minute).

        ``secondaries`` has one entry per secondary (state, lag, backlog, pause);
        ``secondary`` is the first of them, and the totals add them up.
        """
        return status_of(self.fanout, self._rates, self.readiness())


def fresh_rates() -> RateSampler:
    """A sampler of the rates ``status()`` reports, whose first answer is "since now"."""
    rates = RateSampler()
    rates.observe(time.monotonic(), dict.fromkeys(_RATE_COUNTERS, 0.0))
    return rates


def status_of(fanout: Fanout, rates: RateSampler, readiness: tuple[bool, str]) -> dict[str, object]:
    """The ``status()`` both the library and the daemon answer (the daemon adds its own)."""
    snapshot = fanout.metrics.snapshot()
    sampled = rates.observe(
        time.monotonic(), {name: snapshot.get(name, 0.0) for name in _RATE_COUNTERS}
    )
    ready, why = readiness
    return {
        "ready": {"ok": ready, "reason": why},
        **fanout.status(),
        "rates": sampled.as_dict(),
        "metrics": snapshot,
    }
