"""The ``syncd`` command line.

Error contract shared by every command: a :class:`~syncd.errors.SyncdError`
(bad config, unreachable database, ...) becomes exactly one line
``syncd: <message>`` on stderr and exit status 2, never a traceback; Ctrl-C
exits 130 quietly. Commands get this by running their body inside
:func:`handle_errors` (a context manager that also works as a decorator) and
report their own failures with :func:`fail`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from syncd.config import Config, load_config
from syncd.errors import SyncdError

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_FILE",
    "ConfigOption",
    "app",
    "dlq_app",
    "fail",
    "handle_errors",
    "load_cli_config",
    "resolve_config_path",
]

#: Environment variable naming the config file when ``-c`` is not given.
CONFIG_ENV = "SYNCD_CONFIG"
#: Config file used when neither ``-c`` nor ``$SYNCD_CONFIG`` is given, if it exists.
DEFAULT_CONFIG_FILE = Path("syncd.yaml")

#: Exit status for a SyncdError (same as click's usage errors: "you asked for something wrong").
EXIT_ERROR = 2
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="syncd",
    help="One-way SurrealDB replication: tail a primary, fill a secondary, merge reads.",
    no_args_is_help=True,
    add_completion=False,
    # Locals could hold raw config mappings with passwords in them.
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("syncd")
        except PackageNotFoundError:  # run from a source tree that was never installed
            number = "unknown (not installed)"
        typer.echo(f"syncd {number}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print syncd's version and exit."
        ),
    ] = False,
) -> None:
    """One-way SurrealDB replication: tail a primary, fill a secondary, merge reads."""


dlq_app = typer.Typer(
    help="Inspect and act on the dead-letter file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(dlq_app, name="dlq")

#: The ``-c/--config`` option every command takes.
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "-c",
        "--config",
        envvar=CONFIG_ENV,
        show_envvar=True,
        # No exists=/dir_okay= checks: click would report them as a multi-line
        # usage error; load_config reports them as one line naming the file.
        help="YAML config file. Default: ./syncd.yaml if it exists, else built-in defaults.",
        metavar="PATH",
    ),
]


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print ``syncd: <message>`` as one line on stderr and exit with ``code``."""
    # One line whatever the message holds, so scripts and log collectors can
    # rely on it. Plain write, not rich: rich wraps long lines.
    line = " ".join(message.splitlines())
    sys.stderr.write(f"syncd: {line}\n")
    sys.stderr.flush()
    raise typer.Exit(code)


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    """Turn ``SyncdError`` into one stderr line + exit 2, and Ctrl-C into a quiet exit 130.

    Use as ``with handle_errors(): ...`` inside a command, or as a decorator
    ``@handle_errors()`` under ``@app.command()``. Other exceptions are bugs
    and propagate with their traceback.
    """
    try:
        yield
    except SyncdError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        # Ctrl-C at a terminal already shows "^C"; anything more is noise.
        raise typer.Exit(EXIT_INTERRUPTED) from None


def resolve_config_path(option: Path | None) -> Path | None:
    """The config file to read: ``-c``/``$SYNCD_CONFIG``, else ``./syncd.yaml`` if present.

    ``None`` means "no file: defaults plus environment". An explicitly named
    file is returned even if missing, so loading it reports the error.
    """
    if option is not None:
        return option
    env_value = os.environ.get(CONFIG_ENV)
    if env_value:  # typer already reads it; this covers direct callers
        return Path(env_value)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_cli_config(option: Path | None) -> Config:
    """Load the config a command was pointed at (see :func:`resolve_config_path`).

    Raises:
        ConfigError: as :func:`syncd.config.load_config`.
    """
    return load_config(resolve_config_path(option))
