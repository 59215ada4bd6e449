"""The SDK's values (what an application's connection returns) as syncd's exact values.

The wrapper captures the records the application's SDK connection decoded;
everything downstream (the spool, the secondary's frames, the dead-letter
file) speaks :mod:`syncd.surreal.codec`. The conversion is exact for what the
SDK kept: record ids, tables, ranges, geometries, durations, decimals, uuids,
bytes. Two things the SDK's decoder already lost cannot be restored: a
datetime's nanoseconds (it keeps microseconds) and NULL versus NONE (both are
``None``; in a record a NONE field is absent, so ``None`` is NULL here).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from surrealdb.data.types import geometry as sdk_geometry
from surrealdb.data.types.datetime import Datetime as SdkDatetime
from surrealdb.data.types.duration import Duration as SdkDuration
from surrealdb.data.types.range import BoundExcluded as SdkBoundExcluded
from surrealdb.data.types.range import BoundIncluded as SdkBoundIncluded
from surrealdb.data.types.range import Range as SdkRange
from surrealdb.data.types.record_id import RecordID as SdkRecordID
from surrealdb.data.types.table import Table as SdkTable

from syncd.surreal import values as v

__all__ = ["SDK_TYPES", "SdkSession", "from_sdk", "to_sdk"]

_NANOS = 1_000_000_000


def from_sdk(value: Any) -> Any:
    """A copy of ``value`` with every SDK type replaced by syncd's; containers copied."""
    kind = type(value)
    if kind is dict:
        return {k: from_sdk(item) for k, item in value.items()}
    if kind is list or kind is tuple:
        return [from_sdk(item) for item in value]
    if kind in _SCALARS or value is None:
        return value
    convert = _CONVERTERS.get(kind)
    if convert is not None:
        return convert(value)
    if isinstance(value, _dt.datetime):
        return _datetime(value)
    return value  # anything else goes to the codec as it is (which refuses what it cannot hold)


def _datetime(value: _dt.datetime) -> v.Datetime:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=_dt.UTC)
    return v.Datetime.from_datetime(aware)


def _duration(value: SdkDuration) -> v.Duration:
    seconds, nanos = divmod(int(value.elapsed), _NANOS)
    return v.Duration(seconds, nanos)


def _bound(value: Any) -> Any:
    if isinstance(value, SdkBoundIncluded):
        return v.BoundIncluded(from_sdk(value.value))
    if isinstance(value, SdkBoundExcluded):
        return v.BoundExcluded(from_sdk(value.value))
    return None if value is None else from_sdk(value)


def _point(value: Any) -> v.GeometryPoint:
    return v.GeometryPoint(value.longitude, value.latitude)


def _line(value: Any) -> v.GeometryLine:
    return v.GeometryLine(tuple(_point(p) for p in value.geometry_points))


def _polygon(value: Any) -> v.GeometryPolygon:
    return v.GeometryPolygon(tuple(_line(line) for line in value.geometry_lines))


def _geometry(value: Any) -> Any:
    return _CONVERTERS[type(value)](value)


_SCALARS = frozenset({str, int, float, bool, bytes})
_CONVERTERS: dict[type, Any] = {
    SdkRecordID: lambda value: v.RecordID(value.table_name, from_sdk(value.id)),
    SdkTable: lambda value: v.Table(value.table_name),
    SdkRange: lambda value: v.Range(_bound(value.begin), _bound(value.end)),
    SdkBoundIncluded: _bound,
    SdkBoundExcluded: _bound,
    SdkDuration: _duration,
    SdkDatetime: lambda value: v.Datetime.from_iso(value.dt),
    sdk_geometry.GeometryPoint: _point,
    sdk_geometry.GeometryLine: _line,
    sdk_geometry.GeometryPolygon: _polygon,
    sdk_geometry.GeometryMultiPoint: lambda value: v.GeometryMultiPoint(
        tuple(_point(p) for p in value.geometry_points)
    ),
    sdk_geometry.GeometryMultiLine: lambda value: v.GeometryMultiLine(
        tuple(_line(line) for line in value.geometry_lines)
    ),
    sdk_geometry.GeometryMultiPolygon: lambda value: v.GeometryMultiPolygon(
        tuple(_polygon(p) for p in value.geometry_polygons)
    ),
    sdk_geometry.GeometryCollection: lambda value: v.GeometryCollection(
        tuple(_geometry(g) for g in value.geometries)
    ),
}

#: The SDK's value classes: the codec encodes them as their syncd equivalents.
SDK_TYPES: tuple[type, ...] = tuple(_CONVERTERS)


def to_sdk(value: Any) -> Any:
    """``value`` with syncd's types replaced by the SDK's, for parameters sent through it.

    Lossy where the SDK is (a datetime keeps microseconds, NONE becomes None).
    """
    kind = type(value)
    if isinstance(value, Mapping):  # frozen maps inside record ids too
        return {k: to_sdk(item) for k, item in value.items()}
    if kind is list or kind is tuple:
        return [to_sdk(item) for item in value]
    if kind is v.RecordID:
        return SdkRecordID(value.table, to_sdk(value.id))
    if kind is v.Table:
        return SdkTable(value.name)
    if kind is v.Datetime:
        return value.to_datetime()
    if kind is v.Duration:
        return SdkDuration(value.total_nanoseconds)
    if value is v.NONE:
        return None
    if kind is v.Range:
        return SdkRange(to_sdk(value.begin), to_sdk(value.end))
    if kind is v.BoundIncluded:
        return SdkBoundIncluded(to_sdk(value.value))
    if kind is v.BoundExcluded:
        return SdkBoundExcluded(to_sdk(value.value))
    return value


class SdkSession:
    """An application's SDK connection seen as syncd sees its own: syncd's values in and out.

    For the tools (verify, replay) when handed a connection the application
    holds (the demo's embedded primary) instead of one syncd opened.
    """

    def __init__(self, conn: Any) -> None:
        """Wrap ``conn`` (connected, signed in, namespace and database chosen)."""
        self._conn = conn

    async def query(self, sql: str, vars: dict[str, Any] | None = None) -> Any:
        """``query`` through the SDK, parameters and answer converted."""
        return from_sdk(await self._conn.query(sql, to_sdk(vars or {})))

    async def query_raw(self, sql: str, vars: dict[str, Any] | None = None) -> Any:
        """``query_raw`` through the SDK, parameters and answer converted."""
        return from_sdk(await self._conn.query_raw(sql, to_sdk(vars or {})))

    async def select(self, thing: Any) -> Any:
        """``select`` through the SDK, converted."""
        return from_sdk(await self._conn.select(to_sdk(thing)))

    async def version(self) -> str:
        """The server's version; the SDK's embedded engine (no ``version``) is 2.x."""
        ask = getattr(self._conn, "version", None)
        return str(await ask()) if ask is not None else "surrealdb-2.0.0"
