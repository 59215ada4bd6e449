"""Helpers for the tools' tests with several named secondaries: their config file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.server import ServerProcess
from tests.support.tools import NAMESPACE

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
    data: dict[str, Any] = {
        "secondaries": listed,
        "primary_url": f"{primary.url}/rpc" if primary else "ws://127.0.0.1:9/rpc",
        "primary_pass": "root",
        "primary_namespace": NAMESPACE,
        "primary_database": database,
        "state_dir": str(path / "state"),
        "metrics_listen": None,
        "connect_timeout": "2s",
        "write_timeout": "5s",
        "health_check_interval": "1s",
        "reconnect_backoff": "500ms",
        "sync_retry_interval": "50ms",
        "batch_timeout": "5ms",
    }
    data.update(extra)
    file = path / "syncd.yaml"
    file.write_text(yaml.safe_dump(data), encoding="utf-8")
    return file
