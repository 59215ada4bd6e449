"""``syncd check-config``: validate the config and show the effective settings."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from syncd.cli.app import ConfigOption, app, handle_errors, resolve_config_path
from syncd.config import load_config


def _render(key: str, value: object) -> str:
    """A summary value as shown in the human table."""
    if value is None:
        return {
            "tables": "(every table)",
            "metrics_listen": "(disabled)",
            "log_json": "auto",
        }.get(key, "(not set)")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):  # tables: one line each, options only when not default
        lines = []
        for name, options in value.items():
            details = [
                f"{option}: {', '.join(value) if isinstance(value, list) else value}"
                for option, value in options.items()
                if value and (option, value) != ("prefer", "primary")
            ]
            lines.append(f"{name} ({'; '.join(details)})" if details else str(name))
        return "\n".join(lines)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "(none)"
    return str(value)


@app.command("check-config")
def check_config(
    config: ConfigOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the effective config as JSON.")
    ] = False,
) -> None:
    """Validate the config and print the effective settings (passwords masked)."""
    with handle_errors():
        path = resolve_config_path(config)
        summary = load_config(path).summary()
        if json_output:
            sys.stdout.write(json.dumps(summary, indent=2) + "\n")
            return
        source = str(path) if path is not None else "built-in defaults"
        table = Table(
            title=f"syncd config: {source}", caption="SYNCD_* variables override the file"
        )
        table.add_column("key", style="bold")
        table.add_column("value", overflow="fold")
        for key, value in summary.items():
            # Text, not str: a str cell is parsed as rich markup ("[::1]:9464").
            table.add_row(key, Text(_render(key, value)))
        Console().print(table)
