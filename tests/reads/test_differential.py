"""Merged reads against an oracle: the same statement on one database holding the union.

Hypothesis draws rows (on the primary only, on a secondary only, on both
with different values) and a statement from a small grammar covering the
shapes merged reads promise: ORDER BY/LIMIT/START, SELECT VALUE, projections
without id, count/math::sum with GROUP BY/GROUP ALL, KNN on an HNSW index,
``@@`` without scores, a subquery in FROM and a LET before the SELECT. The
merged answer must equal the oracle's, as a list where the statement orders
totally, as a multiset otherwise. Every database is an in-process engine of
one generation (tests/support/union.py), opened once per generation; each
example writes a table of its own.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from surrealdb import RecordID

from syncd.keys import canonical
from tests.support.engines import GENERATIONS
from tests.support.union import Union, union

pytestmark = pytest.mark.integration

WORDS = ["apple", "pear", "plum", "fig"]
_tables = itertools.count(1)


@pytest.fixture(scope="module", params=GENERATIONS, ids=lambda g: f"v{g}")
def databases(request: pytest.FixtureRequest) -> Iterator[tuple[BlockingPortal, Union, int]]:
    """A portal's event loop holding one primary, two secondaries and the oracle."""
    generation = int(request.param)
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(union(generation, 2)) as u,
    ):
        yield portal, u, generation


# -- data ---------------------------------------------------------------------

# Where a key's rows are: (primary, secondary 1, secondary 2), each a variant
# number (rows of different variants differ in every field but the id) or None.
_placements = st.tuples(
    st.sampled_from([None, 0]),
    st.sampled_from([None, 0, 1]),
    st.sampled_from([None, 0, 2]),
).filter(lambda p: any(v is not None for v in p))


def _row(table: str, key: int, variant: int, seed: int) -> dict[str, Any]:
    mix = (key * 7 + variant * 13 + seed) % 97
    return {
        "id": RecordID(table, key),
        # Unique per row (ORDER BY n is a total order); a variant ranks apart
        # from the others, so a stale row can fill a source's first LIMIT rows.
        "n": variant * 100 + key,
        "g": "abc"[mix % 3],
        "v": mix % 6,
        "emb": [((key * 31 + variant * 17) % 101) / 101.0, ((key * 11 + variant * 5) % 89) / 89.0],
        "txt": f"{WORDS[mix % 4]} {WORDS[(mix // 4) % 4]}",
    }


# -- statements ---------------------------------------------------------------

# (SurrealQL, whether the answer is totally ordered); {t} is the table, the
# other fields are drawn by _params.
STATEMENTS = [
    ("SELECT * FROM {t} WHERE v >= {x} ORDER BY n {d} LIMIT {lim} START {s}", True),
    ("SELECT id, n FROM {t} ORDER BY n {d} LIMIT {lim}", True),
    ("SELECT VALUE v FROM {t} WHERE v < {x}", False),
    ("SELECT g, v FROM {t} WHERE v >= {x}", False),
    ("SELECT count() AS c FROM {t} WHERE v > {x} GROUP ALL", True),
    ("SELECT g, count() AS c, math::sum(v) AS s FROM {t} GROUP BY g", False),
    ("SELECT math::max(n) AS hi, math::min(n) AS lo FROM {t} GROUP ALL", True),
    (
        "SELECT id, vector::distance::knn() AS d FROM {t} WHERE emb <|{k},{ef}|> $q ORDER BY d",
        True,
    ),
    ("SELECT id, txt FROM {t} WHERE txt @@ '{w}'", False),
    (
        "SELECT * FROM (SELECT id, n, v FROM {t} WHERE v >= {x}) WHERE n > 5 "
        "ORDER BY n LIMIT {lim}",
        True,
    ),
    ("LET $x = {x}; SELECT VALUE n FROM {t} WHERE v >= $x", False),
]

_params = st.fixed_dictionaries(
    {
        "x": st.integers(0, 5),
        "d": st.sampled_from(["ASC", "DESC"]),
        "lim": st.integers(1, 6),
        "s": st.integers(0, 3),
        "k": st.integers(1, 4),
        "w": st.sampled_from(WORDS),
    }
)


def _schema(table: str, generation: int) -> str:
    fulltext = "SEARCH" if generation == 2 else "FULLTEXT"
    return (
        f"DEFINE ANALYZER IF NOT EXISTS words TOKENIZERS blank FILTERS lowercase;"
        f"DEFINE INDEX {table}_emb ON {table} FIELDS emb HNSW DIMENSION 2 DIST EUCLIDEAN;"
        f"DEFINE INDEX {table}_txt ON {table} FIELDS txt {fulltext} ANALYZER words BM25;"
    )


def _multiset(rows: Any) -> list[str]:
    return sorted(json.dumps(canonical(r), sort_keys=True) for r in rows)


async def _check(
    u: Union,
    generation: int,
    keys: list[tuple[Any, Any, Any]],
    seed: int,
    shape: tuple[str, bool],
    params: dict[str, Any],
) -> None:
    table = f"m{next(_tables)}"
    await u.run_all(_schema(table, generation))
    sides: list[list[dict[str, Any]]] = [[], [], []]
    for key, placement in enumerate(keys):
        for side, variant in enumerate(placement):
            if variant is not None:
                sides[side].append(_row(table, key, variant, seed))
    await u.fill(table, sides[0], sides[1:])
    sql, ordered = shape
    sql = sql.format(t=table, ef=max(4 * params["k"], 40), **params)  # HNSW ef >= 4k
    vars = {"q": [0.5, 0.5]}
    merged = await u.merged(sql, vars)
    oracle = await u.oracle_answer(sql, vars)
    if ordered:
        assert canonical(merged) == canonical(oracle), sql
    else:
        assert _multiset(merged) == _multiset(oracle), sql


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    keys=st.lists(_placements, min_size=0, max_size=14),
    seed=st.integers(0, 96),
    shape=st.sampled_from(STATEMENTS),
    params=_params,
)
@pytest.mark.timeout(300)
def test_merged_answer_equals_the_union_databases(
    databases: tuple[BlockingPortal, Union, int],
    keys: list[tuple[Any, Any, Any]],
    seed: int,
    shape: tuple[str, bool],
    params: dict[str, Any],
) -> None:
    portal, u, generation = databases
    portal.call(_check, u, generation, keys, seed, shape, params)
