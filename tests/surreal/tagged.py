"""A lossless JSON form of what ``cbor2.loads`` returns for SurrealDB frames.

Plain JSON values stand for themselves; everything else is a one-key object
whose key starts with ``$``: ``{"$tag": 8, "value": [...]}`` for a CBOR tag
cbor2 leaves alone (record ids, NONE, durations...), ``$uuid``,
``$datetime``, ``$decimal``, ``$bytes`` (hex), ``$tuple`` and ``$frozendict``
(cbor2 decodes tag contents immutably), ``$float`` (nan, inf), ``$undefined``,
``$simple`` and ``$map`` (a map with a key JSON cannot hold).
``from_json(to_json(x)) == x`` for every frame the engines answered.
"""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import cbor2


def to_json(value: Any) -> Any:
    """``value`` (as decoded by cbor2) in the tagged JSON form."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, cbor2.CBORTag):
        return {"$tag": value.tag, "value": to_json(value.value)}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, bytes | bytearray):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, tuple):
        return {"$tuple": [to_json(v) for v in value]}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if value is cbor2.undefined:
        return {"$undefined": True}
    if isinstance(value, cbor2.CBORSimpleValue):
        return {"$simple": int(value.value)}
    if isinstance(value, cbor2.frozendict):
        return {"$frozendict": [[to_json(k), to_json(v)] for k, v in value.items()]}
    if isinstance(value, Mapping):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: to_json(v) for k, v in value.items()}
        return {"$map": [[to_json(k), to_json(v)] for k, v in value.items()]}
    raise TypeError(f"no tagged JSON form for {type(value).__name__}")


def _from_marker(key: str, body: Any, value: Mapping[str, Any]) -> Any:
    if key == "$tag":
        return cbor2.CBORTag(body, from_json(value["value"]))
    simple: dict[str, Callable[[Any], Any]] = {
        "$uuid": uuid.UUID,
        "$datetime": datetime.datetime.fromisoformat,
        "$decimal": decimal.Decimal,
        "$bytes": bytes.fromhex,
        "$float": float,
    }
    if key in simple:
        return simple[key](body)
    if key == "$tuple":
        return tuple(from_json(v) for v in body)
    if key == "$frozendict":
        return cbor2.frozendict({from_json(k): from_json(v) for k, v in body})
    if key == "$map":
        return {from_json(k): from_json(v) for k, v in body}
    if key == "$undefined":
        return cbor2.undefined
    if key == "$simple":
        return cbor2.CBORSimpleValue(body)
    raise ValueError(f"unknown marker {key}")


def from_json(value: Any) -> Any:
    """Inverse of :func:`to_json`."""
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, dict):
        marker = next((k for k in value if k.startswith("$")), None)
        if marker is not None:
            return _from_marker(marker, value[marker], value)
        return {k: from_json(v) for k, v in value.items()}
    return value
