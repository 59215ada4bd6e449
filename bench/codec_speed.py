"""Rows per second through syncd's CBOR codec against the SDK's, on one ~230-byte record.

    .venv/bin/python -m bench.codec_speed [--rounds 15] [--rows 2000]

Variants run in interleaved rounds and each keeps its best round, so a busy
machine slows all of them alike; the ratios are the figures to read.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from surrealdb import RecordID as SdkRecordID
from surrealdb.data import cbor as sdk
from surrealdb.data.types.datetime import Datetime as SdkDatetime

from syncd.surreal import codec
from syncd.surreal.codec import Datetime, RecordID


def _record() -> dict[str, Any]:
    return {
        "id": RecordID("kv", "user_000123:settings/theme"),
        "user_id": "user_000123",
        "key": "settings/theme/colour-scheme",
        "value": "a value of a realistic length for a key-value row, " * 2,
        "n": 123456,
        "at": Datetime(1793613605, 123456789),
        "tags": ["alpha", "beta"],
    }


def _sdk_record() -> dict[str, Any]:
    # The SDK encodes its Datetime as RFC 3339 text under tag 0 and decodes tag 12
    # to a datetime.datetime, dropping nanoseconds; it is timed as it is.
    row = _record()
    row["id"] = SdkRecordID("kv", "user_000123:settings/theme")
    row["at"] = SdkDatetime("2026-11-02T10:00:05.123456789Z")
    return row


def _best(variants: dict[str, Callable[[], object]], rows: int, rounds: int) -> dict[str, float]:
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            for _ in range(rows):
                fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: rows / seconds for name, seconds in best.items()}


def main() -> None:
    """Print rows/s for encode and decode, syncd's codec and the SDK's."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    row, sdk_row = _record(), _sdk_record()
    data = codec.encode(row)
    assert codec.decode(data) == row
    rates = _best(
        {
            "encode syncd": lambda: codec.encode(row),
            "encode sdk": lambda: sdk.encode(sdk_row),
            "decode syncd": lambda: codec.decode(data),
            "decode sdk": lambda: sdk.decode(data),
        },
        args.rows,
        args.rounds,
    )
    print(f"record: {len(data)} bytes CBOR (sdk: {len(sdk.encode(sdk_row))} bytes)")
    for name, rate in rates.items():
        print(f"{name:14} {rate:>10,.0f} rows/s  {1e6 / rate:6.2f} µs/row")
    for op in ("encode", "decode"):
        print(f"{op}: syncd is {rates[f'{op} syncd'] / rates[f'{op} sdk']:.1f}x the SDK")


if __name__ == "__main__":
    main()
