"""``syncd status``: what a running daemon reports, or what its state directory shows.

A running daemon answers ``GET /status`` on ``metrics_listen`` with
:meth:`syncd.service.replicator.Replicator.status`; it is asked with a short timeout.
When nothing answers there, the state directory is read instead, **without
modifying anything** (a daemon without an HTTP endpoint may still be running
on it): the spool's unread operations are counted by walking frame headers,
the dead-letter file is read under its shared lock, the checkpoint and pause
files are parsed. What only a live process knows (secondary state, lag, memory queue,
rates) is then reported as unknown.

Both paths produce the same flat mapping (:func:`gather`), which ``--json``
prints as is and the CLI renders as a table. ``secondaries`` lists every
secondary (name, state, lag, backlog, pause, dead letters), in priority
order; ``secondary`` is the first of them, as it was when there was one, and
``lag_seconds`` (the largest), ``queue_depth``, ``spool_depth`` and
``dead_letters`` (sums) are totals. Read from the state directory, each
secondary's spool, dead letters and re-sync ledger are in its own state
directory, the pauses in the root one.
"""

from __future__ import annotations

import json
import mmap
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from syncd.capture.checkpoint import CheckpointError, CheckpointFile
from syncd.config import Config
from syncd.errors import ConfigError, SyncdError
from syncd.pipeline.deadletter import DeadLetterFile
from syncd.pipeline.pause import PauseFile
from syncd.pipeline.recopy import read_ledger
from syncd.pipeline.segments import HEADER, NAME, survey
from syncd.pipeline.statedir import resync_file, state_files

__all__ = [
    "STATUS_TIMEOUT",
    "count_spool",
    "daemon_url",
    "fetch_daemon_status",
    "gather",
    "status_url",
]

#: Seconds to wait for a daemon's /status before reading the state directory.
STATUS_TIMEOUT = 2.0
# The spool's read-position file (syncd.pipeline.spool keeps its name private).
_SPOOL_STATE = "head.json"


def status_url(metrics_listen: str | None) -> str | None:
    """The daemon's ``/status`` URL for ``metrics_listen``; a wildcard host means this machine."""
    return daemon_url(metrics_listen, "/status")


def daemon_url(metrics_listen: str | None, path: str) -> str | None:
    """The URL of ``path`` on the daemon's endpoint; ``None`` when it cannot be known."""
    if not metrics_listen:
        return None
    host, _, port = metrics_listen.rpartition(":")
    if port.strip() in ("", "0"):  # chosen by the daemon at start: not knowable from here
        return None
    host = host.strip("[]") or "127.0.0.1"
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}{path}" if ":" in host else f"http://{host}:{port}{path}"


def fetch_daemon_status(
    url: str, timeout: float = STATUS_TIMEOUT
) -> tuple[dict[str, Any] | None, str]:
    """``(status, "")`` from the daemon at ``url``, or ``(None, why not)``."""
    # No proxy: the endpoint is local, and an http_proxy variable must not reroute it.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return None, f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        reason = exc.reason
        return None, str(getattr(reason, "strerror", None) or reason)
    except (OSError, ValueError) as exc:  # timeouts, resets, not JSON
        return None, str(exc) or type(exc).__name__
    if not isinstance(data, dict):
        return None, "not a status object"
    return data, ""


def count_spool(directory: Path) -> tuple[int, int]:
    """``(operations, bytes)`` not yet confirmed in the spool in ``directory``; read-only.

    Walks each segment as :meth:`syncd.pipeline.spool.Spool.open` does (from the offset
    saved in the read-position file when the segment's nonce matches) but
    repairs nothing: torn and damaged frames are not counted.
    """
    try:
        saved = json.loads((directory / _SPOOL_STATE).read_text()).get("offsets", {})
    except (OSError, ValueError, AttributeError):
        saved = {}
    operations = size = 0
    try:
        paths = sorted(p for p in directory.iterdir() if NAME.fullmatch(p.name))
    except FileNotFoundError:
        return 0, 0
    for path in paths:
        try:
            with path.open("rb") as f:
                length = os.fstat(f.fileno()).st_size
                if length < HEADER.size:
                    continue  # created, header never written: holds nothing
                with mmap.mmap(f.fileno(), length, access=mmap.ACCESS_READ) as mm:
                    found = survey(mm, length, saved.get(path.name))
        except FileNotFoundError:  # consumed and deleted meanwhile
            continue
        operations += found.frames
        size += found.end - found.start
    return operations, size


def _checkpoint(state_dir: Path) -> dict[str, Any] | None:
    try:
        saved = CheckpointFile(state_dir).load()
    except CheckpointError as exc:
        return {"error": str(exc)}
    except OSError as exc:
        return {"error": f"cannot read: {exc}"}
    if saved is None:
        return None
    return {
        "position": saved.position,
        "saved_at": saved.saved_at,
        "backfill": saved.backfill is not None,
    }


def _pauses(config: Config) -> dict[str, dict[str, Any]]:
    """Each secondary's persisted pause: ``paused``, ``paused_since`` (None: unreadable)."""
    try:
        paused = PauseFile(config.state_path).load()
    except ConfigError as exc:
        unread = {"paused": None, "paused_since": None, "pause_error": str(exc)}
        return {name: dict(unread) for name in config.secondary_names()}
    return {
        name: {"paused": name in paused, "paused_since": paused.get(name)}
        for name in config.secondary_names()
    }


