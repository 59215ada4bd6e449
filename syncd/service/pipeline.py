"""The pipeline's parts, built from the configuration and wired together.

Spool and re-sync ledger → queue → workers (each with the executor) →
secondary connection; the re-sync task beside them. The
:class:`~syncd.service.replicator.Replicator` owns the result and runs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio

from syncd.config import Config
from syncd.keys import KeyRule
from syncd.metrics import Metrics
from syncd.pipeline.deadletter import DeadLetterFile
from syncd.pipeline.queue import SyncQueue
from syncd.pipeline.resync import ResyncLedger
from syncd.pipeline.spool import Spool
from syncd.pipeline.worker import Worker, WorkerSettings
from syncd.service.connfailures import reporter
from syncd.service.resync import Resyncer
from syncd.sink.executor import Executor
from syncd.surreal.connection import ManagedConnection, managed_connection

__all__ = ["Pipeline", "build_pipeline", "drain"]


@dataclass(frozen=True)
class Pipeline:
    """The parts a Replicator runs."""

    queue: SyncQueue
    secondary: ManagedConnection
    keys: KeyRule
    workers: list[Worker]
    ledger: ResyncLedger | None
    resyncer: Resyncer | None


def build_pipeline(
    config: Config,
    metrics: Metrics,
    deadletters: DeadLetterFile,
    *,
    spool_dir: Path,
    ledger_path: Path | None,
    on_secondary_state: Callable[[bool], None],
) -> Pipeline:
    """Build every part; ``ledger_path`` ``None``: no re-sync (the daemon)."""
    ledger = ResyncLedger(ledger_path) if ledger_path is not None else None
    spool = Spool(
        spool_dir, max_bytes=config.spool_max_bytes, on_lost=metrics.spool_frames_lost.inc
    )
    queue = SyncQueue(
        lanes=config.sync_workers,
        capacity=config.queue_size,
        spool=spool,
        metrics=metrics,
        ledger=ledger,
        fsync_interval=config.capture_fsync_interval,
    )
    secondary = managed_connection(
        config,
        "secondary",
        name=metrics.secondary,
        on_state=on_secondary_state,
        on_reconnect=metrics.reconnects.inc,
        on_failure=reporter(metrics, "secondary"),
    )
    keys = config.key_rule()
    executor = Executor(
        secondary,
        keys=keys,
        versions=config.versions(),
        write_timeout=config.write_timeout,
        metrics=metrics,
    )
    settings = WorkerSettings.from_config(config)
    workers = [
        Worker(
            lane,
            queue=queue,
            executor=executor,
            conn=secondary,
            deadletters=deadletters,
            settings=settings,
            metrics=metrics,
        )
        for lane in range(config.sync_workers)
    ]
    resyncer = None
    if ledger is not None:
        resyncer = Resyncer(
            ledger, queue, secondary, keys, metrics, query_seconds=config.write_timeout
        )
        ledger.on_change = resyncer.ledger_changed
    return Pipeline(queue, secondary, keys, workers, ledger, resyncer)


async def drain(
    queue: SyncQueue, secondary: ManagedConnection, seconds: float, *, held: bool
) -> bool:
    """Wait up to ``seconds`` for what is queued now to be applied; whether it was.

    ``held`` (a refused password, a pause): nothing will drain, don't wait.
    """
    if held:
        return False  # a wrong password does not heal in a grace period, nor a pause end
    target = queue.last_seq
    if queue.finished_through(target):
        return True  # nothing to drain: no grace period for a secondary that is down
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not secondary.is_up:
            # Nothing drains while the secondary is down; a short grace
            # covers a reconnect in progress, the spool covers the rest.
            with anyio.move_on_after(min(2.0, deadline - time.monotonic())):
                await secondary.wait_up()
            if not secondary.is_up:
                return False
        with anyio.move_on_after(min(0.5, max(0.0, deadline - time.monotonic()))):
            await queue.wait_finished(target)
            return True
    return False
