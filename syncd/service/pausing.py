"""Pause and resume: which secondaries are paused, since when, and how that changes.

Rules of this file:

- secondaries are named. The flat ``secondary_*`` keys configure one, named
  ``secondary`` (:data:`~syncd.config.secondaries.FLAT_NAME`); ``None`` means
  every secondary; a name the configuration does not define is an
  :class:`~syncd.errors.UnknownSecondary` (a ConfigError) naming it;
- idempotent: pausing a paused secondary keeps the time its pause started,
  resuming one that runs does nothing and writes nothing;
- persisted before it takes effect: when ``state_dir`` cannot take the pause
  file, nothing changes and a ConfigError naming ``state_dir`` says why, so a
  pause an operator was told about is one a restart keeps;
- :meth:`PauseControl.pause` and :meth:`~PauseControl.resume` run on the
  event loop's thread (they open and close the workers' gates); the HTTP
  endpoint's threads hop there with :meth:`~PauseControl.from_thread`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.lowlevel
import structlog
from pydantic import SecretStr

from syncd.config.secondaries import FLAT_NAME, select
from syncd.metrics import Metrics
from syncd.pipeline.pause import PauseFile, PauseGate
from syncd.pipeline.statedir import state_error
from syncd.pipeline.worker import Worker
from syncd.service.control import ControlEndpoint
from syncd.service.httpserver import Control

__all__ = ["PauseControl", "PauseState"]

log = structlog.get_logger("syncd.service.pausing")


@dataclass(frozen=True, slots=True)
class PauseState:
    """One secondary's pause, as ``/pause``, ``/resume`` and ``status()`` report it."""

    secondary: str
    paused: bool
    since: float | None

    def as_dict(self) -> dict[str, object]:
        """The JSON shape of the HTTP answer: ``{"secondary", "paused", "since"}``."""
        return {"secondary": self.secondary, "paused": self.paused, "since": self.since}


