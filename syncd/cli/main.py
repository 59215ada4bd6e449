"""The ``syncd`` command: every command module registered on the app, and the entry point.

``app.py`` holds the shared pieces (the Typer apps, ``-c``, the error contract)
and imports no command; each command module imports ``app.py`` and registers
itself; this module imports them all, so there is no cycle.
"""

from __future__ import annotations

# Imported for their registration on the app (each module's @app.command()).
from syncd.cli import (  # noqa: F401
    config,
    demo,
    dlq,
    dlqreplay,
    pause,
    resume,
    run,
    status,
    verify,
)
from syncd.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point (``syncd``) and ``python -m syncd``."""
    # prog_name: otherwise `python -m syncd --help` calls itself "__main__.py".
    app(prog_name="syncd")
