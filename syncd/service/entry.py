"""``syncd run``'s entry point: logging configured, the daemon run, its errors made plain."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import anyio

from syncd.config import Config
from syncd.errors import ConfigError, SyncdError
from syncd.logs import configure_logging
from syncd.service.daemon import Daemon

__all__ = ["check_daemon_config", "run_daemon"]

# URL schemes that open a new, empty database inside this very process.
_IN_PROCESS = ("mem", "memory")


def check_daemon_config(
    config: Config, config_path: Path | None = None, *, command: str = "syncd run"
) -> None:
    """Refuse a config the daemon (or a tool reading the primary) would run on while
    replicating, copying or comparing nothing.

    ``primary_url`` defaults to ``mem://`` for the library (which uses the
    application's own connection), but a daemon on it would tail an empty
    database of its own and look healthy doing so; ``verify`` would call it
    consistent and ``backfill`` would copy nothing.

    Raises:
        ConfigError: one line naming ``primary_url``.
    """
    if urlsplit(config.primary_url).scheme.lower() in _IN_PROCESS:
        source = f"config {config_path}: " if config_path is not None else "config: "
        raise ConfigError(
            f"{source}primary_url: {command} needs the URL of the database to replicate, "
            f'e.g. "ws://primary-db:8000/rpc" (got "{config.primary_url}": an empty '
            "database inside this process)"
        )


def run_daemon(config: Config, config_path: Path | None = None, *, resync: bool = False) -> int:
    """Entry point of ``syncd run``: configure logging, run the daemon, return its exit code."""
    check_daemon_config(config, config_path)

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