def _dead_letters(path: Path) -> tuple[int, int]:
    try:
        entries, malformed = DeadLetterFile(path).read()
    except SyncdError:
        return 0, 0
    return len(entries), len(malformed)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    """A count or a time from the daemon; NaN (a file that could not be read) is None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return value


def _one_from_daemon(entry: Mapping[str, Any], name: str) -> dict[str, Any]:
    dead = _number(entry.get("dead_letters"))
    return {
        "name": entry.get("name") or name,
        "priority": entry.get("priority"),
        "up": entry.get("up"),
        "since": entry.get("since"),
        "last_error": entry.get("last_error") or "",
        "failure": entry.get("failure"),
        "version": entry.get("version"),
        "paused": entry.get("paused"),
        "paused_since": entry.get("paused_since"),
        "joining": entry.get("joining"),
        "lag_seconds": entry.get("lag_seconds"),
        "queue_depth": entry.get("queue_depth"),
        "spool_depth": entry.get("spool_depth"),
        "resync_pending": entry.get("resync_pending") or [],
        "dead_letters": None if dead is None else int(dead),
        "schema": entry.get("schema"),
    }


def _from_daemon(data: Mapping[str, Any], config: Config) -> dict[str, Any]:
    secondary = _mapping(data.get("secondary"))
    listed = data.get("secondaries")
    if not isinstance(listed, list) or not listed:
        # A daemon from before several secondaries: its one is the first configured.
        one = {**secondary, "lag_seconds": data.get("lag_seconds")}
        one.setdefault("dead_letters", data.get("dead_letters"))
        listed = [one]
    names = config.secondary_names()
    each = [
        _one_from_daemon(_mapping(e), names[i] if i < len(names) else f"#{i + 1}")
        for i, e in enumerate(listed)
    ]
    dead = _number(data.get("dead_letters", _mapping(data.get("metrics")).get("dead_letters")))
    return {
        "ready": data.get("ready"),
        "secondary": {
            "up": secondary.get("up"),
            "since": secondary.get("since"),
            "last_error": secondary.get("last_error") or "",
            "failure": secondary.get("failure"),
            "paused": secondary.get("paused"),
            "paused_since": secondary.get("paused_since"),
        },
        "secondaries": each,
        "primary": data.get("primary"),
        "lag_seconds": data.get("lag_seconds"),
        "queue_depth": data.get("queue_depth"),
        "spool_depth": data.get("spool_depth"),
        "resync_pending": data.get("resync_pending") or [],
        "dead_letters": None if dead is None else int(dead),
        "rates": data.get("rates"),
        "checkpoint": data.get("checkpoint"),
    }


def _one_from_state(config: Config, name: str, pause: Mapping[str, Any]) -> dict[str, Any]:
    state = config.secondary_state(name)
    spool_dir, dlq_path = state_files(state)
    operations, spool_bytes = count_spool(spool_dir)
    dead, malformed = _dead_letters(dlq_path)
    return {
        "name": name,
        "up": None,
        "since": None,
        "last_error": "",
        "failure": None,
        **pause,
        "joining": None,
        "lag_seconds": None,
        "queue_depth": None,
        "spool_depth": operations,
        "spool_bytes": spool_bytes,
        "resync_pending": read_ledger(resync_file(state)),
        "dead_letters": dead,
        "dead_letters_malformed": malformed,
    }


def gather(config: Config, *, timeout: float = STATUS_TIMEOUT) -> dict[str, Any]:
    """The status, from the daemon when it answers, else from the state directory."""
    state = config.state_path
    url = status_url(config.metrics_listen)
    out: dict[str, Any] = {"state_dir": str(state), "endpoint": url, "checked_at": time.time()}
    if url is None:
        data, why = None, "metrics_listen is disabled, or its port is 0 (unknown here)"
    else:
        data, why = fetch_daemon_status(url, timeout)
    if data is not None:
        out.update(source="daemon", daemon_running=True, note="")
        out.update(_from_daemon(data, config))
        if out["checkpoint"] is None:  # a plain Replicator has none; a file may exist
            out["checkpoint"] = _checkpoint(state)
        return out
    pauses = _pauses(config)
    each = [_one_from_state(config, name, pauses[name]) for name in config.secondary_names()]
    first = each[0]
    out.update(
        source="state_dir",
        daemon_running=False,
        note=f"no daemon answered at {url}: {why}" if url else why,
        ready=None,
        secondary={
            key: first[key]
            for key in ("up", "since", "last_error", "failure", "paused", "paused_since")
        }
        | ({"pause_error": first["pause_error"]} if "pause_error" in first else {}),
        secondaries=each,
        primary=None,
        lag_seconds=None,
        queue_depth=None,
        spool_depth=sum(e["spool_depth"] for e in each),
        spool_bytes=sum(e["spool_bytes"] for e in each),
        resync_pending=sorted({t for e in each for t in e["resync_pending"]}),
        dead_letters=sum(e["dead_letters"] for e in each),
        dead_letters_malformed=sum(e["dead_letters_malformed"] for e in each),
        rates=None,
        checkpoint=_checkpoint(state),
    )
    return out
