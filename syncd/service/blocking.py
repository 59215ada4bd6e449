"""The BlockingReplicator: the library for applications without an event loop.

Usage (the public contract)::

    with syncd.BlockingReplicator(config) as rep:
        db = rep.wrap(Surreal(url))      # a blocking SDK connection
        db.upsert(RecordID("kv_memories", "a"), {...})
        rep.flush(timeout=30)

It is a :class:`~syncd.service.replicator.Replicator` run on an event loop in
a thread of its own (an anyio blocking portal, started on ``with`` and
stopped after the drain on leaving); its methods are plain calls from any
thread. How a wrapped blocking connection's calls run is
:mod:`syncd.capture.blocking`'s.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal
from prometheus_client import CollectorRegistry

from syncd.capture.blocking import BlockingReplicatedConnection, ThreadedPrimary
from syncd.config import Config
from syncd.service.replicator import Replicator
from syncd.service.schemamirror import app_query
from syncd.surreal.kinds import check_kind

__all__ = ["BlockingReplicator"]


class BlockingReplicator:
    """A :class:`Replicator` for blocking code: ``with``, plain calls, safe from any thread."""

    def __init__(
        self,
        config: Config,
        *,
        registry: CollectorRegistry | None = None,
        serve_http: bool = True,
    ) -> None:
        """Build the replicator; nothing is opened or started until ``with``.

        The arguments are :class:`Replicator`'s.
        """
        self.config = config
        #: The replicator running on the loop thread (its fan-out, metrics, reads).
        self.replicator = Replicator(config, registry=registry, serve_http=serve_http)
        self.metrics = self.replicator.metrics
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._running: AbstractContextManager[Replicator] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> BlockingReplicator:
        """Start the loop thread, then the replicator on it (see :meth:`Replicator.__aenter__`).

        Raises:
            ConfigError: ``state_dir`` is unusable, or ``metrics_listen`` cannot be bound.
        """
        portal_cm = start_blocking_portal("asyncio")
        portal = portal_cm.__enter__()
        try:
            # Entered and left in one task of the loop, as a task group must be.
            running = portal.wrap_async_context_manager(self.replicator)
            running.__enter__()
        except BaseException as exc:
            portal_cm.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._portal_cm, self._portal, self._running = portal_cm, portal, running
        self._loop = portal.call(asyncio.get_running_loop)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Drain within ``drain_timeout``, persist what is left, stop the loop thread."""
        running, portal_cm = self._running, self._portal_cm
        self._running = self._portal_cm = self._portal = None
        if running is None or portal_cm is None:
            return
        try:
            running.__exit__(exc_type, exc, tb)
        finally:
            portal_cm.__exit__(None, None, None)

    @property
    def portal(self) -> BlockingPortal:
        """The loop thread's portal; ``RuntimeError`` outside ``with``."""
        if self._portal is None:
            raise RuntimeError("BlockingReplicator is not running: use it in a `with` block")
        return self._portal

    # -- public API --------------------------------------------------------

    def wrap(self, primary: Any) -> BlockingReplicatedConnection:
        """Wrap a connected blocking SDK connection: writes replicate, reads merge.

        Raises:
            TypeError: ``primary`` is not a blocking SDK connection (an
                asynchronous one is wrapped by ``syncd.Replicator``).
        """
        check_kind(primary, "blocking")
        portal = self.portal
        threaded = ThreadedPrimary(primary)
        for replica in self.replicator.fanout:
            if replica.recopier is not None:
                replica.recopier.primary = threaded
        schema = self.replicator.fanout.schema
        schema.primary = app_query(threaded, self.replicator.config.write_timeout)
        portal.call(schema.changed)
        assert self._loop is not None  # set with the portal
        return BlockingReplicatedConnection(
            primary, self.replicator.fanout, self.replicator.reads, portal, self._loop
        )

    def flush(self, timeout: float | None = 30.0) -> None:
        """Wait until everything enqueued so far is applied or dead-lettered.

        See :meth:`Replicator.flush`; ``TimeoutError`` after ``timeout`` seconds.
        """
        self.portal.call(self.replicator.flush, timeout)

    def pause(self, secondary: str | None = None) -> None:
        """Stop applying to ``secondary`` (``None``: every one); see :meth:`Replicator.pause`."""
        self.portal.call(self.replicator.pause, secondary)

    def resume(self, secondary: str | None = None) -> None:
        """Apply to ``secondary`` (``None``: every one) again; see :meth:`Replicator.resume`."""
        self.portal.call(self.replicator.resume, secondary)

    def is_paused(self, secondary: str | None = None) -> bool:
        """Whether ``secondary`` is paused (``None``: whether every secondary is)."""
        return self.portal.call(self.replicator.is_paused, secondary)

    def status(self) -> dict[str, object]:
        """The snapshot :meth:`Replicator.status` answers."""
        return self.portal.call(self.replicator.status)
