"""The demo's run: the workload, the kill and the pause, the merged read, the live figures.

:func:`replicate` runs, side by side, a workload writing through
:meth:`Replicator.wrap <syncd.service.replicator.Replicator.wrap>` at a
steady rate, the two halves of the :class:`~syncd.dev.demoplan.Timeline`
(kill and restart :data:`~syncd.dev.demoplan.KILLED`; pause and resume
:data:`~syncd.dev.demoplan.PAUSED`, with a merged read while both are out),
and a watcher that samples ``status()["secondaries"]`` four times a second
for the view and the outages' figures. Then the writes stop, the pipeline is
flushed and five events are deleted on the primary.

The workload's notes in ``kv_memories`` are saved the way the original
application saves them (DELETE + CREATE, a new id each time, natural key
``[user_id, key]``); ``events`` records are written once each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from surrealdb import RecordID

from syncd.dev.demoplan import KILLED, PAUSED, Outages, Timeline
from syncd.dev.demoreport import ReadCheck
from syncd.dev.demoview import DemoView, Sample, SecondarySample
from syncd.dev.process import DevServerProcess
from syncd.reads.merged import rows_of
from syncd.service.replicator import Replicator
from syncd.words import plural

__all__ = ["PROBE", "DemoRun", "replicate", "save_note"]

_TICK = 0.05  # the workload writes in small bursts this far apart
_DELETED = 5  # events deleted on the primary before the verification
#: The note the merged read looks at (the workload's users are user0..user6).
PROBE = {"u": "reader", "k": "probe"}
_SAVE_DELETE = "DELETE kv_memories WHERE user_id = $u AND key = $k"
_PROBE_SQL = "SELECT * FROM kv_memories WHERE user_id = $u AND key = $k"


@dataclass
class DemoRun:
    """Shared state of one demo run."""

    rep: Replicator
    view: DemoView
    started: float = field(default_factory=time.monotonic)
    outages: Outages = field(default_factory=Outages)
    writes: int = 0
    events: int = 0  # events created
    deleted: list[int] = field(default_factory=list)  # the event ids deleted at the end
    notes: set[tuple[str, str]] = field(default_factory=set)  # the workload's natural keys
    phase: str = "writing"
    read: ReadCheck | None = None
    write_rate: float = 0.0
    _rate_mark: tuple[float, int] = (0.0, 0)  # (elapsed, writes) the rate is measured from

    def elapsed(self) -> float:
        """Seconds since the demo's writes started."""
        return time.monotonic() - self.started

    def secondaries(self) -> tuple[SecondarySample, ...]:
        """Every secondary's figures now, from ``status()`` (not from its queue)."""
        entries: Any = self.rep.status()["secondaries"]
        return tuple(SecondarySample.from_status(entry) for entry in entries)

    def one(self, name: str) -> SecondarySample:
        """Secondary ``name``'s figures now."""
        return next(s for s in self.secondaries() if s.name == name)

    def sample(self) -> Sample:
        """The figures now; the write rate is refreshed every half second."""
        now = self.elapsed()
        then, writes_then = self._rate_mark
        if now - then >= 0.5:
            self.write_rate = (self.writes - writes_then) / (now - then)
            self._rate_mark = (now, self.writes)
        return Sample(now, self.phase, self.writes, self.write_rate, self.secondaries())


async def save_note(db: Any, user: str, key: str, text: str) -> None:
    """The application's save: DELETE + CREATE, a new random id each time."""
    await db.query(_SAVE_DELETE, {"u": user, "k": key})
    await db.create("kv_memories", {"user_id": user, "key": key, "text": text})


async def _workload(run: DemoRun, db: Any, rate: int, stop: anyio.Event) -> None:
    per_tick = max(1, round(rate * _TICK))
    next_tick = time.monotonic()
    i = 0
    while not stop.is_set():
        for _ in range(per_tick):
            i += 1
            if i % 2:
                user, key = f"user{i % 7}", f"note{i % 40}"
                await save_note(db, user, key, f"v{i}")
                run.notes.add((user, key))
            else:
                await db.create(RecordID("events", i), {"kind": "demo", "n": i})
                run.events += 1
                if len(run.deleted) < _DELETED:
                    run.deleted.append(i)
            run.writes += 1
        next_tick += _TICK
        await anyio.sleep(max(0.0, next_tick - time.monotonic()))


def _read_outcomes(rep: Replicator) -> dict[tuple[str, str], float]:
    """``syncd_merged_reads_total`` by (secondary, outcome), read off the registry."""
    out = {}
    for family in rep.metrics.merged_reads.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                out[sample.labels["secondary"], sample.labels["outcome"]] = sample.value
    return out


