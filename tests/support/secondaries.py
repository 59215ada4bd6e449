"""Helpers for the tools' tests with several named secondaries: their config file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from syncd.dev.process import DevServerProcess as ServerProcess
from tests.support.tools import NAMESPACE, write_config

#: A secondary for :func:`write_secondaries_config`: (server, database), or a URL nobody serves.
Target = tuple[ServerProcess, str] | str


def write_secondaries_config(
    path: Path,
    *,
    primary: ServerProcess | None,
    database: str,
    secondaries: dict[str, Target],
    **extra: Any,
) -> Path:
    """A YAML config with a ``secondaries:`` list (priority in the order given), state under path.

    Each secondary is ``app/<its database>`` on its server, signed in as root/root.
    """
    listed = []
    for priority, (name, target) in enumerate(secondaries.items(), start=1):
        if isinstance(target, str):
            url, db = target, database
        else:
            url, db = f"{target[0].url}/rpc", target[1]
        listed.append(
            {
                "name": name,
                "url": url,
                "user": "root",
                "pass": "root",
                "namespace": NAMESPACE,
                "database": db,
                "priority": priority,
            }
        )
    return write_config(
        path, primary=primary, secondary=None, database=database, secondaries=listed, **extra
    )
