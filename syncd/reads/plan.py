"""What a merged SELECT asks of each database, and which rows of the answers count.

The rules of this file:

1. A merged read answers like one database holding the union of the sources,
   one row per key (the primary's, or the newest with ``prefer: newest``). It
   is computed in three steps: every source is asked for its *candidates*
   (whole rows of the statement's one table that may reach the answer), the
   candidates are deduplicated (:func:`choose`), and the original statement
   is evaluated over the winners by an engine of the primary's generation.
   SurrealQL's own semantics, nothing re-implemented here.
2. Candidates are ``SELECT * FROM <target> WHERE <the statement's WHERE>``:
   full rows, so that projections without ``id``, ``SELECT VALUE`` and
   aggregates deduplicate on the key the projection drops. Bounded shapes
   push their bound down: ``ORDER BY <fields> LIMIT l START s`` asks each
   source for its first ``l + s`` rows, a KNN operator ``<|k,...|>`` for its
   own top k. Anything else asks for every matching row, at most
   ``merge_max_rows`` (more raises).
3. A candidate matched the WHERE *in its source*; the key's winner may be
   another source's row that does not match. So keys a source did not
   return are looked up where a row could beat the candidate (:func:`lookups`),
   and a winner that is not among its own source's candidates is dropped:
   it did not match there, or ranked after that source's bound.
4. A bounded source whose candidates hold fewer winners than the bound
   (its other rows lost the dedup) is asked again for more (:func:`short`).
5. A statement whose answer cannot be reproduced over the union raises
   :class:`~syncd.errors.MergeUnsupported` naming the clause: BM25
   ``search::score`` (corpus-wide statistics), graph traversals, subqueries
   outside ``FROM``, ``FETCH``, several ``FROM`` targets or one that is not
   a table, ``EXPLAIN``, ``VERSION``, ``LET`` of a query.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from syncd.errors import MergeUnsupported
from syncd.keys import canonical
from syncd.reads.merge import field_value, sort_key
from syncd.reads.statements import Statement, select_clauses, split_terms
from syncd.reads.tokens import Token, tokenize

__all__ = [
    "Candidates",
    "Chosen",
    "SelectPlan",
    "choose",
    "lookups",
    "plan",
    "plan_let",
    "plan_select",
    "short",
]


@dataclass(frozen=True, slots=True)
class Candidates:
    """The rows every source is asked for: ``SELECT * FROM target WHERE ...``.

    ``need`` is how many winners each source's candidates must hold for the
    answer to be complete (``LIMIT + START``, or the KNN's k); ``None``: the
    candidates are every matching row, bounded only by ``merge_max_rows``.
    ``complete`` marks candidates that are every row of the table (no WHERE,
    no bound): nothing needs looking up.
    """

    table: str
    target: str
    where: str | None = None
    order: str | None = None
    need: int | None = None
    knn: tuple[int, int] | None = None  # the span of ``k`` or ``k,ef`` in ``where``
    ef: int | None = None
    complete: bool = False
    fields: tuple[str, ...] | None = None
    where_at: int = 0  # where ``where`` starts in the statement's text

    def sql(self, rows: int, keep: Sequence[str] = ()) -> str:
        """The candidates query asking for at most ``rows`` rows.

        With ``fields`` (every name the statement mentions), only those are
        asked for, with ``id`` and ``keep`` (the dedup key's, the version's).
        """
        where = self.where
        if where is not None and self.knn is not None:
            # An HNSW search returns at most ef rows: it grows with k.
            ask = str(rows) if self.ef is None else f"{rows},{max(self.ef, rows)}"
            where = where[: self.knn[0]] + ask + where[self.knn[1] :]
        parts = [f"SELECT {self.projection(keep)} FROM {self.target}"]
        if where is not None:
            parts.append(f"WHERE {where}")
        if self.order is not None:
            parts.append(f"ORDER BY {self.order}")
        parts.append(f"LIMIT {rows}")
        return " ".join(parts)

    def projection(self, keep: Sequence[str] = ()) -> str:
        """What the candidates and lookups ask for: ``*``, or the names the statement
        mentions with ``id`` and ``keep``."""
        if self.fields is None:
            return "*"
        names = dict.fromkeys(["id", *keep, *self.fields])
        return ", ".join("`" + n.replace("`", "\\`") + "`" for n in names)

    def first_ask(self, max_rows: int) -> int:
        """How many rows to ask each source for first."""
        return max_rows + 1 if self.need is None else min(max(self.need, 1), max_rows + 1)


@dataclass(frozen=True, slots=True)
class SelectPlan:
    """A SELECT's merge plan: its candidates (``None``: it reads no table), and what the
    scratch engine runs over the winners.

    Every winner matched the WHERE in its own source (rule 3), so the scratch
    text replaces the WHERE that chose the candidates with ``WHERE true``, unless it holds a KNN
    operator (the top k is chosen again over the union) or the statement
    calls ``search::`` functions (they read the match): then the indexes
    named by ``vector_index``/``fulltext_index`` are defined in the scratch.
    """

    statement: Statement
    candidates: Candidates | None
    text: str = ""
    vector_index: bool = False
    fulltext_index: bool = False
    walked: tuple[str, ...] = ()  # fields the statement walks into (``author.name``)

    def brute_force(self, distance: str) -> str:
        """The scratch text with the KNN operator's ``k,ef`` made ``k,<distance>``: an exact
        search, for an index whose own distances are exact (2.x ``TYPE F64``)."""
        c = self.candidates
        if c is None or c.knn is None or c.need is None:
            return self.text
        start, end = c.where_at + c.knn[0], c.where_at + c.knn[1]
        return self.text[:start] + f"{c.need},{distance}" + self.text[end:]

    def follows_link(self, rows: Sequence[Mapping[str, Any]]) -> str | None:
        """A walked field that holds a record link in ``rows``: the scratch engine cannot
        follow it to the linked record, which lives in another table."""
        for row in rows:
            for name in self.walked:
                value = row.get(name)
                values = value if isinstance(value, list) else [value]
                if any(hasattr(v, "table_name") and hasattr(v, "id") for v in values):
                    return name
        return None


def plan_let(statement: Statement) -> None:
    """Raise when a ``LET`` cannot run beside a merged SELECT (it reads a table)."""
    if any(t.word in ("SELECT", "FROM") for t in tokenize(statement.text)):
        raise MergeUnsupported("LET of a query")


def plan(statement: Statement, vars: Mapping[str, Any] | None = None) -> SelectPlan | None:
    """A SELECT's plan, or None for a LET (checked); raises :class:`MergeUnsupported`."""
    if statement.kind == "LET":
        plan_let(statement)
        return None
    return plan_select(statement, vars)


def plan_select(statement: Statement, vars: Mapping[str, Any] | None = None) -> SelectPlan:
    """The candidates of a read-only SELECT; raises :class:`MergeUnsupported`."""
    toks = tokenize(statement.text)
    _refuse_anywhere(toks)
    found = _level(statement.text, toks, dict(vars or {}), 0)
    if found is None:
        return SelectPlan(statement, None, statement.text)
    candidates, where_span = found
    search = any(
        t.word == "SEARCH" and i + 1 < len(toks) and toks[i + 1].text == "::"
        for i, t in enumerate(toks)
    )
    text = statement.text
    if candidates.knn is None and not search and where_span is not None:
        # ``WHERE true``, not nothing: 2.x counts an empty table as 0 rows
        # without a WHERE (a count fast path), and as no rows with one.
        text = text[: where_span[0]] + "WHERE true" + text[where_span[1] :]
    if not _mentions_whole_rows(toks):
        candidates = replace(candidates, fields=_names(toks))
    walked = tuple(
        dict.fromkeys(
            t.text
            for i, t in enumerate(toks[:-1])
            if t.kind == "word"
            and toks[i + 1].text == "."
            and (i == 0 or toks[i - 1].text not in (".", "::"))
            and t.text != "id"
        )
    )
    return SelectPlan(statement, candidates, text, candidates.knn is not None, search, walked)


def _mentions_whole_rows(toks: list[Token]) -> bool:
    """Whether the statement may read fields it does not name (``*``, ``$this``, ``$parent``)."""
    return any(t.text == "*" or t.text.lower() in ("$this", "$parent") for t in toks)


def _names(toks: list[Token]) -> tuple[str, ...]:
    """Every name that may be a top-level field: words not part of a function or path.

    Keywords and aliases come along; asking for a field that no row has costs nothing.
    """
    names: list[str] = []
    for i, tok in enumerate(toks):
        if tok.kind not in ("word", "ident"):
            continue
        before = toks[i - 1].text if i else ""
        after = toks[i + 1].text if i + 1 < len(toks) else ""
        if before in (".", "::") or after in ("(", "::"):
            continue
        names.append(tok.text[1:-1] if tok.kind == "ident" else tok.text)
    return tuple(dict.fromkeys(names))


def _refuse_anywhere(toks: list[Token]) -> None:
    for i, tok in enumerate(toks):
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        after = toks[i + 2] if i + 2 < len(toks) else None
        score = after is not None and after.word == "SCORE"
        if tok.word == "SEARCH" and nxt is not None and nxt.text == "::" and score:
            raise MergeUnsupported(
                "search::score", "BM25 scores depend on each database's own corpus"
            )
        if nxt is not None and nxt.start == tok.end and tok.text + nxt.text in ("->", "<-"):
            raise MergeUnsupported("graph traversal")


def _level(
    sql: str, toks: list[Token], vars: dict[str, Any], offset: int
) -> tuple[Candidates, tuple[int, int] | None] | None:
    """The candidates of one SELECT level (a FROM subquery is the next level down), and
    the span of its ``WHERE`` clause in the statement (``sql`` starts at ``offset`` in it)."""
    clauses = select_clauses(toks)
    for clause in ("FETCH", "EXPLAIN", "VERSION"):
        if clause in clauses:
            raise MergeUnsupported(clause)
    from_ = clauses.get("FROM", [])
    for name, body in clauses.items():
        if name != "FROM" and any(t.word == "SELECT" for t in body):
            raise MergeUnsupported("subquery outside FROM")
    if not from_:
        return None  # SELECT of values: it reads no table
    if from_[0].word == "ONLY":
        from_ = from_[1:]
    targets = split_terms(from_)
    if len(targets) != 1:
        raise MergeUnsupported("FROM with several targets")
    target = targets[0]
    head = target[0]
    if head.text == "(" and len(target) > 2 and target[1].word == "SELECT":
        # The inner level's bounds hold (its KNN, its ORDER/LIMIT); the outer
        # clauses are evaluated over the winners by the scratch engine.
        inner = sql[head.end : target[-1].start]
        return _level(inner, tokenize(inner), vars, offset + head.end)
    table, target_text = _target(sql, target, vars)
    where_toks = clauses.get("WHERE", [])
    where = sql[where_toks[0].start : where_toks[-1].end] if where_toks else None
    span = None
    if where_toks:
        keyword = toks[toks.index(where_toks[0]) - 1]
        span = (offset + keyword.start, offset + where_toks[-1].end)
    knn = _knn(where_toks, where_toks[0].start if where_toks else 0)
    plain = Candidates(
        table,
        target_text,
        where,
        complete=where is None and ":" not in target_text,
        where_at=offset + where_toks[0].start if where_toks else 0,
    )
    if knn is not None:
        k, k_span, ef = knn
        return replace(plain, need=k, knn=k_span, ef=ef, complete=False), span
    bound = _bound(sql, clauses, vars) if not _groups(clauses, sql) else None
    if bound is None:
        return plain, span
    limit, order = bound
    return replace(plain, need=limit, order=order, complete=False), span


def _target(sql: str, target: list[Token], vars: Mapping[str, Any]) -> tuple[str, str]:
    """(table, FROM text) of a table, record id or range, or ``type::table(...)`` target."""
    head = target[0]
    text = sql[head.start : target[-1].end]
    if head.kind in ("word", "ident") and (len(target) == 1 or target[1].text == ":"):
        name = head.text[1:-1] if head.kind == "ident" else head.text
        if head.word != "TYPE":
            return name, text
    words = [t.text.lower() for t in target]
    if words[:4] == ["type", "::", "table", "("] and len(target) == 6 and words[5] == ")":
        arg = target[4]
        value: Any = None
        if arg.kind == "param":
            value = vars.get(arg.text[1:])
        elif arg.kind == "string":
            value = arg.text[1:-1]
        if isinstance(value, str) and value:
            return value, text
    raise MergeUnsupported("FROM target", f"{text!r} is not a table, record id or subquery")


def _knn(where: list[Token], offset: int) -> tuple[int, tuple[int, int], int | None] | None:
    """A ``<|k...|>`` operator in the WHERE: k, the span of ``k`` or ``k,ef`` (relative to
    the WHERE) and ef (None: no HNSW ef, e.g. ``<|k,COSINE|>``)."""
    found: tuple[int, tuple[int, int], int | None] | None = None
    for i in range(len(where) - 2):
        a, b, k = where[i], where[i + 1], where[i + 2]
        if a.text == "<" and b.text == "|" and b.start == a.end:
            if found is not None:
                raise MergeUnsupported("several KNN operators")
            if k.kind != "number" or not k.text.isdigit():
                raise MergeUnsupported("KNN operator", "k must be an integer literal")
            end, ef = k.end, None
            if i + 4 < len(where) and where[i + 3].text == ",":
                e = where[i + 4]
                if e.kind == "number" and e.text.isdigit():
                    end, ef = e.end, int(e.text)
            found = int(k.text), (k.start - offset, end - offset), ef
    return found


def _groups(clauses: Mapping[str, list[Token]], sql: str) -> bool:
    """Whether rows are grouped, split or aggregated (then no bound can be pushed down)."""
    if "GROUP" in clauses or "SPLIT" in clauses:
        return True
    projection = clauses.get("SELECT", [])
    for i, tok in enumerate(projection[:-1]):
        nxt = projection[i + 1].text
        if tok.word == "COUNT" and nxt == "(":
            return True
        if tok.word in ("MATH", "ARRAY") and nxt == "::":
            return True
    return False


def _bound(
    sql: str, clauses: Mapping[str, list[Token]], vars: Mapping[str, Any]
) -> tuple[int, str | None] | None:
    """``(LIMIT + START, ORDER BY text)`` when the bound can be pushed down to each source.

    Only when every ORDER BY term is a plain field that the projection keeps
    as it is (``*``, or the field itself): then a source orders its own rows
    exactly as the statement orders the union's.
    """
    limit = _count(sql, clauses.get("LIMIT", []), vars)
    if limit is None:
        return None
    start = _count(sql, clauses.get("START", []), vars) if "START" in clauses else 0
    if start is None:
        return None
    order = clauses.get("ORDER", [])
    if order and order[0].word == "BY":
        order = order[1:]
    if not order:
        return limit + start, None
    projection = clauses.get("SELECT", [])
    if projection and projection[0].word == "VALUE":
        projection = projection[1:]  # ``SELECT VALUE n ... ORDER BY n`` orders by n too
    kept = {_path(term) for term in split_terms(projection)}
    for term in split_terms(order):
        if term[-1].word in ("ASC", "ASCENDING", "DESC", "DESCENDING"):
            term = term[:-1]
        path = _path(term)
        if path is None or (path not in kept and "*" not in kept):
            return None
    return limit + start, sql[order[0].start : order[-1].end]


def _path(term: list[Token]) -> str | None:
    """``a.b`` for a term of names joined by dots, ``*`` for a star, else None."""
    if len(term) == 1 and term[0].text == "*":
        return "*"
    names, dots = term[0::2], term[1::2]
    if len(term) % 2 == 0 or any(d.text != "." for d in dots):
        return None
    if any(t.kind != "word" for t in names):
        return None
    return ".".join(t.text for t in names)


def _count(sql: str, body: list[Token], vars: Mapping[str, Any]) -> int | None:
    """A LIMIT/START operand's value: an integer literal or a parameter holding one."""
    if body and body[0].word in ("BY", "AT"):
        body = body[1:]
    if len(body) != 1:
        return None
    tok = body[0]
    if tok.kind == "number" and tok.text.isdigit():
        return int(tok.text)
    if tok.kind == "param":
        value = vars.get(tok.text[1:])
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


# -- choosing the winners ----------------------------------------------------

KeyFunc = Callable[[Mapping[str, Any]], str | None]
VersionFunc = Callable[[Mapping[str, Any]], str | None]


@dataclass(frozen=True, slots=True)
class Chosen:
    """The winners to evaluate the statement over, and how many of each source's
    candidates are winners or copies of one (what rule 4 counts)."""

    rows: list[Mapping[str, Any]]
    per_source: list[int]


def lookups(
    candidates: Sequence[Sequence[Mapping[str, Any]]],
    key: KeyFunc,
    *,
    newest: bool,
) -> list[list[Mapping[str, Any]]]:
    """For each source (precedence order), the candidate rows whose key it must be asked for.

    A source is asked for a key it did not return when its row could win:
    it outranks every source that returned the key, or the table prefers the
    newest row (then any source may hold a newer one). One row per key is
    given (the first seen), to read its ``id`` or natural-key fields from.
    """
    first: dict[str, tuple[int, Mapping[str, Any]]] = {}
    returned: list[set[str]] = []
    for rank, rows in enumerate(candidates):
        keys: set[str] = set()
        for row in rows:
            k = key(row)
            if k is None:
                continue
            keys.add(k)
            first.setdefault(k, (rank, row))
        returned.append(keys)
    asks: list[list[Mapping[str, Any]]] = []
    for rank in range(len(candidates)):
        asks.append(
            [
                row
                for k, (best, row) in first.items()
                if k not in returned[rank] and (newest or rank < best)
            ]
        )
    return asks


def choose(
    candidates: Sequence[Sequence[Mapping[str, Any]]],
    found: Sequence[Sequence[Mapping[str, Any]]],
    key: KeyFunc,
    newest: VersionFunc | None = None,
) -> Chosen:
    """The union's rows among the candidates: one per key, the winner, if it was a candidate.

    ``candidates[i]`` and ``found[i]`` (the rows looked up) are source i's,
    sources in precedence order. The winner of a key is the highest-precedence
    row, or with ``newest`` the row whose version field is greatest (the
    higher precedence on a tie). A winner that is not one of its own source's
    candidates is dropped (rule 3); rows without a key are all kept.
    """
    best: dict[str, tuple[int, bool, Mapping[str, Any]]] = {}
    order: list[str] = []
    keyless: list[tuple[int, Mapping[str, Any]]] = []
    for rank in range(len(candidates)):
        extra = found[rank] if rank < len(found) else ()
        for row, is_candidate in [
            *((r, True) for r in candidates[rank]),
            *((r, False) for r in extra),
        ]:
            k = key(row)
            if k is None:
                if is_candidate:
                    keyless.append((rank, row))
                continue
            held = best.get(k)
            if held is None:
                best[k] = (rank, is_candidate, row)
                order.append(k)
                continue
            if held[0] == rank:
                continue  # within one source the first row stays
            field = newest(row) if newest is not None else None
            if field is not None and _newer(row, held[2], field):
                best[k] = (rank, is_candidate, row)
    rows: list[Mapping[str, Any]] = []
    for k in order:
        rank, is_candidate, row = best[k]
        if is_candidate:
            rows.append(row)
    rows.extend(row for _, row in keyless)
    # A source's candidate counts as a winner where it won, or where the
    # winner is a candidate equal to it (a replicated copy): it then ranks
    # exactly where the candidate does (rule 4).
    per_source = [0] * len(candidates)
    for rank, source_rows in enumerate(candidates):
        for row in source_rows:
            k = key(row)
            if k is None:
                per_source[rank] += 1
                continue
            _, is_candidate, winner = best[k]
            if is_candidate and (winner is row or canonical(winner) == canonical(row)):
                per_source[rank] += 1
    return Chosen(rows, per_source)


def _newer(row: Mapping[str, Any], than: Mapping[str, Any], field: str) -> bool:
    return sort_key(field_value(row, field)) > sort_key(field_value(than, field))


def short(plan: Candidates, asked: Sequence[int], got: Sequence[int], chosen: Chosen) -> list[int]:
    """The sources to ask again (rule 4): bounded, not exhausted, too few winners."""
    if plan.need is None:
        return []
    return [
        i
        for i, (n, g) in enumerate(zip(asked, got, strict=True))
        if g >= n and chosen.per_source[i] < plan.need
    ]
