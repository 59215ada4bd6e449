"""``syncd run``'s entry point: logging configured, the daemon run, its errors made plain."""

from __future__ import annotations

from pathlib import Path

import anyio

from syncd.config import Config
from syncd.errors import SyncdError
from syncd.logs import configure_logging
from syncd.service.daemon import Daemon

__all__ = ["run_daemon"]


def run_daemon(config: Config, config_path: Path | None = None, *, resync: bool = False) -> int:
    """Entry point of ``syncd run``: configure logging, run the daemon, return its exit code."""

    def reload_logging(fresh: Config) -> None:
        configure_logging(fresh.log_level, fresh.log_json)

    configure_logging(config.log_level, config.log_json)
    daemon = Daemon(config, config_path=config_path, reload_logging=reload_logging, resync=resync)
    try:
        return anyio.run(daemon.run)
    except BaseExceptionGroup as group:
        # Task groups wrap what their tasks raise; a user's mistake (a
        # ConfigError) must still reach the CLI as one clear line.
        mistake = _first_syncd_error(group)
        if mistake is not None:
            raise mistake from None
        raise


def _first_syncd_error(group: BaseExceptionGroup[BaseException]) -> SyncdError | None:
    for exc in group.exceptions:
        if isinstance(exc, SyncdError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_syncd_error(exc)
            if found is not None:
                return found
    return None
