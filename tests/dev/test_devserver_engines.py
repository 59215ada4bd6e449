"""The devserver's frame handling, and both engines served in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import cbor2
import pytest
from surrealdb import AsyncSurreal, RecordID
from surrealdb.errors import SurrealError
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from syncd.dev.devserver import DevServer, DevServerError, _peek

GENERATIONS = [pytest.param(2, id="v2"), pytest.param(3, id="v3")]
VERSIONS = {2: "surrealdb-2.0.0", 3: "surrealdb-3.2.4"}  # 2.x reports the wheel's version


def frame(**fields: Any) -> bytes:
    """A request frame, keys in the order given."""
    return cbor2.dumps(fields)


# -- _peek: what the devserver decodes of a request ---------------------------


def test_peek_small_and_large_frames() -> None:
    small = frame(id="a", method="query", params=["RETURN 1", {}])
    assert _peek(small) == ("a", "query", None)
    rows = [{"id": cbor2.CBORTag(8, ["t", i]), "pad": "x" * 100} for i in range(100)]
    large = frame(id="b", method="query", params=["FOR ...", {"rows": rows}])
    assert len(large) > 4096
    assert _peek(large) == ("b", "query", None)


def test_peek_reads_use_params_and_maps_none() -> None:
    none = cbor2.CBORTag(6, None)  # how the SDK encodes None
    use = frame(id="u", method="use", params=["ns", none])
    assert _peek(use) == ("u", "use", ["ns", none])
    padded = frame(id="u", method="use", params=["ns", "db"], pad="x" * 5000)
    assert _peek(padded) == ("u", "use", ["ns", "db"])


def test_peek_keeps_unknown_tags_and_odd_key_orders() -> None:
    tagged_id = cbor2.CBORTag(999, "x")
    assert _peek(frame(id=tagged_id, method="version")) == (tagged_id, "version", None)
    params_first = frame(params=["RETURN 1", {"big": "y" * 5000}], method="query", id=7)
    assert _peek(params_first) == (7, "query", None)
    # A value cbor2 cannot build (a 3-byte UUID) in a small frame: the head still reads.
    bad_uuid = frame(id="q", method="query", params=["RETURN $u", {"u": cbor2.CBORTag(37, b"abc")}])
    assert _peek(bad_uuid) == ("q", "query", None)


def test_peek_indefinite_map_and_garbage() -> None:
    indefinite = b"\xbf" + cbor2.dumps("id")[0:] + cbor2.dumps("i") + cbor2.dumps("method")
    indefinite += cbor2.dumps("version") + b"\xff"
    assert _peek(indefinite) == ("i", "version", None)
    for garbage in (b"", b"\xff\x00", cbor2.dumps([1, 2]), b"\xa3\x62id"):
        with pytest.raises(Exception):  # noqa: B017 - any decoder error will do
            _peek(garbage)


def test_engine_must_be_served() -> None:
    with pytest.raises(DevServerError, match="engine must be one of"):
        DevServer(engine=4)


# -- served engines -----------------------------------------------------------


@asynccontextmanager
async def raw(url: str) -> AsyncIterator[ClientConnection]:
    """A bare CBOR WebSocket to the devserver."""
    async with connect(f"{url}/rpc", subprotocols=[Subprotocol("cbor")]) as ws:
        yield ws


async def ask(ws: ClientConnection, **request: Any) -> Any:
    """Send one request, return the decoded answer."""
    await ws.send(cbor2.dumps(request))
    return cbor2.loads(await ws.recv(decode=False))


@pytest.mark.integration
@pytest.mark.parametrize("generation", GENERATIONS)
async def test_served_engine_answers_frames(generation: int) -> None:
    async with DevServer(engine=generation) as srv, raw(srv.url) as a, raw(srv.url) as b:
        assert await ask(a, id="v", method="version") == {"id": "v", "result": VERSIONS[generation]}
        await ask(a, id=1, method="use", params=["ns_a", "db"])
        await ask(b, id=2, method="use", params=["ns_b", "db"])
        sql = "RETURN $session.ns"
        answer = await ask(a, id=3, method="query", params=[sql, {}])
        assert answer["id"] == 3 and answer["result"][0]["result"] == "ns_a"
        # A NONE half keeps the current value (the SDK sends None as NONE)...
        await ask(a, id=4, method="use", params=[cbor2.CBORTag(6, None), "other"])
        answer = await ask(a, id=5, method="query", params=["RETURN $session", {}])
        assert (answer["result"][0]["result"]["ns"], answer["result"][0]["result"]["db"]) == (
            "ns_a",
            "other",
        )
        await ask(b, id=6, method="query", params=["RETURN 1", {}])  # b's use is replayed
        # ...and a null half unsets it (3.x then refuses queries).
        await ask(a, id=7, method="use", params=["ns_c", None])
        answer = await ask(a, id=8, method="query", params=["RETURN $session.db", {}])
        unset = answer["result"][0]
        assert unset["result"] == cbor2.CBORTag(6, None) or unset["status"] == "ERR"
        answer = await ask(b, id=9, method="query", params=["RETURN $session.ns", {}])
        assert answer["result"][0]["result"] == "ns_b"
        refused = await ask(a, id=cbor2.CBORTag(999, "odd"), method="reset")
        assert refused["id"] == cbor2.CBORTag(999, "odd") and refused["error"]["code"] == -32000
        await a.send(b"\xff\x00 not cbor")
        assert cbor2.loads(await a.recv(decode=False))["id"] is None


@pytest.mark.integration
@pytest.mark.parametrize("generation", GENERATIONS)
async def test_served_engine_takes_a_large_batch(generation: int) -> None:
    rows = [{"id": cbor2.CBORTag(8, ["kv", i]), "pad": "x" * 150} for i in range(2000)]
    sql = "FOR $r IN $rows { UPSERT $r.id CONTENT $r RETURN NONE }; RETURN count(SELECT id FROM kv)"
    async with DevServer(engine=generation) as srv, raw(srv.url) as ws:
        await ask(ws, id="u", method="use", params=["ns", "db"])
        answer = await ask(ws, id="b", method="query", params=[sql, {"rows": rows}])
        assert [r["status"] for r in answer["result"]] == ["OK", "OK"]
        assert answer["result"][1]["result"] == 2000


@pytest.mark.integration
@pytest.mark.parametrize("generation", GENERATIONS)
async def test_sdk_client_on_each_engine(generation: int) -> None:
    async with DevServer(user="root", password="root", engine=generation) as srv:
        db = AsyncSurreal(srv.url)
        try:
            assert await db.version() == VERSIONS[generation]
            await db.signin({"username": "root", "password": "root"})
            await db.use("ns", "db")
            alice = await db.create(RecordID("person", "alice"), {"name": "Alice"})
            assert await db.select("person") == [alice]
            with pytest.raises(SurrealError, match="Parse error"):
                await db.query("SELEC * FROM person")
            with pytest.raises(SurrealError, match="authentication"):
                await db.signin({"username": "root", "password": "wrong"})
            # The SDK's query() returns the first statement's result: BEGIN's on 3.x.
            first = await db.query("BEGIN; CREATE person:bob; COMMIT")
            assert (first is None) is (generation == 3)
        finally:
            await db.close()