class PauseControl:
    """The pause state of every secondary: gates, pause file and metrics kept in step."""

    def __init__(
        self,
        state_dir: Path,
        metrics: Metrics,
        *,
        workers: Mapping[str, Iterable[Worker]] | None = None,
        names: Sequence[str] = (FLAT_NAME,),
    ) -> None:
        """Every secondary in ``names`` starts running; :meth:`start` reads the file.

        ``workers`` maps a secondary's name to the workers writing to it: each
        gets that secondary's gate.
        """
        self._state_dir = state_dir
        self._file = PauseFile(state_dir)
        self._metrics = metrics
        self._gates = {name: PauseGate(name) for name in names}
        # Pauses in the file of secondaries this process does not serve.
        self._others: dict[str, float] = {}
        self._token: anyio.lowlevel.EventLoopToken | None = None
        for name in names:
            metrics.paused.labels(name).set(0)
            metrics.paused_since.labels(name).set(0)
        for name, writers in (workers or {}).items():
            for worker in writers:
                worker.gate = self._gates[name]

    def gate(self, name: str = FLAT_NAME) -> PauseGate:
        """The gate the workers of secondary ``name`` wait at."""
        return self._gates[name]

    def start(self) -> None:
        """Take up the pauses persisted by an earlier run; call on the event loop.

        Raises:
            ConfigError: the pause file cannot be read or understood (one line
                naming it).
        """
        self._token = anyio.lowlevel.current_token()
        for name, since in self._file.load().items():
            gate = self._gates.get(name)
            if gate is None:
                # Not served here (removed from the config, or a tool working
                # on another secondary): nothing to hold, but kept in the file.
                self._others[name] = since
                log.warning("pause_for_unknown_secondary_ignored", secondary=name)
                continue
            gate.close(since)
            self._show(gate)
            log.warning("replication_paused_at_start", secondary=name, since=since)

    # -- changes (event loop) -----------------------------------------------

    def pause(self, secondary: str | None = None) -> list[PauseState]:
        """Pause ``secondary`` (``None``: every one); return the states after.

        Raises:
            UnknownSecondary: no secondary has that name.
            ConfigError: ``state_dir`` cannot take the pause file.
        """
        gates = self._resolve(secondary)
        now = time.time()
        changed = [g for g in gates if not g.paused]
        if changed:
            self._persist({**self._paused(), **{g.name: now for g in changed}})
        for gate in changed:
            gate.close(now)
            self._show(gate)
            log.info("replication_paused", secondary=gate.name, since=now)
        return [self.state(g.name) for g in gates]

    def resume(self, secondary: str | None = None) -> list[PauseState]:
        """Resume ``secondary`` (``None``: every one); return the states after.

        Raises:
            UnknownSecondary: no secondary has that name.
            ConfigError: ``state_dir`` cannot take the pause file.
        """
        gates = self._resolve(secondary)
        changed = [g for g in gates if g.paused]
        if changed:
            names = {g.name for g in changed}
            self._persist({n: s for n, s in self._paused().items() if n not in names})
        now = time.time()
        for gate in changed:
            paused_for = now - (gate.since or now)
            gate.open()
            self._show(gate)
            log.info("replication_resumed", secondary=gate.name, paused_seconds=round(paused_for))
        return [self.state(g.name) for g in gates]

    def endpoint(self, token: SecretStr) -> Control:
        """The HTTP endpoint's ``control``: POST /pause and /resume, guarded by ``token``."""

        def change(action: str, secondary: str | None) -> list[dict[str, object]]:
            return [state.as_dict() for state in self.from_thread(action, secondary)]

        return ControlEndpoint(change, token, self._metrics)

    def from_thread(self, action: str, secondary: str | None) -> list[PauseState]:
        """``pause`` or ``resume`` from a thread other than the event loop's (HTTP)."""
        change = self.pause if action == "pause" else self.resume
        if self._token is None:  # not started: no loop whose gates could race
            return change(secondary)
        return anyio.from_thread.run_sync(change, secondary, token=self._token)

    # -- reading ------------------------------------------------------------

    def state(self, name: str = FLAT_NAME) -> PauseState:
        """The pause state of secondary ``name``."""
        gate = self._gates[name]
        return PauseState(name, gate.paused, gate.since)

    def is_paused(self, secondary: str | None = None) -> bool:
        """Whether ``secondary`` is paused (``None``: whether every one is)."""
        return all(g.paused for g in self._resolve(secondary))

    def status(self, name: str = FLAT_NAME) -> dict[str, object]:
        """``{"paused", "paused_since"}`` for secondary ``name``'s entry of ``status()``."""
        gate = self._gates[name]
        return {"paused": gate.paused, "paused_since": gate.since}

    async def unless_paused(
        self, wait: Callable[[], Awaitable[None]], secondary: str | None = None
    ) -> None:
        """Await ``wait()``, but return as soon as ``secondary`` is paused (``None``: every one).

        ``flush`` waits through this: what a paused secondary holds back will
        not be applied before a resume, so waiting for it would only hang.
        """
        if self.is_paused(secondary):
            return
        async with anyio.create_task_group() as tg:

            async def until_paused() -> None:
                for gate in self._resolve(secondary):
                    await gate.wait_closed()
                tg.cancel_scope.cancel()

            tg.start_soon(until_paused)
            await wait()
            tg.cancel_scope.cancel()

    # -- internals ----------------------------------------------------------

    def _resolve(self, secondary: str | None) -> list[PauseGate]:
        names = select(list(self._gates), None if secondary is None else [secondary])
        return [self._gates[name] for name in names]

    def _paused(self) -> dict[str, float]:
        own = {g.name: g.since for g in self._gates.values() if g.since is not None}
        return {**self._others, **own}

    def _persist(self, paused: dict[str, float]) -> None:
        try:
            self._file.save(paused)
        except OSError as exc:
            raise state_error(self._state_dir, exc) from None

    def _show(self, gate: PauseGate) -> None:
        self._metrics.paused.labels(gate.name).set(1 if gate.paused else 0)
        self._metrics.paused_since.labels(gate.name).set(gate.since or 0)
