"""Merged KNN, full-text and aggregate queries through the wrapper vs the primary alone.

The secondary (a devserver on the other core) archives ``rows`` memories;
the primary (embedded, as an application holds it) kept the newest quarter.
Each statement is timed through ``rep.wrap(primary).query`` (merged: the
union's answer), on the primary alone (the primary's answer) and on the
secondary alone (over WebSocket: the slowest part a merge waits for), in
interleaved rounds; the figures are medians and merged ÷ primary. Run:

    .venv/bin/python -m bench.merged_queries [rows] [rounds]
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any

import anyio
from surrealdb import RecordID

from bench.common import (
    DATABASE,
    NAMESPACE,
    PASSWORD,
    USER,
    interleaved,
    median,
    ratio,
    replicator,
    scratch_dir,
    secondary_process,
)
from syncd.surreal.rpc import RpcClient
from tests.support.replica import embedded_primary

DIMENSION = 16
SCHEMA = (
    "DEFINE ANALYZER simple TOKENIZERS blank,class FILTERS lowercase;"
    f"DEFINE INDEX hnsw ON memories FIELDS embedding HNSW DIMENSION {DIMENSION} DIST COSINE;"
    "DEFINE INDEX words ON memories FIELDS content {fulltext} ANALYZER simple BM25;"
)
STATEMENTS = {
    "knn": "SELECT id, vector::distance::knn() AS d FROM memories "
    "WHERE embedding <|10,40|> $q ORDER BY d LIMIT 10",
    "fulltext": "SELECT id FROM memories WHERE content @@ 'apple' LIMIT 20",
    "count_by_user": "SELECT user_id, count() AS n FROM memories GROUP BY user_id",
}
WORDS = ["apple", "pear", "plum", "fig", "kiwi", "lime", "date", "nut"]


def _rows(count: int) -> list[dict[str, Any]]:
    rnd = random.Random(5)
    return [
        {
            "id": RecordID("memories", i),
            "user_id": f"u{i % 10}",
            "ts": i,
            "embedding": [rnd.random() for _ in range(DIMENSION)],
            "content": " ".join(rnd.choice(WORDS) for _ in range(6)),
        }
        for i in range(count)
    ]


async def run(rows: int = 2000, rounds: int = 30) -> dict[str, dict[str, float]]:
    """Median milliseconds per arm and the merged ÷ primary ratio, per statement."""
    data = _rows(rows)
    insert = "INSERT INTO memories $rows RETURN NONE"
    out: dict[str, dict[str, float]] = {}
    with secondary_process() as server, scratch_dir("merged-queries") as state:
        rep = replicator(state, server.url, query_timeout="5s")
        async with embedded_primary() as primary, rep:
            admin = await RpcClient.connect(server.url, sdk_values=True)
            await admin.signin(USER, PASSWORD)
            await admin.use(NAMESPACE, DATABASE)
            await admin.query(SCHEMA.format(fulltext="SEARCH"))
            for start in range(0, rows, 500):
                await admin.query(insert, {"rows": data[start : start + 500]})
            await primary.query(SCHEMA.format(fulltext="SEARCH"))
            await primary.query(insert, {"rows": data[rows - rows // 4 :]})
            wrapped = rep.wrap(primary)
            q = {"q": [0.5] * DIMENSION}
            for name, sql in STATEMENTS.items():
                times: dict[str, list[float]] = {"primary_only": [], "merged": [], "secondary": []}
                readers: dict[str, Any] = {
                    "primary_only": primary,
                    "merged": wrapped,
                    "secondary": admin,
                }
                for _, arm in interleaved(2, list(times)):  # warm-up
                    await readers[arm].query(sql, q)
                for _, arm in interleaved(rounds, list(times)):
                    started = time.perf_counter()
                    await readers[arm].query(sql, q)
                    times[arm].append(time.perf_counter() - started)
                p, m = median(times["primary_only"]) * 1e3, median(times["merged"]) * 1e3
                secondary_ms = median(times["secondary"]) * 1e3
                out[name] = {
                    "primary_only_ms": p,
                    "secondary_ms": secondary_ms,
                    "merged_ms": m,
                    "ratio": ratio(m, p),
                }
            await admin.close()
    return out


def main() -> None:
    """Print the figures of one run."""
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    for name, f in anyio.run(run, rows, rounds).items():
        print(
            f"{name:14} primary {f['primary_only_ms']:7.2f} ms  secondary {f['secondary_ms']:7.2f}"
            f" ms  merged {f['merged_ms']:7.2f} ms  merged/primary {f['ratio']:.2f}"
        )


if __name__ == "__main__":
    main()
