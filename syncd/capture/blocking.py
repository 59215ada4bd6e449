"""A blocking SDK connection wrapped: the same capture and merged reads, as plain calls.

For applications without an event loop (``syncd.BlockingReplicator``). The
replication itself (queue, workers, secondary connections) runs on an event
loop in a thread of its own, reached through an anyio
:class:`~anyio.from_thread.BlockingPortal`.

How a call runs — in the application's thread, through the very code of
:class:`~syncd.capture.wrapper.ReplicatedConnection`: that code's coroutines
are driven here to completion without an event loop, since on the write path
nothing in them waits for anything but the primary, which a blocking
connection answers synchronously. So a write returns as soon as the primary
has answered and the capture is in the spool: the rows are copied in the
application's thread, then handed to the loop thread in one ready callback,
which puts them on every replica's queue (the queue is the loop's alone: it
wakes the workers through loop-bound events). A merged read runs on the loop thread:
the primary's read in a worker thread, the secondaries' concurrently, bounded
by ``query_timeout``. Any number of application threads may call at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread
from anyio.from_thread import BlockingPortal

from syncd.capture.wrapper import ReplicatedConnection
from syncd.pipeline.intake import Intake
from syncd.reads.merged import MergedReads
from syncd.reads.statements import Statement
from syncd.surreal.sdkvalues import from_sdk

__all__ = ["BlockingReplicatedConnection"]

T = TypeVar("T")

# The SDK methods ReplicatedConnection calls on its primary.
_CALLED = (
    "create",
    "upsert",
    "update",
    "merge",
    "patch",
    "insert",
    "insert_relation",
    "delete",
    "query_raw",
    "select",
)


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion here; it must never wait on an event loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a blocking call waited on an event loop")


class _AsAsync:
    """A blocking connection as ReplicatedConnection calls it: ``await`` runs it inline."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        #: The blocking connection itself.
        self.conn = conn
        for name in _CALLED:
            setattr(self, name, _inline(getattr(conn, name)))


def _inline(method: Callable[..., T]) -> Callable[..., Coroutine[Any, Any, T]]:
    async def call(*args: Any, **kwargs: Any) -> T:
        return method(*args, **kwargs)

    return call


class LoopCall:
    """Run a plain function on an event loop's thread and wait for its result.

    The cheapest handoff measured (a ready callback and a thread event:
    ~17 µs p50 here, where a portal's call, which starts a task, is ~90 µs).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Call onto ``loop``, which runs in another thread."""
        self._loop = loop

    def __call__(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the loop thread; ``LoopGone`` when that loop no longer runs."""
        done = threading.Event()
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append((True, fn()))
            except BaseException as exc:
                outcome.append((False, exc))
            finally:
                done.set()

        try:
            self._loop.call_soon_threadsafe(run)
        except RuntimeError:  # closed
            raise LoopGone from None
        while not done.wait(0.5):
            if not self._loop.is_running():
                raise LoopGone
        ok, value = outcome[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]


class LoopGone(Exception):
    """The replicator's event loop has stopped."""


class _LoopIntake:
    """The fan-out's intake, reached from any thread: copy here, enqueue on the loop."""

    def __init__(self, intake: Intake, call: LoopCall) -> None:
        self._intake = intake
        self._call = call
        self.metrics = intake.metrics
        self.keys = intake.keys

    def capture(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        source: str = "wrapper",
        copy: Callable[[Any], Any] = from_sdk,
    ) -> int:
        # Copied before the call returns: the application may change its rows.
        copied = [copy(row) for row in rows]
        if not copied:
            return 0
        try:
            return self._call(partial(self._intake.capture, copied, source=source, copy=_same))
        except LoopGone:
            # The primary committed: the write must not fail because syncd stopped.
            self._intake.count_uncaptured("replicator_closed")
            return 0

    def count_uncaptured(self, reason: str) -> None:
        self._intake.count_uncaptured(reason)  # a counter and a log line: thread-safe

    def schema_changed(self) -> None:
        # The mirror's wake-up belongs to the loop.
        with contextlib.suppress(LoopGone):
            self._call(self._intake.schema_changed)


def _same(value: Any) -> Any:
    return value


class _LoopReads:
    """Merged reads run on the loop thread; the primary's part in a worker thread."""

    def __init__(self, reads: MergedReads, portal: BlockingPortal) -> None:
        self._reads = reads
        self._portal = portal

    @property
    def active(self) -> bool:
        return self._reads.active

    def count(self, outcome: str, secondary: str | None = None) -> None:
        self._reads.count(outcome, secondary)

    async def select(self, primary_call: Coroutine[Any, Any, Any], args: tuple[Any, ...]) -> Any:
        return self._portal.call(self._reads.select, _threaded(primary_call), args)

    async def query_raw(
        self,
        primary: _AsAsync,
        query: str,
        vars: dict[str, Any] | None,
        statements: list[Statement],
    ) -> Any:
        # On the loop, the merged query reads the primary through worker threads.
        threaded = ThreadedPrimary(primary.conn)
        call = partial(self._reads.query_raw, threaded, query, vars, statements)
        return self._portal.call(call)


class ThreadedPrimary:
    """A blocking connection as code on the loop reads it: each call in a worker thread."""

    def __init__(self, conn: Any) -> None:
        """Wrap ``conn``, a connected blocking SDK connection."""
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._conn, name)
        if not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await anyio.to_thread.run_sync(partial(method, *args, **kwargs))

        return call


