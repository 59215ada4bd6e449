"""Per-table options under ``tables:`` (key, version, merged-read preference)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from syncd.config.values import FieldName, FieldNames, KeyFields

__all__ = ["TableConfig"]


class TableConfig(BaseModel):
    """Per-table options under ``tables:``."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    key: KeyFields | None = None
    """Fields that identify "the same record" for dedup and upsert; ``None``: the record id."""

    volatile_fields: FieldNames = []
    """Fields ``verify`` ignores in this table (on top of the global ``volatile_fields``)."""

    version: FieldName | None = None
    """A field that orders a record's versions (e.g. ``updated_at``): a secondary never
    replaces a record with one whose version is older, whatever process or path sent it."""

    prefer: Literal["primary", "newest"] = "primary"
    """Merged reads: the primary's row wins (``primary``), or the one with the newer
    ``version`` (``newest``; the primary on a tie)."""

    unmergeable: Literal["raise", "primary"] = "raise"
    """Merged reads of a statement syncd cannot answer like the union: raise
    ``MergeUnsupported`` (``raise``), or accept the primary's answer alone (``primary``,
    logged and counted in ``syncd_unmerged_reads_total``)."""

    @model_validator(mode="after")
    def _newest_needs_a_version(self) -> TableConfig:
        if self.prefer == "newest" and self.version is None:
            raise ValueError("prefer: newest needs a version field (version: updated_at)")
        return self
