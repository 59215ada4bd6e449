"""Per-table options under ``tables:`` (key, version, merged-read preference, schema)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from syncd.config.schema import mode_value
from syncd.config.values import FieldName, FieldNames, KeyFields

__all__ = ["TableConfig"]


class TableConfig(BaseModel):
    """Per-table options under ``tables:``."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, populate_by_name=True
    )

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

    # Spelled ``schema`` in YAML; the attribute has a trailing underscore because
    # pydantic's BaseModel has a ``schema`` of its own.
    schema_: Annotated[Literal["mirror", "off"] | None, BeforeValidator(mode_value)] = Field(
        default=None, alias="schema"
    )
    """``off``: this table's definitions are not mirrored; ``None``: the top-level ``schema``."""

    events: bool = False
    """Mirror this table's EVENTs too (off by default: an event would fire a second time
    on the secondary, for the write the primary's event already made)."""

    unmergeable: Literal["raise", "primary"] = "raise"
    """Merged reads of a statement syncd cannot answer like the union: raise
    ``MergeUnsupported`` (``raise``), or accept the primary's answer alone (``primary``,
    logged and counted in ``syncd_unmerged_reads_total``)."""

    @model_validator(mode="after")
    def _newest_needs_a_version(self) -> TableConfig:
        if self.prefer == "newest" and self.version is None:
            raise ValueError("prefer: newest needs a version field (version: updated_at)")
        return self
