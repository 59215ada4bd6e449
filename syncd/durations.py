"""Durations as people write them in config files: ``"5s"``, ``"250ms"``, ``"1m30s"``, ``"7d"``.

Pure functions, no I/O. Durations are carried as ``float`` seconds everywhere
in syncd (``anyio`` timeouts and ``time.monotonic()`` both speak seconds), so
this module is the only place that knows about units: the configuration's
(:data:`UNITS`) and SurrealQL's (:data:`SURREAL_UNITS`, which a ``duration``
value and a ``CHANGEFEED`` clause are written in).
"""

from __future__ import annotations

import json
import math
import re

__all__ = ["SURREAL_UNITS", "UNITS", "format_duration", "parse_duration"]

_SECOND_NS = 1_000_000_000

#: Nanoseconds per SurrealQL duration unit (exact), largest first.
SURREAL_UNITS: dict[str, int] = {
    "y": 365 * 86_400 * _SECOND_NS,
    "w": 7 * 86_400 * _SECOND_NS,
    "d": 86_400 * _SECOND_NS,
    "h": 3600 * _SECOND_NS,
    "m": 60 * _SECOND_NS,
    "s": _SECOND_NS,
    "ms": 1_000_000,
    "µs": 1000,
    "ns": 1,
}

#: Seconds per unit of a configured duration, largest first (``format_duration``
#: walks it in this order): SurrealQL's, from days to milliseconds.
UNITS: dict[str, float] = {u: SURREAL_UNITS[u] / _SECOND_NS for u in ("d", "h", "m", "s", "ms")}

# One "<number><unit>" component. "ms" is listed before "m" so the alternation
# does not stop at the "m" of "250ms".
_COMPONENT = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)")
_BARE_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")

_HINT = 'expected seconds or numbers with units ms, s, m, h, d, e.g. "5s", "250ms", "1m30s"'


def parse_duration(text: str) -> float:
    """Parse ``text`` into seconds.

    Accepts a bare number (seconds: ``"5"``, ``"0.5"``) or one or more
    ``<number><unit>`` components with units ``ms``, ``s``, ``m``, ``h``, ``d``
    (``"1m30s"``, ``"1.5h"``, ``"1m 30s"``), optionally signed. Range checks
    (positive, non-zero) are the caller's business: this only parses.

    Raises:
        ValueError: the text is not a duration; the message quotes it and
            shows the accepted forms.
    """
    body = text.strip()
    sign = 1.0
    if body[:1] in ("+", "-"):
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:].lstrip()
    if not body:
        raise ValueError(f"invalid duration {json.dumps(text)}: {_HINT}")
    if _BARE_NUMBER.fullmatch(body):
        return sign * float(body)
    total = 0.0
    pos = 0
    while pos < len(body):
        match = _COMPONENT.match(body, pos)
        if match is None:
            raise ValueError(f"invalid duration {json.dumps(text)}: {_HINT}")
        total += float(match.group(1)) * UNITS[match.group(2)]
        pos = match.end()
    # Huge digit strings overflow to inf; a duration that long is a typo.
    if not math.isfinite(total):
        raise ValueError(f"invalid duration {json.dumps(text)}: too large")
    return sign * total


def format_duration(seconds: float) -> str:
    """Render ``seconds`` the way :func:`parse_duration` reads it back.

    ``5.0`` -> ``"5s"``, ``0.02`` -> ``"20ms"``, ``90`` -> ``"1m30s"``,
    ``0`` -> ``"0s"``. Precision is one microsecond (shown as a fraction of a
    millisecond, e.g. ``"1.5ms"``), which is far finer than any setting needs.
    """
    if not math.isfinite(seconds):
        raise ValueError(f"cannot format a non-finite duration ({seconds!r})")
    if seconds < 0:
        return "-" + format_duration(-seconds)
    # Work in whole microseconds so float noise (0.1 + 0.2) cannot produce
    # "299.99999ms"-style output.
    micros = round(seconds * 1_000_000)
    if micros == 0:
        return "0s"
    parts: list[str] = []
    for unit in ("d", "h", "m", "s"):
        size = round(UNITS[unit] * 1_000_000)
        count, micros = divmod(micros, size)
        if count:
            parts.append(f"{count}{unit}")
    if micros:
        millis = f"{micros / 1000:.3f}".rstrip("0").rstrip(".")
        parts.append(f"{millis}ms")
    return "".join(parts)
