"""``syncd status``: the command layer over :mod:`syncd.tools.status` and :mod:`syncd.tools.health`.

Exit codes (see :mod:`syncd.tools.health`): 0 healthy, 1 degraded, 2 bad input
(one line), 3 unknown. ``--json`` prints :func:`syncd.tools.status.gather`'s
mapping with ``health`` and ``reasons`` added; the shape is documented in the
README and kept stable.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from syncd.cli.app import ConfigOption, app, fail, handle_errors, load_cli_config
from syncd.cli.common import tool_errors
from syncd.config import Config
from syncd.config.secondaries import FLAT_NAME
from syncd.tools.health import assess, refusal
from syncd.tools.status import STATUS_TIMEOUT, gather
from syncd.tools.targets import resume_hint
from syncd.words import ago, at, plural

__all__ = ["render_status", "status"]


def _secondary(info: Mapping[str, Any], running: bool) -> str:
    up = info.get("up")
    if up is None:
        line = "unknown (no daemon answering)" if not running else "unknown"
        if info.get("paused"):  # the pause file says so, daemon or not
            line += f"; paused since {at(info.get('paused_since'))}"
        return line
    since = info.get("since")
    state = "up" if up else "down"
    line = f"{state} since {at(since)} ({ago(since).removesuffix(' ago')})"
    if not up and info.get("last_error"):
        line += f": {info['last_error']}"
    if info.get("paused"):
        since = info.get("paused_since")
        hint = resume_hint(str(info.get("name") or FLAT_NAME))
        line += f"; PAUSED since {at(since)} ({ago(since)}; `{hint}` to continue)"
    return line


def _backlog(info: Mapping[str, Any], running: bool, primary_down: bool = False) -> str:
    """One secondary's row when there are several: its state, lag, backlog, dead letters."""
    parts = [_secondary(info, running)]
    if info.get("joining"):
        parts.append("joining (a backfill is bringing it up to date)")
    lag = info.get("lag_seconds")
    if primary_down:
        parts.append("lag unknown")
    elif lag is not None:
        parts.append(f"lag {lag:.3f}s")
    queue, spool = info.get("queue_depth"), info.get("spool_depth")
    backlog = [
        f"{int(queue)} in memory" if queue is not None else "",
        f"{int(spool)} on disk" if spool is not None else "",
    ]
    if any(backlog):
        parts.append("backlog " + " + ".join(b for b in backlog if b))
    dead = info.get("dead_letters")
    parts.append("dead letters unknown" if dead is None else plural(int(dead), "dead letter"))
    return "; ".join(parts)


def _checkpoint(checkpoint: Mapping[str, Any] | None) -> str:
    if not checkpoint:
        return "none"
    if checkpoint.get("error"):
        return f"unreadable: {checkpoint['error']}"
    position = checkpoint.get("position")
    text = "none yet" if position is None else f"position {position}"
    if checkpoint.get("saved_at"):
        text += f", saved {ago(checkpoint['saved_at'])} ({at(checkpoint['saved_at'])})"
    if checkpoint.get("backfill"):
        text += ", backfill in progress"
    return text


def _rates(rates: Mapping[str, Any] | None) -> str:
    if not rates:
        return "unknown"
    window = rates.get("window_seconds") or 0
    if not window:
        return "not measured yet (ask again in a second)"
    parts = []
    for name, label in (
        ("applied", "applied"),
        ("enqueued", "enqueued"),
        ("dead_lettered", "dead-lettered"),
    ):
        value = rates.get(f"{name}_per_second")
        parts.append(f"{label} {value:.1f}/s" if isinstance(value, int | float) else f"{label} ?")
    return f"{', '.join(parts)} (over {window:.0f}s)"


def _lag(lag: Any, primary_down: bool) -> str:
    if primary_down:
        return "— (unknown while the primary is down)"
    return "unknown" if lag is None else f"{lag:.3f}s"


def _count(value: Any, unit: str) -> str:
    return "unknown" if value is None else f"{int(value)} {unit}"


