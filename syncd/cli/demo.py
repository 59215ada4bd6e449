"""``syncd demo``: the command layer over :mod:`syncd.dev.demo`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from syncd.cli.app import ConfigOption, app, handle_errors
from syncd.cli.common import tool_errors
from syncd.dev.demo import DemoOptions, run_demo
from syncd.logs import configure_logging

__all__ = ["demo"]


@app.command()
def demo(
    config: ConfigOption = None,
    duration: Annotated[
        float,
        typer.Option("--duration", min=5.0, max=50.0, help="Seconds of writes.", show_default=True),
    ] = DemoOptions.duration,
    rate: Annotated[
        int, typer.Option("--rate", min=10, max=2000, help="Writes per second.", show_default=True)
    ] = DemoOptions.rate,
    engine: Annotated[
        int,
        typer.Option(
            "--engine",
            min=2,
            max=3,
            help="SurrealDB generation of every database: 2 (2.3.10) or 3 (3.2.4).",
            show_default=True,
        ),
    ] = DemoOptions.engine,
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Keep the demo's files (secondaries' stores, state, logs)."),
    ] = False,
) -> None:
    """Replicate a live workload to two secondaries, one killed and one paused, then verify.

    Needs no config and no server: the primary is embedded, the secondaries
    (archive, analytics) are child processes on 127.0.0.1. Exits 1 unless
    both end equal to the primary. Takes about --duration seconds plus a few
    and leaves nothing running. The demo makes its own settings; -c is ignored.
    """
    with handle_errors(), tool_errors():
        # The pipeline's warnings (a secondary going down is the point of
        # the demo) would garble the live view; errors still show.
        configure_logging("error", stream=sys.stderr)
        options = DemoOptions(duration=duration, rate=rate, keep=keep, engine=engine)
        raise typer.Exit(run_demo(options, Console()))
