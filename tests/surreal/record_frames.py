"""Record what both SurrealDB engine generations answer to a fixed list of requests.

    .venv/bin/python -m tests.surreal.record_frames      # writes tests/surreal/frames/v*.json

Each engine (2.3.10 from the ``surrealdb`` wheel, 3.2.4 from
``surrealdb-embedded``) runs in this process on ``mem://`` and gets the same
requests in the same order; the request's id is the case's name. For each
case the file holds the request and either the decoded ``answer`` frame or,
when the engine raised instead of answering, ``raised`` (type and message).
Values use the tagged JSON form of :mod:`tests.surreal.tagged`. Timings,
tokens and 3.x versionstamps (wall-clock based) differ from run to run;
``tests/surreal/test_dialect.py`` reads these files without an engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2

from tests.surreal.engines import GENERATIONS, engine_class
from tests.surreal.tagged import to_json

FRAMES_DIR = Path(__file__).with_name("frames")
NAMESPACE, DATABASE = "syncd", "frames"

Params = list[Any] | Callable[[dict[str, Any]], list[Any]]


def _rid(table: str, key: Any) -> cbor2.CBORTag:
    return cbor2.CBORTag(8, [table, key])


def _stamps(answers: dict[str, Any], case: str) -> list[int]:
    """The versionstamps of a recorded SHOW CHANGES answer."""
    return [e["versionstamp"] for e in answers[case]["result"][0]["result"]]


def _since(case: str, index: int, shift: int) -> Callable[[dict[str, Any]], list[Any]]:
    """SHOW CHANGES since the ``index``-th stamp of ``case``, shifted right by ``shift``."""

    def params(answers: dict[str, Any]) -> list[Any]:
        since = _stamps(answers, case)[index] >> shift
        return [f"SHOW CHANGES FOR TABLE person SINCE {since} LIMIT 100", {}]

    return params


def _q(sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    return [sql, params or {}]


_UUID = uuid.UUID("0190d7a0-0000-7000-8000-000000000001")
_NATURAL_OLD = (
    "FOR $r IN $b { IF array::len(SELECT VALUE id FROM type::table($t) WHERE user_id = "
    "$r.content.user_id AND key = $r.content.key LIMIT 1) > 0 { UPSERT type::table($t) "
    "CONTENT $r.content WHERE user_id = $r.content.user_id AND key = $r.content.key RETURN "
    "NONE } ELSE { UPSERT $r.id CONTENT $r.content RETURN NONE } }"
)
_KV_ROW = {"id": _rid("kv", "a"), "content": {"user_id": "u", "key": "k", "v": 1}}

# (name, method, params). Order matters: later cases read what earlier ones wrote.
CASES: list[tuple[str, str, Params]] = [
    ("version", "version", []),
    ("use", "use", [NAMESPACE, DATABASE]),
    ("select_undefined_table", "query", _q("SELECT * FROM nothere")),
    (
        "count_undefined_table",
        "query",
        _q("SELECT count() FROM type::table($t) GROUP ALL", {"t": "nothere"}),
    ),
    ("update_undefined_table", "query", _q("UPDATE nothere:1 SET a = 1")),
    ("define_feed_table", "query", _q("DEFINE TABLE person CHANGEFEED 1d")),
    ("create", "query", _q("CREATE person:1 SET name = 'ann'")),
    ("upsert", "query", _q("UPSERT person:2 SET name = 'bob'")),
    ("update", "query", _q("UPDATE person:1 SET name = 'amy'")),
    ("delete", "query", _q("DELETE person:2")),
    (
        "transaction_commit",
        "query",
        _q("BEGIN; CREATE person:3 SET name = 'cy'; UPSERT person:4 SET name = 'di'; COMMIT"),
    ),
    ("transaction_cancel", "query", _q("BEGIN; CREATE person:5 SET name = 'ed'; CANCEL")),
    (
        "define_table_overwrite",
        "query",
        _q("DEFINE TABLE OVERWRITE person TYPE ANY SCHEMALESS CHANGEFEED 1d PERMISSIONS NONE"),
    ),
    (
        "define_second_feed",
        "query",
        _q("DEFINE TABLE pet CHANGEFEED 1d; CREATE pet:1 SET name = 'rex'"),
    ),
    ("create_after_overwrite", "query", _q("CREATE person:6 SET name = 'fi'")),
    ("show_changes_table", "query", _q("SHOW CHANGES FOR TABLE person SINCE 0 LIMIT 100")),
    ("show_changes_database", "query", _q("SHOW CHANGES FOR DATABASE SINCE 0 LIMIT 100")),
    ("show_changes_since_raw_third", "query", _since("show_changes_table", 2, 0)),
    ("show_changes_since_sequence_third", "query", _since("show_changes_table", 2, 16)),
    (
        "show_changes_since_param",
        "query",
        _q("SHOW CHANGES FOR TABLE person SINCE $s LIMIT 1", {"s": 0}),
    ),
    ("show_changes_no_limit", "query", _q("SHOW CHANGES FOR TABLE pet SINCE 0")),
    # LIMIT counts entries of the whole database's feed, before the table filter.
    (
        "show_changes_table_limit_counts_database",
        "query",
        _q("SHOW CHANGES FOR TABLE pet SINCE 0 LIMIT 3"),
    ),
    ("show_changes_undefined_table", "query", _q("SHOW CHANGES FOR TABLE nothere SINCE 0 LIMIT 1")),
    (
        "alter_changefeed",
        "query",
        _q("DEFINE TABLE late; CREATE late:1; ALTER TABLE late CHANGEFEED 1d"),
    ),
    ("create_after_alter", "query", _q("CREATE late:2")),
    ("show_changes_after_alter", "query", _q("SHOW CHANGES FOR TABLE late SINCE 0 LIMIT 1000")),
    # How syncd enables a feed: the table's own definition, OVERWRITE, plus CHANGEFEED.
    (
        "enable_by_overwrite",
        "query",
        _q(
            "DEFINE TABLE later; CREATE later:1; "
            "DEFINE TABLE OVERWRITE later TYPE ANY SCHEMALESS CHANGEFEED 1d PERMISSIONS NONE"
        ),
    ),
    ("create_after_overwrite_enable", "query", _q("CREATE later:2")),
    (
        "show_changes_after_overwrite_enable",
        "query",
        _q("SHOW CHANGES FOR TABLE later SINCE 0 LIMIT 1000"),
    ),
    (
        "define_schema",
        "query",
        _q(
            "DEFINE TABLE account SCHEMAFULL; DEFINE FIELD n ON account TYPE int; "
            "DEFINE FIELD code ON account TYPE string ASSERT string::len($value) < 4; "
            "DEFINE INDEX account_n ON account FIELDS n UNIQUE; DEFINE TABLE likes TYPE RELATION"
        ),
    ),
    ("create_ok", "query", _q("CREATE account:1 SET n = 1, code = 'a'")),
    ("coercion_error", "query", _q("CREATE account:2 SET n = 'two', code = 'b'")),
    ("assert_error", "query", _q("CREATE account:3 SET n = 3, code = 'toolong'")),
    ("schemafull_extra_field", "query", _q("UPSERT account:4 SET n = 4, code = 'd', extra = true")),
    ("unique_index_error", "query", _q("UPSERT account:5 CONTENT { n: 1, code: 'e' }")),
    ("already_exists", "query", _q("CREATE account:1 SET n = 6, code = 'f'")),
    (
        "relation_refused",
        "query",
        _q(
            "UPSERT $r.id CONTENT $r RETURN NONE",
            {"r": {"id": _rid("likes", 1), "in": _rid("person", 1), "out": _rid("person", 3)}},
        ),
    ),
    (
        "undecodable_value",
        "query",
        _q(
            "UPSERT $r.id CONTENT $r",
            {"r": {"id": _rid("account", 7), "n": cbor2.CBORTag(13, [1, 5])}},
        ),
    ),
    ("parse_error", "query", _q("SELEC * FROM person")),
    ("type_thing", "query", _q("RETURN type::thing('person', 1)")),
    ("type_record", "query", _q("RETURN type::record('person', 1)")),
    (
        "record_range_thing",
        "query",
        _q("SELECT VALUE id FROM type::thing($t, $after>..) LIMIT 10", {"t": "person", "after": 1}),
    ),
    (
        "record_range_record",
        "query",
        _q(
            "SELECT VALUE id FROM type::record($t, $after>..) LIMIT 10", {"t": "person", "after": 1}
        ),
    ),
    (
        "record_range_uuid_param",
        "query",
        _q(
            "SELECT VALUE id FROM type::thing($t, $after>..) LIMIT 10",
            {"t": "person", "after": _UUID},
        ),
    ),
    (
        "record_range_uuid_literal",
        "query",
        _q(f"SELECT VALUE id FROM person:u'{_UUID}'>.. LIMIT 10"),
    ),
    (
        "record_exists",
        "query",
        _q("RETURN [record::exists(person:1), record::exists(nothere:1), array::len([1, 2])]"),
    ),
    (
        "transaction_failed",
        "query",
        _q(
            "BEGIN; CREATE account:10 SET n = 10, code = 'g'; "
            "CREATE account:11 SET n = 'x', code = 'h'; COMMIT"
        ),
    ),
    (
        "transaction_return",
        "query",
        _q(
            "BEGIN; CREATE person:20 SET name = 'gus'; RETURN 'early'; "
            "CREATE person:21 SET name = 'hal'; COMMIT"
        ),
    ),
    (
        "transaction_block_return",
        "query",
        _q("BEGIN; CREATE person:22; IF true { RETURN 'block' }; CREATE person:23; COMMIT"),
    ),
    ("transaction_nested_begin", "query", _q("BEGIN; BEGIN; CREATE person:24; COMMIT")),
    ("transaction_unterminated", "query", _q("BEGIN; CREATE person:25; CREATE person:26")),
    ("stray_commit", "query", _q("COMMIT")),
    (
        "statements_around_transaction",
        "query",
        _q("RETURN 1; BEGIN TRANSACTION; CREATE person:27; COMMIT TRANSACTION; RETURN 2"),
    ),
    (
        "let_return_error",
        "query",
        _q("LET $x = 1; RETURN $x; SELECT * FROM person:1; THROW 'boom'"),
    ),
    ("natural_upsert_old_form_undefined", "query", _q(_NATURAL_OLD, {"t": "kv", "b": [_KV_ROW]})),
    ("info_db", "query", _q("INFO FOR DB")),
    ("info_table", "query", _q("INFO FOR TABLE account")),
    (
        "define_root",
        "query",
        _q(
            "DEFINE USER root ON ROOT PASSWORD 'pw' ROLES OWNER; "
            "DEFINE USER viewer ON DATABASE PASSWORD 'v' ROLES VIEWER"
        ),
    ),
    ("signin_wrong_password", "signin", [{"user": "root", "pass": "wrong"}]),
    ("signin_viewer", "signin", [{"ns": NAMESPACE, "db": DATABASE, "user": "viewer", "pass": "v"}]),
    ("permission_error", "query", _q("DEFINE TABLE forbidden")),
    ("signin_root", "signin", [{"user": "root", "pass": "pw"}]),
    ("method_not_found", "nosuchmethod", []),
    ("invalid_params", "query", [12]),
    ("invalidate", "invalidate", []),
    ("anonymous_query", "query", _q("RETURN 1")),
]


async def record(generation: int) -> dict[str, Any]:
    """Run every case against a fresh engine of ``generation``; the fixture document."""
    db = engine_class(generation)("mem://")
    await db.connect()
    answers: dict[str, Any] = {}
    frames: list[dict[str, Any]] = []
    try:
        for name, method, spec in CASES:
            params = spec(answers) if callable(spec) else spec
            request: dict[str, Any] = {"id": name, "method": method}
            if params:
                request["params"] = params
            frame: dict[str, Any] = {"name": name, "request": to_json(request)}
            try:
                answer = cbor2.loads(await db.execute(cbor2.dumps(request)))
            except (RuntimeError, ValueError) as exc:
                frame["raised"] = {"type": type(exc).__name__, "message": str(exc)}
            else:
                answers[name] = answer
                frame["answer"] = to_json(answer)
            frames.append(frame)
    finally:
        await db.close()
        await asyncio.sleep(0.1)  # let the engine's runtime settle before the next one
    version = answers["version"]["result"]
    return {"generation": generation, "version": version, "frames": frames}


async def main() -> None:
    """Record both generations and write their files."""
    FRAMES_DIR.mkdir(exist_ok=True)
    for generation in GENERATIONS:
        document = await record(generation)
        path = FRAMES_DIR / f"v{generation}.json"
        text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
        path.write_text(text, encoding="utf-8")
        print(f"{path}: {len(document['frames'])} frames from {document['version']}")


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    # The engines' Rust threads can abort interpreter finalisation (see devserver).
    os._exit(0)