def render_status(info: Mapping[str, Any]) -> Table:
    """The human view of :func:`syncd.tools.status.gather`'s mapping."""
    running = bool(info.get("daemon_running"))
    if running:
        source = f"daemon at {info['endpoint']}"
    else:
        source = f"state directory {info['state_dir']} ({info.get('note') or 'no daemon'})"
    lag = info.get("lag_seconds")
    primary = info.get("primary")
    # Nothing is read from a primary that is down: a lag of 0 would say "up to date".
    primary_down = isinstance(primary, Mapping) and primary.get("up") is False
    count = info.get("dead_letters")
    dead = "unknown" if count is None else plural(int(count), "entry")
    if info.get("dead_letters_malformed"):
        dead += f" (+{plural(info['dead_letters_malformed'], 'malformed line')})"
    if info.get("dead_letters"):
        dead += " — see `syncd dlq list`"
    spool = _count(info.get("spool_depth"), "operations")
    if info.get("spool_bytes"):
        spool += f" ({info['spool_bytes']} bytes)"
    health = str(info.get("health") or "unknown")
    reasons = info.get("reasons") or []
    rows = [
        ("health", health + (": " + "; ".join(reasons) if reasons else "")),
        ("source", source),
        ("secondary", _secondary(info.get("secondary") or {}, running)),
        ("lag", _lag(lag, primary_down)),
        ("queue", _count(info.get("queue_depth"), "operations in memory")),
        ("spool", spool + " on disk"),
        ("checkpoint", _checkpoint(info.get("checkpoint"))),
        ("dead letters", dead),
        ("rates", _rates(info.get("rates"))),
    ]
    listed = info.get("secondaries")
    if isinstance(listed, list) and len(listed) > 1:
        # One row each, in place of the one "secondary" row; lag and backlog rows are totals.
        at_row = [key for key, _ in rows].index("secondary")
        rows[at_row : at_row + 1] = [
            (f"secondary {s.get('name')}", _backlog(s, running, primary_down))
            for s in listed
            if isinstance(s, Mapping)
        ]
    if isinstance(primary, Mapping) and primary.get("up") is not None:
        rows.insert(1, ("primary", _secondary(primary, running)))
    if info.get("resync_pending"):
        tables = ", ".join(info["resync_pending"])
        rows.insert(-3, ("re-sync", f"{tables} (the spool could not keep all their writes)"))
    entries = listed if isinstance(listed, list) else []
    for entry in entries:
        note = _schema_note(entry)
        if note is not None:
            rows.insert(-3, (f"schema {entry['name']}" if len(entries) > 1 else "schema", note))
    table = Table(title="syncd status", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in rows:
        table.add_row(key, Text(value))  # Text: values are not rich markup
    return table


def _schema_note(entry: object) -> str | None:
    """The schema mirror's findings on one secondary, when there are any."""
    schema = entry.get("schema") if isinstance(entry, Mapping) else None
    if not isinstance(schema, Mapping):
        return None
    parts = []
    if schema.get("archived"):
        parts.append(f"kept after removal on the primary: {', '.join(schema['archived'])}")
    if schema.get("refused"):
        parts.append(f"refused by the secondary: {', '.join(schema['refused'])}")
    if schema.get("error"):
        parts.append(f"last check failed: {schema['error']}")
    return "; ".join(parts) or None


@app.command()
def status(
    config: ConfigOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
    timeout: Annotated[
        float,
        typer.Option(help="Seconds to wait for the daemon's /status.", min=0.1, show_default=True),
    ] = STATUS_TIMEOUT,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", help="Ask again every --interval seconds until Ctrl-C (--json: a line each)."
        ),
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.2, help="Seconds between two --watch looks.")
    ] = 2.0,
) -> None:
    """Show replication state: from the running daemon, else from the state directory.

    Each secondary up/down and since when, paused, lag, queue and spool
    backlog, dead letters; the totals, checkpoint and the rates of the last
    minute. Exits 0 healthy, 1 degraded (the reasons name the secondary),
    2 bad input, 3 unknown (no daemon answering). --json adds `secondaries`,
    one object per secondary, to the keys it always had.
    """
    with handle_errors(), tool_errors():
        cfg = load_cli_config(config)
        if watch:
            _watch(cfg, timeout, interval, json_output)
        info, code = _look(cfg, timeout)
        if json_output:
            sys.stdout.write(json.dumps(info, indent=2, default=str) + "\n")
        else:
            Console().print(render_status(info))
    raise typer.Exit(code)


def _look(cfg: Config, timeout: float) -> tuple[dict[str, Any], int]:
    """The status with its health and reasons, and the exit status it means; a refused
    password ends the command."""
    info = gather(cfg, timeout=timeout)
    refused = refusal(info)
    if refused is not None:
        fail(refused)
    health = assess(info, cfg)
    info.update(health=health.state, reasons=health.reasons)
    return info, health.exit_code


def _watch(cfg: Config, timeout: float, interval: float, json_output: bool) -> NoReturn:
    """``--watch``: the status again and again, in place on a terminal, until Ctrl-C."""
    console = Console()
    if json_output or not console.is_terminal:
        while True:  # a log of looks: one JSON line, or one table, each
            info, _ = _look(cfg, timeout)
            if json_output:
                sys.stdout.write(json.dumps(info, default=str) + "\n")
                sys.stdout.flush()
            else:
                console.print(render_status(info))
            time.sleep(interval)
    with Live(console=console, auto_refresh=False) as live:
        while True:
            table = render_status(_look(cfg, timeout)[0])
            table.caption = f"every {interval:g}s; Ctrl-C to stop"
            live.update(table, refresh=True)
            time.sleep(interval)