def _threaded(primary_call: Coroutine[Any, Any, T]) -> Awaitable[T]:
    """The primary's blocking call, awaited on the loop while a worker thread makes it."""
    return anyio.to_thread.run_sync(drive, primary_call)


class BlockingReplicatedConnection:
    """A blocking SDK connection whose writes replicate and whose reads merge.

    Same methods as the SDK connection, as plain calls; methods syncd does not
    touch are delegated to the wrapped connection.
    """

    def __init__(
        self,
        primary: Any,
        intake: Intake,
        reads: MergedReads | None,
        portal: BlockingPortal,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Wrap ``primary``; ``intake`` and ``reads`` live on ``loop``, reached by ``portal``."""
        self._primary = primary
        self._inner = ReplicatedConnection(
            _AsAsync(primary),
            _LoopIntake(intake, LoopCall(loop)),  # type: ignore[arg-type]
            None if reads is None else _LoopReads(reads, portal),  # type: ignore[arg-type]
            tap_target=primary,
        )

    @property
    def primary(self) -> Any:
        """The wrapped SDK connection."""
        return self._primary

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not defined here: use, signin, info, live, ...
        return getattr(self._primary, name)

    def create(self, *args: Any, **kwargs: Any) -> Any:
        """``create`` on the primary; the created record is replicated."""
        return drive(self._inner.create(*args, **kwargs))

    def upsert(self, *args: Any, **kwargs: Any) -> Any:
        """``upsert`` on the primary; the resulting records are replicated."""
        return drive(self._inner.upsert(*args, **kwargs))

    def update(self, *args: Any, **kwargs: Any) -> Any:
        """``update`` on the primary; the resulting records are replicated."""
        return drive(self._inner.update(*args, **kwargs))

    def merge(self, *args: Any, **kwargs: Any) -> Any:
        """``merge`` on the primary; the resulting records are replicated."""
        return drive(self._inner.merge(*args, **kwargs))

    def patch(self, *args: Any, **kwargs: Any) -> Any:
        """``patch`` on the primary; the resulting records are replicated."""
        return drive(self._inner.patch(*args, **kwargs))

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        """``insert`` on the primary; the inserted records are replicated."""
        return drive(self._inner.insert(*args, **kwargs))

    def insert_relation(self, *args: Any, **kwargs: Any) -> Any:
        """``insert_relation`` on the primary; the relation records are replicated."""
        return drive(self._inner.insert_relation(*args, **kwargs))

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        """``delete`` on the primary only: deletes are never propagated."""
        return drive(self._inner.delete(*args, **kwargs))

    def query_raw(self, query: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        """``query_raw`` on the primary; records its write statements return are captured."""
        return drive(self._inner.query_raw(query, params, **kw))

    def query(self, query: str, vars: dict[str, Any] | None = None, **kw: Any) -> Any:
        """``query`` with SDK semantics; SELECT-only queries are merged with the secondaries."""
        return drive(self._inner.query(query, vars, **kw))

    def select(self, *args: Any, **kwargs: Any) -> Any:
        """``select`` from the primary merged with the secondaries; primary wins."""
        return drive(self._inner.select(*args, **kwargs))
