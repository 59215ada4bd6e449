"""The engine's own ingest limit, in-process, in a process of its own on the secondary's core.

    python -m bench.engine_limit --engine 3 --rows 100000 [--core 1]

Prints one JSON line: ``{"engine", "version", "rows", "seconds", "records_per_s"}``.

What it measures is the ceiling no client can beat: the same rows as the
drain scenario, the same statement (``FOR $r IN $rows { UPSERT $r.id CONTENT
$r RETURN NONE }``, 2,000 rows per request), every request frame encoded
*before* the clock starts, each handed straight to the engine's
``AsyncEmbeddedDB.execute(frame)`` — no socket, no WebSocket, no Python
decode on the way in. Engine 2 is ``surrealdb._surrealdb_ext`` (2.3.10),
engine 3 ``surrealdb_embedded`` (3.2.4), as the devserver serves them. The
process pins itself to ``--core`` (the core the secondary gets in the other
scenarios), so the benchmark's own process does not share its CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import cbor2

from bench.common import DATABASE, LIMIT_QUERY, NAMESPACE, records
from syncd.dev.devserver import _engine_class
from syncd.surreal.codec import encode


def frames(table: str, rows: int, chunk: int) -> list[bytes]:
    """The request frames of ``rows`` records, ``chunk`` per ``FOR`` statement, pre-encoded."""
    out = []
    for index, start in enumerate(range(0, rows, chunk)):
        batch = records(table, start, min(chunk, rows - start))
        request = {"id": index + 1, "method": "query", "params": [LIMIT_QUERY, {"rows": batch}]}
        out.append(encode(request))
    return out


#: Rows per request tried before the measurement: the engine's best is its limit
#: (3.2.4 slows down sharply with 2,000-row requests, 2.3.10 does not).
CHUNKS = (50, 100, 250, 500, 1000, 2000)
CALIBRATION_ROWS = 10_000


async def _timed(db: Any, database: str, rows: int, chunk: int) -> float:
    """Seconds to ingest ``rows`` in ``chunk``-row requests into a fresh database."""
    use = cbor2.dumps({"id": 0, "method": "use", "params": [NAMESPACE, database]})
    await db.execute(use)
    prepared = frames("limit", rows, chunk)
    started = time.perf_counter()
    for frame in prepared:
        answer = cbor2.loads(await db.execute(frame))
        if "error" in answer or answer["result"][0].get("status") != "OK":
            raise RuntimeError(f"engine refused a batch: {str(answer)[:300]}")
    seconds = time.perf_counter() - started
    count = {"id": 0, "method": "query", "params": ["SELECT count() AS n FROM limit GROUP ALL", {}]}
    answer = cbor2.loads(await db.execute(cbor2.dumps(count)))
    arrived = answer["result"][0]["result"][0]["n"]
    if arrived != rows:
        raise RuntimeError(f"engine limit: {arrived} of {rows} rows stored")
    return seconds


async def measure(engine: int, rows: int, chunk: int | None) -> dict[str, Any]:
    """Open a ``mem://`` engine; with ``chunk`` None, find its best request size on
    ``CALIBRATION_ROWS`` rows first (each size into a fresh database); then time ``rows``."""
    db = _engine_class(engine)("mem://")
    await db.connect()
    calibration: dict[int, float] = {}
    try:
        version = cbor2.loads(await db.execute(cbor2.dumps({"id": 0, "method": "version"})))
        if chunk is None:
            sample = min(rows, CALIBRATION_ROWS)
            for size in CHUNKS:
                calibration[size] = sample / await _timed(db, f"cal{size}", sample, size)
            chunk = max(calibration, key=lambda size: calibration[size])
        seconds = await _timed(db, DATABASE, rows, chunk)
    finally:
        await db.close()
        await asyncio.sleep(0.2)  # let the engine's runtime settle before exit
    return {
        "engine": engine,
        "version": version.get("result"),
        "rows": rows,
        "chunk": chunk,
        "calibration_records_per_s": {str(k): round(v) for k, v in calibration.items()},
        "seconds": seconds,
        "records_per_s": rows / seconds,
    }


def run_subprocess(
    engine: int, rows: int, core: int | None, chunk: int | None = None
) -> dict[str, Any]:
    """Run the measurement in a fresh process (pinned to ``core``); its JSON answer."""
    cmd = [sys.executable, "-m", "bench.engine_limit", "--engine", str(engine), "--rows", str(rows)]
    if chunk is not None:
        cmd += ["--chunk", str(chunk)]
    if core is not None:
        cmd += ["--core", str(core)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"engine limit (engine {engine}) failed: {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def main() -> None:
    """Measure, print the JSON line, exit without finalisation."""
    parser = argparse.ArgumentParser(prog="python -m bench.engine_limit")
    parser.add_argument("--engine", type=int, choices=(2, 3), default=2)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=None, help="default: the best of CHUNKS")
    parser.add_argument("--core", type=int, default=None)
    args = parser.parse_args()
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    result = asyncio.run(measure(args.engine, args.rows, args.chunk))
    print(json.dumps(result), flush=True)
    sys.stdout.flush()
    os._exit(0)  # the engine's Rust threads can abort interpreter finalisation


if __name__ == "__main__":
    main()
