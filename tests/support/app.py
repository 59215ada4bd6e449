"""An application that writes through syncd until it is killed: ``python -m tests.support.app``.

Arguments: ``TMP_PATH SECONDARY_URL [CONFIG_JSON]``. It opens an embedded primary
and a :class:`syncd.Replicator` configured by :func:`tests.support.replica.make_config`
(state under ``TMP_PATH/state``, default queue and durability settings unless
``CONFIG_JSON`` overrides some), prints
``ready``, then writes through ``rep.wrap(db)`` for ever. Every write the
primary acknowledged is printed on its own line once the wrapped call has
returned, so the parent knows exactly what was acknowledged when it kills us:

- ``e N``: ``events:N`` created with ``{"n": N, "text": ...}`` (each id once);
- ``h K N``: ``hot:K`` upserted with ``{"n": N}`` (a few records rewritten often,
  to check per-record order: the secondary must never end on an older N).

No signal handler is installed: SIGTERM ends the process the way Python's
default does, without running ``finally`` blocks or ``__aexit__``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from prometheus_client import CollectorRegistry
from surrealdb import RecordID

from syncd.service.replicator import Replicator
from tests.support.replica import embedded_primary, make_config

TEXT = "x" * 150  # about the size of a typical record (~230 bytes of CBOR)
HOT = 7


async def main(tmp_path: Path, secondary_url: str, overrides: dict[str, Any]) -> None:
    """Write until killed."""
    out = sys.stdout
    config = make_config(tmp_path, secondary_url, **overrides)
    async with (
        embedded_primary() as primary,
        Replicator(config, registry=CollectorRegistry()) as rep,
    ):
        db = rep.wrap(primary)
        out.write("ready\n")
        out.flush()
        n = 0
        while True:
            await db.create(RecordID("events", n), {"n": n, "text": TEXT})
            line = f"e {n}\n"
            if n % 4 == 0:
                key = n % HOT
                await db.upsert(RecordID("hot", key), {"n": n})
                line += f"h {key} {n}\n"
            out.write(line)
            out.flush()
            n += 1
            if n % 64 == 0:
                await anyio.lowlevel.checkpoint()  # an application does other things too


if __name__ == "__main__":
    extra = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    anyio.run(main, Path(sys.argv[1]), sys.argv[2], extra)
