"""The SurrealQL of an idempotent upsert: by record id, by natural key, as a graph edge.

Pure: statement text only. Every form takes its rows from a parameter (never
spliced into the text) and returns nothing (``RETURN NONE``: the answer's size
does not grow with the batch). With a table's ``version`` field, every form
is *conditional*: a record already on the secondary whose version is newer
than the incoming one is left alone, whichever process or path sent the
older one (wrapper, feed, backfill, repair, replay). An incoming record that
lacks the version field does not replace one that has it (SurrealQL orders
NONE below every value).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["build_statement"]

_BY_ID_FOR = "FOR $r IN ${rows} {{ UPSERT $r.id CONTENT $r RETURN NONE }}"
_BY_ID_ONE = "UPSERT ${row}.id CONTENT ${row} RETURN NONE"


def _natural(var: str, table_var: str, fields: Sequence[str], version: str | None) -> str:
    """An upsert by natural key of ``{var}`` = ``{"id": ..., "content": {...}}``.

    The key is looked up first and the record found is written by its id: an
    ``UPSERT <table> ... WHERE <key>`` was measured to invent a new record on
    2.3.10 when run outside a FOR block, and CONTENT carrying the primary's
    id fails on a hit with another id. A record new to the secondary keeps
    the primary's id.
    """
    # One flat variable per key field: 3.x uses an index only for a plain
    # $param (``f = $r.content.f`` was measured as a table scan per row).
    lets = "".join(f"LET $_k{i} = {var}.content.{f}; " for i, f in enumerate(fields))
    where = " AND ".join(f"{f} = $_k{i}" for i, f in enumerate(fields))
    found = "" if version is None else f", {version}"
    newer = "" if version is None else f"ELSE IF $old.{version} > {var}.content.{version} {{}} "
    return (
        f"{lets}LET $old = (SELECT id{found} FROM type::table({table_var}) WHERE {where} "
        "LIMIT 1)[0]; "
        f"IF $old = NONE {{ UPSERT {var}.id CONTENT {var}.content RETURN NONE }} "
        f"{newer}ELSE {{ UPSERT $old.id CONTENT {var}.content RETURN NONE }}"
    )


def _by_id_versioned(var: str, version: str) -> str:
    """An UPSERT by record id, leaving alone a record whose ``version`` is newer."""
    return (
        f"IF (SELECT VALUE {version} FROM ONLY {var}.id) > {var}.{version} {{}} "
        f"ELSE {{ UPSERT {var}.id CONTENT {var} RETURN NONE }}"
    )


def _relation(var: str, version: str | None = None) -> str:
    # UPSERT cannot write a graph edge (measured: "expected a RELATION"); an
    # existing edge is replaced with UPDATE, a new one made with INSERT RELATION.
    update = f"UPDATE {var}.id CONTENT {var} RETURN NONE"
    if version is not None:
        newer = f"(SELECT VALUE {version} FROM ONLY {var}.id) > {var}.{version}"
        update = f"IF {newer} {{}} ELSE {{ {update} }}"
    return (
        f"IF record::exists({var}.id) {{ {update} }} ELSE {{ INSERT RELATION {var} RETURN NONE }}"
    )


def build_statement(
    var: str,
    table_var: str,
    fields: Sequence[str] | None,
    *,
    many: bool,
    edge: bool = False,
    version: str | None = None,
) -> str:
    """The SurrealQL that upserts the rows (``many``) or the row bound to ``$var``.

    ``fields`` selects the natural-key form; ``edge`` the graph-edge form;
    ``version`` makes it conditional. One statement either way, so a batch's
    answer has one result per group.
    """
    # A single row goes through FOR too when the form needs several
    # statements (LET + IF): it must stay one statement, one result.
    rows = f"${var}" if many else f"[${var}]"
    if edge:
        if not many and version is None:
            return _relation(f"${var}")
        return f"FOR $r IN {rows} {{ {_relation('$r', version)} }}"
    if not fields:
        if version is not None:
            return f"FOR $r IN {rows} {{ {_by_id_versioned('$r', version)} }}"
        return _BY_ID_FOR.format(rows=var) if many else _BY_ID_ONE.format(row=var)
    return f"FOR $r IN {rows} {{ {_natural('$r', table_var, fields, version)} }}"
