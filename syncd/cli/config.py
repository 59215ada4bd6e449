"""``syncd check-config``: validate the config and show the effective settings.

With a ``secondaries:`` list, each secondary is shown in a table of its own
(name, priority, URL with any password in it masked, user, namespace,
database, password as ``***`` or "not set", and where a password may come
from); the flat ``secondary_*`` keys, unused then, are left out of the human
view. No password is ever printed.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from syncd.cli.app import ConfigOption, app, handle_errors, resolve_config_path
from syncd.config import load_config

# A table's options shown only when they say something (their defaults are not).
_DEFAULT_OPTIONS = {("prefer", "primary"), ("unmergeable", "raise")}


def _render(key: str, value: object) -> str:
    """A summary value as shown in the human table."""
    if value is None:
        return {
            "tables": "(every table)",
            "secondaries": "(one, from the secondary_* keys, named 'secondary')",
            "metrics_listen": "(disabled)",
            "log_json": "auto",
        }.get(key, "(not set)")
    if isinstance(value, bool):
        return "true" if value else "false"
    if key == "schema" and isinstance(value, dict):
        removals = "; mirror_removals: true" if value.get("mirror_removals") else ""
        return f"{value.get('mode')}{removals}"
    if isinstance(value, dict):  # tables: one line each, options only when not default
        lines = []
        for name, options in value.items():
            details = [
                f"{option}: {', '.join(value) if isinstance(value, list) else value}"
                for option, value in options.items()
                if value and not (isinstance(value, str) and (option, value) in _DEFAULT_OPTIONS)
            ]
            lines.append(f"{name} ({'; '.join(details)})" if details else str(name))
        return "\n".join(lines)
    if key == "secondaries" and isinstance(value, list):
        names = [str(s.get("name")) for s in value if isinstance(s, dict)]
        return f"{', '.join(names)} (see the secondaries table)"
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
        listed = summary.get("secondaries")
        for key, value in summary.items():
            if listed is not None and key.startswith("secondary_"):
                continue  # not used with a secondaries list: their defaults would mislead
            # Text, not str: a str cell is parsed as rich markup ("[::1]:9464").
            table.add_row(key, Text(_render(key, value)))
        console = Console()
        console.print(table)
        if isinstance(listed, list):
            console.print(_secondaries_table(listed))


def _secondaries_table(listed: list[Any]) -> Table:
    """Each secondary of the summary: its settings, the password masked, where one comes from."""
    table = Table(
        title="secondaries (lower priority wins in merged reads)",
        title_justify="left",
        caption="a password comes from the file, the systemd credential "
        "secondaries_<name>_pass or the variable shown, the later winning",
    )
    for column in ("name", "priority", "url", "user", "namespace", "database", "password"):
        table.add_column(column, style="bold" if column == "name" else None, overflow="fold")
    table.add_column("password variable", overflow="fold")
    for s in listed:
        password = "***" if s.get("pass") else "not set"
        table.add_row(
            *(
                Text(str(s.get(key)))
                for key in ("name", "priority", "url", "user", "namespace", "database")
            ),
            Text(password),
            Text(str(s.get("pass_env") or "")),
        )
    return table
