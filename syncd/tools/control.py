"""``syncd pause`` and ``syncd resume``: ask the running daemon to pause or resume a secondary.

The daemon holds the pause (its workers wait at it), so these commands talk
to it: ``POST /pause`` or ``POST /resume`` on ``metrics_listen``
(:mod:`syncd.service.control`), with ``Authorization: Bearer <control_token>``
when the config sets one. What can go wrong becomes one exception each, which
the command turns into one line and an exit status:

- :class:`NoDaemon`: nothing answered (the daemon is not running, or
  ``metrics_listen`` is off): exit 3, as ``syncd status`` says "unknown";
- :class:`ControlRefused`: the daemon answered 403 (not a loopback client
  and no token, or a missing or wrong token): exit 2;
- :class:`~syncd.errors.UnknownSecondary`: no secondary of that name: exit 2.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from typing import Any

from syncd.config import Config
from syncd.errors import SyncdError, UnknownSecondary
from syncd.pipeline.pause import PauseFile
from syncd.tools.status import daemon_url
from syncd.tools.targets import label, resume_hint
from syncd.words import at

__all__ = [
    "CONTROL_TIMEOUT",
    "ControlRefused",
    "NoDaemon",
    "control_url",
    "refuse_while_paused",
    "send_control",
]

#: Seconds to wait for the daemon's answer.
CONTROL_TIMEOUT = 5.0


class NoDaemon(SyncdError):
    """No daemon answered on ``metrics_listen``."""


class ControlRefused(SyncdError):
    """The daemon refused the request (403)."""


def refuse_while_paused(config: Config, doing: str, names: Iterable[str] | None = None) -> None:
    """Raise ``SyncdError`` when a secondary in ``names`` is paused: a tool must not write to it.

    ``config`` is the whole configuration (the pause file is in its
    ``state_dir``); ``names`` ``None`` means every secondary. ``syncd
    backfill``, ``verify --repair`` and ``dlq replay`` write to the
    secondaries themselves; an operator who paused one (for maintenance, say)
    is told so, instead of the pause being quietly broken. A pause of a
    secondary the tool does not write to is no reason to refuse.
    """
    paused = PauseFile(config.state_path).load()
    for name in config.secondary_names() if names is None else names:
        since = paused.get(name)
        if since is not None:
            raise SyncdError(
                f"{label(name)} is paused (since {at(since)}): {doing} would write to it; "
                f"run `{resume_hint(name)}` first"
            )


def control_url(config: Config, action: str, secondary: str | None) -> str | None:
    """The URL of ``POST /<action>`` for ``secondary``; ``None`` when it cannot be known."""
    url = daemon_url(config.metrics_listen, f"/{action}")
    if url is None or secondary is None:
        return url
    return f"{url}?{urllib.parse.urlencode({'secondary': secondary})}"


def send_control(
    config: Config, action: str, secondary: str | None, timeout: float = CONTROL_TIMEOUT
) -> list[dict[str, Any]]:
    """Ask the daemon to ``pause`` or ``resume``; return the states it reports.

    Raises:
        NoDaemon: nothing answered.
        ControlRefused: the daemon answered 403.
        UnknownSecondary: the daemon knows no secondary of that name.
        SyncdError: any other answer.
    """
    url = control_url(config, action, secondary)
    if url is None:
        raise NoDaemon(
            "cannot reach the daemon: metrics_listen is disabled, or its port is 0 "
            "(the daemon's endpoint is where pause and resume are asked)"
        )
    request = urllib.request.Request(url, data=b"", method="POST")
    token = config.control_token.get_secret_value()
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    # No proxy: the endpoint is local, and an http_proxy variable must not reroute it.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            answer = _json(response.read())
    except urllib.error.HTTPError as exc:
        raise _http_error(url, exc) from None
    except urllib.error.URLError as exc:
        why = getattr(exc.reason, "strerror", None) or exc.reason
        raise NoDaemon(f"no daemon answered at {url}: {why}") from None
    except OSError as exc:  # a timeout or a reset mid-answer
        raise NoDaemon(f"no daemon answered at {url}: {exc or type(exc).__name__}") from None
    states = answer.get("secondaries", [answer])
    if not isinstance(states, list) or not all(isinstance(s, dict) for s in states):
        raise SyncdError(f"the daemon at {url} answered {action} with an unexpected object")
    return states


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _http_error(url: str, exc: urllib.error.HTTPError) -> SyncdError:
    error = str(_json(exc.read()).get("error") or exc.reason)
    if exc.code == 403:
        return ControlRefused(f"the daemon at {url} refused: {error.removeprefix('refused: ')}")
    if exc.code == 404 and error.startswith("unknown secondary"):
        return UnknownSecondary(error)
    if exc.code in (404, 405):
        # An endpoint that is not syncd's, or a syncd from before pause and resume.
        return SyncdError(f"{url}: HTTP {exc.code}: this endpoint does not take pause and resume")
    return SyncdError(f"the daemon at {url} answered HTTP {exc.code}: {error}")
