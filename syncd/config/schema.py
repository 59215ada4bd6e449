"""The ``schema:`` key: whether definitions reach the secondaries, and removals too.

``schema: mirror`` (the default) or ``schema: off``; the long form
``schema: {mode: mirror, mirror_removals: true}`` also applies what the primary
REMOVEs (never a table: its records are the archive). YAML reads a bare
``off`` as false and ``on`` as true; both are taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from syncd.config.values import show_value

__all__ = ["SchemaConfig", "TablePolicy", "mode_value", "schema_value"]

Mode = Literal["mirror", "off"]


@dataclass(frozen=True)
class TablePolicy:
    """What of one table's schema is mirrored (:meth:`syncd.config.Config.schema_policy`)."""

    mirror: bool = True
    events: bool = False


class SchemaConfig(BaseModel):
    """How the primary's definitions reach the secondaries."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    mode: Mode = "mirror"
    """``mirror``: tables, fields, indexes (and the analyzers, functions, params they use)
    are defined on every secondary; ``off``: nothing is."""
    mirror_removals: bool = False
    """Apply a definition's removal from the primary to the secondaries too (never a
    table's); by default a removed definition is kept and reported as archived."""

    @property
    def mirrors(self) -> bool:
        """Whether definitions are mirrored at all."""
        return self.mode == "mirror"


def mode_value(value: object) -> object:
    """``mirror``/``off``, from YAML's words or booleans (``off`` reads as false)."""
    if value is True:
        return "mirror"
    if value is False:
        return "off"
    if isinstance(value, str) and value.strip().lower() in ("mirror", "off"):
        return value.strip().lower()
    if value is None:
        return None
    raise ValueError(f'must be "mirror" or "off" (got {show_value(value)})')


def schema_value(value: object) -> object:
    """The ``schema:`` key's short form (a mode) as the long one (a mapping)."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        if "mode" in value:
            return {**value, "mode": mode_value(value["mode"])}
        return value
    return {"mode": mode_value(value)}
