"""A scripted stand-in for a SurrealDB session: the connection manager and the pipeline, in ms.

:class:`FakeDatabase` holds rows and decides what is refused; its
:meth:`~FakeDatabase.connect` is what a :class:`ManagedConnection` is given
instead of opening a socket. It understands exactly the statements the
executor sends for id-keyed tables (``FOR $r IN $bN { UPSERT ... }`` is
all-or-nothing, ``UPSERT $pN.id ...`` is one record), and faults are scripted
per ``query_raw`` call. This fakes the *session*, never the engine's
semantics: anything about real SurrealQL is tested against the engine.
"""

from __future__ import annotations

import random
import re
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Literal

import anyio

from syncd.errors import AuthenticationFailed, SecondaryUnavailable, ServerError
from syncd.surreal.connection import ManagedConnection

Fault = Literal["hang", "drop", "drop_after", "rpc_error", "short"]
_VAR = re.compile(r"\$([bp]\d+)")
#: The message of a scripted ``rpc_error`` (as the 2.x engine, wrapped, words it).
RPC_ERROR = "There was a problem with the database: Failed to decode CBOR request: bad tag"


class FakeDatabase:
    """Rows by record id, refusals by rule, faults by script; shared by every session."""

    def __init__(self) -> None:
        """An empty, reachable database that accepts the password."""
        self.rows: dict[str, dict[str, Any]] = {}
        #: Every record upserted, in order, as ``(record id, record)``: a re-sent batch shows twice.
        self.applied: list[tuple[str, dict[str, Any]]] = []
        #: Every refusal, as ``(record id, reason)``.
        self.refusals: list[tuple[str, str]] = []
        #: Set at each refusal.
        self.refused = anyio.Event()
        #: Each ``query_raw`` call, as the kinds of its statements (``"batch"`` / ``"one"``).
        self.calls: list[list[str]] = []
        self.refuse: Callable[[Mapping[str, Any]], str | None] = lambda row: None
        self.reachable = True
        self.password_ok = True
        self.connect_hangs = False
        self.ping_failures = 0
        self.connects = 0
        self.faults: deque[Fault] = deque()
        self.clients: list[FakeClient] = []

    async def connect(self) -> FakeClient:
        """Open a session (what ``ManagedConnection(connect=...)`` calls)."""
        self.connects += 1
        await anyio.lowlevel.checkpoint()
        if self.connect_hangs:
            await anyio.sleep_forever()
        if not self.reachable:
            raise ConnectionRefusedError(111, "Connection refused")
        if not self.password_ok:
            raise AuthenticationFailed("secondary refused the sign-in as 'root': bad password")
        client = FakeClient(self)
        self.clients.append(client)
        return client

    def run(self, statement: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """One executor statement: ``{"status": "OK"|"ERR", "result": ...}``."""
        match = _VAR.search(statement)
        if match is None:
            raise AssertionError(f"the fake does not understand {statement!r}")
        value = params[match[1]]
        rows = list(value) if statement.startswith("FOR ") else [value]
        for row in rows:
            reason = self.refuse(row)
            if reason is not None:
                self.refusals.append((str(row["id"]), reason))
                self.refused.set()
                return {"status": "ERR", "result": reason, "time": "1µs"}
        for row in rows:
            self.rows[str(row["id"])] = dict(row)
            self.applied.append((str(row["id"]), dict(row)))
        return {"status": "OK", "result": None, "time": "1µs"}

    def applications(self, record_id: str) -> list[dict[str, Any]]:
        """Every version of ``record_id`` that was upserted, in order."""
        return [row for rid, row in self.applied if rid == record_id]


class FakeClient:
    """One session with a :class:`FakeDatabase`; satisfies the connection manager's ``Client``."""

    def __init__(self, db: FakeDatabase) -> None:
        """A session that is open until closed or dropped by a scripted fault."""
        self.db = db
        self.open = True

    def _check(self) -> None:
        if not self.open:
            raise SecondaryUnavailable("secondary unavailable: connection lost (closed)")

    async def query_raw(
        self, sql: str, vars: Mapping[str, Any] | None = None, *, sdk_values: bool | None = None
    ) -> dict[str, Any]:
        """Run the executor's statements; a scripted fault may hang or drop the session."""
        self._check()
        await anyio.lowlevel.checkpoint()
        fault = self.db.faults.popleft() if self.db.faults else None
        if fault == "hang":
            await anyio.sleep_forever()
        if fault == "drop":
            self.open = False
            raise SecondaryUnavailable("secondary unavailable: connection lost (reset)")
        if fault == "rpc_error":  # the request refused whole, nothing applied
            return {"id": 1, "error": {"code": -32000, "message": RPC_ERROR}}
        if fault == "short":  # an answer without a result per statement
            return {"id": 1, "result": []}
        statements = sql.split(";\n")
        self.db.calls.append(["batch" if s.startswith("FOR ") else "one" for s in statements])
        results = [self.db.run(statement, vars or {}) for statement in statements]
        if fault == "drop_after":  # applied, but the answer never arrives
            self.open = False
            raise SecondaryUnavailable("secondary unavailable: connection lost (reset)")
        return {"id": 1, "result": results}

    async def query(
        self, sql: str, vars: Mapping[str, Any] | None = None, *, sdk_values: bool | None = None
    ) -> Any:
        """Only ``RETURN <int>`` is understood; anything else is refused."""
        self._check()
        await anyio.lowlevel.checkpoint()
        if sql.startswith("RETURN "):
            return int(sql.split()[1])
        raise ServerError(0, f"the fake does not run {sql!r}")

    async def select(self, thing: Any, *, sdk_values: bool | None = None) -> Any:
        """Every row of a table (``thing`` is its name)."""
        self._check()
        return [row for rid, row in self.db.rows.items() if rid.startswith(f"{thing}:")]

    async def version(self) -> str:
        """A 2.x server."""
        self._check()
        return "surrealdb-2.3.10"

    async def ping(self) -> None:
        """Fails (dropping the session) while ``ping_failures`` is positive."""
        self._check()
        await anyio.lowlevel.checkpoint()
        if self.db.ping_failures > 0:
            self.db.ping_failures -= 1
            self.open = False
            raise ConnectionResetError(104, "Connection reset by peer")

    async def close(self) -> None:
        """Close; later calls fail as a closed RpcClient's do."""
        self.open = False


class Sleeps:
    """An injected ``sleep``: records each delay and waits only ``real`` seconds."""

    def __init__(self, real: float = 0.0) -> None:
        """``real`` > 0 keeps a busy reconnect loop from spinning (pipeline tests)."""
        self.delays: list[float] = []
        self._real = real
        self.on_sleep: Callable[[int], None] | None = None

    async def __call__(self, seconds: float) -> None:
        """Record ``seconds``; call ``on_sleep(count)``; yield to other tasks."""
        self.delays.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep(len(self.delays))
        if self._real:
            await anyio.sleep(self._real)
        else:
            await anyio.lowlevel.checkpoint()


def managed(
    db: FakeDatabase,
    sleep: Sleeps | None = None,
    *,
    role: str = "secondary",
    connect_timeout: float = 1.0,
    health_check_interval: float = 60.0,
    reconnect_backoff: float = 0.5,
    on_state: Callable[[bool], None] | None = None,
    on_reconnect: Callable[[], None] | None = None,
) -> ManagedConnection:
    """A managed connection whose sessions are opened on ``db``."""
    return ManagedConnection(
        role=role,
        url="ws://fake:8000/rpc",
        user="root",
        password="pw",
        namespace="ns",
        database="db",
        connect_timeout=connect_timeout,
        health_check_interval=health_check_interval,
        reconnect_backoff=reconnect_backoff,
        on_state=on_state,
        on_reconnect=on_reconnect,
        rng=random.Random(7),
        connect=db.connect,
        sleep=sleep if sleep is not None else Sleeps(),
    )