async def _merged_read(run: DemoRun, db: Any) -> None:
    """With ``archive`` down and ``analytics`` paused: save the probe note anew on the
    primary, then read it merged. The primary's row must win over the stale one."""
    await save_note(db, PROBE["u"], PROBE["k"], "v2")
    before = _read_outcomes(run.rep)
    took = time.monotonic()
    rows = rows_of(await db.query(_PROBE_SQL, dict(PROBE)))
    took = time.monotonic() - took
    after = _read_outcomes(run.rep)
    outcomes = {
        name: outcome for (name, outcome), n in after.items() if n > before.get((name, outcome), 0)
    }

    async def stale(conn: Any) -> Any:
        return await conn.query(_PROBE_SQL, dict(PROBE))

    held = rows_of(await run.rep.fanout.get(PAUSED).secondary.call(stale, 5))
    run.read = ReadCheck(
        rows=len(rows),
        text=str(rows[0].get("text")) if rows else None,
        paused_text=str(held[0].get("text")) if held else None,
        outcomes=outcomes,
        seconds=took,
    )
    run.view.event(run.read.describe(KILLED, PAUSED))


async def _until(run: DemoRun, at: float) -> None:
    await anyio.sleep(max(0.0, at - run.elapsed()))


async def _kill_and_restart(run: DemoRun, archive: DevServerProcess, timeline: Timeline) -> None:
    """:data:`KILLED`'s part of the :class:`Timeline`."""
    await _until(run, timeline.kill_at)
    pid = archive.pid
    archive.kill()
    run.outages.begin("killed", run.elapsed(), run.one(KILLED))
    run.view.event(
        f"{KILLED} killed (SIGKILL, pid {pid}); writes go on: its backlog builds in memory, "
        f"then spills to its spool on disk, while {PAUSED} keeps up"
    )
    await _until(run, timeline.restart_at)
    # A start takes a second or two (the child imports, opens its store):
    # in a thread, so the view, the workload and the pause go on meanwhile.
    pid = (await anyio.to_thread.run_sync(archive.start)).pid
    run.outages.end(run.elapsed(), run.one(KILLED))
    run.view.event(f"{KILLED} restarted on the same port (pid {pid}); its backlog drains")


async def _pause_and_resume(run: DemoRun, db: Any, timeline: Timeline) -> None:
    """:data:`PAUSED`'s part of the :class:`Timeline`, and the merged read while both are out."""
    await _until(run, timeline.pause_at)
    run.rep.pause(secondary=PAUSED)
    run.outages.begin("paused", run.elapsed(), run.one(PAUSED))
    run.view.event(
        f'{PAUSED} paused (rep.pause(secondary="{PAUSED}")): capture goes on, '
        "nothing is applied to it, its backlog grows"
    )
    await anyio.sleep(0.3)
    await _merged_read(run, db)
    await _until(run, timeline.resume_at)
    run.rep.resume(PAUSED)
    run.outages.end(run.elapsed(), run.one(PAUSED))
    run.view.event(f'{PAUSED} resumed (rep.resume("{PAUSED}")); its backlog drains')


async def _watch(run: DemoRun, done: Callable[[], bool]) -> None:
    """Refresh the view until ``done()``; report each backlog as it drains."""
    while True:
        sample = run.sample()
        run.view.show(sample)
        for message in run.outages.observe(sample.elapsed, sample.secondaries):
            run.view.event(message)
        if done():
            return
        await anyio.sleep(0.25)


async def replicate(
    run: DemoRun, primary: Any, archive: DevServerProcess, *, duration: float, rate: int
) -> bool:
    """The workload and the script, then the flush and the deletes; whether the
    flush finished (when not, the verification shows what is missing)."""
    timeline = Timeline.for_duration(duration)
    db = run.rep.wrap(primary)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_workload, run, db, rate, stop)
        tg.start_soon(_kill_and_restart, run, archive, timeline)
        tg.start_soon(_pause_and_resume, run, db, timeline)
        await _watch(run, lambda: run.elapsed() >= timeline.end_at)
        stop.set()
    run.write_rate, run.phase = 0.0, "flushing"
    run.view.event(f"writes stopped after {plural(run.writes, 'write')}; flushing")
    flushed = anyio.Event()
    finished = True

    async def flush() -> None:
        nonlocal finished
        try:
            await run.rep.flush(timeout=60)
        except TimeoutError as exc:
            finished = False  # the verification shows what is missing
            run.view.event(str(exc))
        flushed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(flush)
        await _watch(run, flushed.is_set)
    for n in run.deleted:
        await db.delete(RecordID("events", n))
    run.phase = "done"
    run.view.show(run.sample())
    run.view.event(
        f"deleted {plural(len(run.deleted), 'event')} on the primary: the secondaries keep "
        "them (deletes are not propagated; they are archives)"
    )
    return finished
