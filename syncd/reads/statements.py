"""Just enough SurrealQL understanding to route, capture and merge a query.

The rules of this file:

1. Text is tokenized, never matched with regexes: string literals ('...',
   "...", with backslash escapes and prefixes like ``r'..'``), identifiers in
   backticks or ⟨⟩, and comments (``-- ``, ``//``, ``#``, ``/* */``) are
   opaque, and every token knows its bracket depth. Only a ``;`` at depth 0
   ends a statement, so blocks (``FOR``/``IF``/``{ ... }``) and strings never
   split. Comments are dropped from the edges of a statement's text.
2. A statement's clauses are found among its depth-0 tokens only, so a
   subquery's ``ORDER BY`` or ``RETURN`` never counts for the outer one.
3. When in doubt, say "write": anything we cannot prove read-only is not
   read-only (``is_write`` is conservative; the cost is a lost merge, never
   a missed capture or a write sent to the secondary).
4. Nothing here validates SurrealQL. Malformed text gives a best-effort
   answer and the engine reports the real error.

``query_raw`` alignment (checked against the embedded engine, surrealdb
2.0.0; ``tests/test_statements_engine.py`` keeps it honest):

* Every top-level statement yields one ``result`` entry, including ``LET``,
  ``USE``, ``DEFINE``, ``IF``/``FOR`` (``None``), ``RETURN``, ``THROW``
  (an ``ERR`` entry) and a stray ``COMMIT``/``CANCEL`` outside a
  transaction (an ``ERR`` entry). Comments and empty statements yield none.
* ``BEGIN`` and the ``COMMIT``/``CANCEL`` closing it yield no entry; the
  statements between yield one each (``ERR`` entries when the transaction
  is cancelled, fails, or is never committed). A second ``BEGIN`` inside a
  transaction fails it and yields an entry of its own.
* A top-level ``RETURN`` inside a transaction ends it early and the whole
  transaction collapses into one entry holding the returned value; later
  statements in it do not run. This happens only when the ``RETURN`` runs
  before anything fails; a ``RETURN`` reached inside a block (``IF c {
  RETURN x }``) collapses it too, which no static reading can predict. So
  callers must check ``len(result)`` against the entries ``result_index``
  expects and treat a mismatch as "alignment unknown".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from syncd.reads.merge import OrderTerm
from syncd.reads.tokens import Token, split_tokens

_KINDS_WORDS = (
    "SELECT CREATE UPSERT UPDATE INSERT RELATE DELETE LET RETURN BEGIN COMMIT CANCEL "
    "DEFINE IF FOR USE INFO LIVE KILL REMOVE ALTER SHOW SLEEP THROW BREAK CONTINUE "
    "OPTION REBUILD ACCESS"
)
KINDS = frozenset(_KINDS_WORDS.split())
"""Statement kinds recognised by their first keyword; anything else is ``OTHER``."""

WRITE_KINDS = frozenset({"CREATE", "UPSERT", "UPDATE", "INSERT", "RELATE", "DELETE"})
"""Statements that write records."""

CAPTURE_KINDS = frozenset({"CREATE", "UPSERT", "UPDATE", "INSERT", "RELATE"})
"""Write statements whose default result is the records after the write."""

# Statements that cannot write records whatever words they contain (a
# ``DEFINE EVENT ... THEN (CREATE ...)`` defines a write, it does not do one).
_NEVER_WRITE_WORDS = (
    "BEGIN COMMIT CANCEL DEFINE REMOVE ALTER REBUILD USE INFO SHOW KILL LIVE OPTION "
    "ACCESS SLEEP BREAK CONTINUE"
)
_NEVER_WRITE = frozenset(_NEVER_WRITE_WORDS.split())
_RETURN_MODES = frozenset({"NONE", "BEFORE", "AFTER", "DIFF", "VALUE"})
_SELECT_CLAUSES_WORDS = (
    "OMIT FROM WITH WHERE SPLIT GROUP ORDER LIMIT START FETCH TIMEOUT PARALLEL "
    "TEMPFILES EXPLAIN VERSION"
)
_SELECT_CLAUSES = frozenset(_SELECT_CLAUSES_WORDS.split())
# The word that may glue a clause keyword to its operand (``ORDER BY``,
# ``FROM ONLY``, ``SELECT VALUE``); for FROM and SELECT it changes the result
# shape, so it is reported.
_CONNECTORS = {
    "SELECT": "VALUE",
    "FROM": "ONLY",
    "ORDER": "BY",
    "GROUP": "BY",
    "SPLIT": "ON",
    "LIMIT": "BY",
    "START": "AT",
}
# Clauses that take no operand, so the next clause word always opens a clause.
_BARE_CLAUSES = frozenset({"PARALLEL", "TEMPFILES", "EXPLAIN"})
# A clause body ending in one of these is mid-expression: the next word,
# even a clause keyword, is its operand (``WHERE a = limit``, ``AND start``,
# ``AS limit``, ``a.start``). ``*`` and ``?`` are complete (``SELECT *``,
# ``->edge->?``), and so is a range's ``..`` (``FROM t:1.. LIMIT 5``).
_OPERATORS = frozenset({"=", ",", "+", "-", "/", "<", ">", "!", "&", "|", "~", "@", ":", "::", "."})
_WORD_OPERATORS_WORDS = (
    "AS AND OR IS NOT IN INSIDE OUTSIDE INTERSECTS CONTAINS CONTAINSNOT CONTAINSALL "
    "CONTAINSANY CONTAINSNONE ALLINSIDE ANYINSIDE NONEINSIDE"
)
_WORD_OPERATORS = frozenset(_WORD_OPERATORS_WORDS.split())
_DIRECTIONS = {"ASC": False, "ASCENDING": False, "DESC": True, "DESCENDING": True}


@dataclass(frozen=True, slots=True)
class Statement:
    """One top-level statement and what syncd needs to know about it.

    ``text`` is the statement without its ``;`` or edge comments; ``kind``
    its first keyword upper-cased (``OTHER`` when unknown, e.g. ``(...)``).
    ``returns`` is a write's top-level RETURN mode: NONE, BEFORE, AFTER,
    DIFF, VALUE, or FIELDS for a projection. ``is_write`` is conservative:
    any write keyword in a block or subquery, or a ``fn::`` call, counts.
    ``captures_records`` means the result rows are the full records after
    the write (CREATE/UPSERT/UPDATE/INSERT/RELATE returning AFTER).

    The SELECT-only fields are empty for other kinds. ``only`` and ``value``
    mark ``FROM ONLY`` (one object, not a list) and ``SELECT VALUE`` (no
    rows to key), ``explain`` an ``EXPLAIN`` plan. ``limit``/``start`` are
    set when the clause is an integer literal; otherwise its raw text (a
    ``$param`` usually, to be resolved from the query's variables) is in
    ``limit_param``/``start_param``. ``order_by`` holds the leading ORDER BY
    terms that are plain field paths; ``order_exact`` is False when a term
    was left out (an expression) or approximated (``COLLATE``/``NUMERIC``).
    ``ORDER BY rand()`` yields no term and stays exact: any order is a valid
    random order.
    """

    text: str
    kind: str
    returns: str | None = None
    is_write: bool = False
    captures_records: bool = False
    order_by: tuple[OrderTerm, ...] = ()
    order_exact: bool = True
    limit: int | None = None
    limit_param: str | None = None
    start: int | None = None
    start_param: str | None = None
    from_tables: tuple[str, ...] = ()
    only: bool = False
    value: bool = False
    group_or_split: bool = False
    fetch: bool = False
    explain: bool = False


def parse(sql: str) -> list[Statement]:
    """Split ``sql`` and describe every statement."""
    return [_describe(sql, toks) for toks in split_tokens(sql)]


def is_read_only(statements: Sequence[Statement]) -> bool:
    """True when there is at least one statement and every one is a plain SELECT.

    ``LET`` (even of a SELECT) and everything else count as not read-only.
    """
    return bool(statements) and all(s.kind == "SELECT" and not s.is_write for s in statements)


def result_index(statements: Sequence[Statement]) -> list[int | None]:
    """Where each statement's entry sits in ``query_raw``'s ``result`` list (None: no entry).

    See the module docstring for the rules; compare the number of non-None
    indices with ``len(result)`` before trusting the mapping.
    """
    index: list[int | None] = [None] * len(statements)
    entry, i = 0, 0
    while i < len(statements):
        if statements[i].kind != "BEGIN":
            index[i], entry, i = entry, entry + 1, i + 1
            continue
        end = i + 1
        while end < len(statements) and statements[end].kind not in ("COMMIT", "CANCEL"):
            end += 1
        entry = _index_transaction(statements, range(i + 1, end), index, entry)
        i = end + 1
    return index


def _index_transaction(
    statements: Sequence[Statement], body: range, index: list[int | None], entry: int
) -> int:
    """Fill ``index`` for one transaction's body; return the next entry number."""
    for i in body:
        if statements[i].kind == "BEGIN":
            break  # a nested BEGIN fails the transaction before any RETURN runs
        if statements[i].kind == "RETURN":
            index[i] = entry  # the transaction collapses into this one entry
            return entry + 1
    for i in body:
        index[i], entry = entry, entry + 1
    return entry


def _describe(sql: str, toks: list[Token]) -> Statement:
    """Build the Statement for one statement's tokens."""
    text = sql[toks[0].start : toks[-1].end]
    kind = toks[0].word if toks[0].word in KINDS else "OTHER"
    write = kind in WRITE_KINDS or (kind not in _NEVER_WRITE and _may_write(toks))
    if kind == "SELECT":
        return _describe_select(sql, text, toks, write)
    returns = _return_clause(toks) if kind in WRITE_KINDS else None
    captures = kind in CAPTURE_KINDS and returns in (None, "AFTER")
    return Statement(text, kind, returns, write, captures)


def _may_write(toks: list[Token]) -> bool:
    """Whether a write keyword or a custom function call appears anywhere (conservative).

    ``fn::`` functions may write, and we cannot see inside them.
    """
    for i, tok in enumerate(toks):
        before = toks[i - 1].text if i else ""
        after = toks[i + 1].text if i + 1 < len(toks) else ""
        if before in (".", "::") or (after in (":", "::") and tok.word != "FN"):
            continue  # a field, an object key, a record id's table, a builtin
        if tok.word in WRITE_KINDS or (tok.word == "FN" and after == "::"):
            return True
    return False


def _return_clause(toks: list[Token]) -> str | None:
    """The mode of a write statement's top-level RETURN clause, if any."""
    top = [t for t in toks[1:] if t.depth == 0]
    for i, tok in enumerate(top):
        following = top[i + 1] if i + 1 < len(top) else None
        # ``SET return = 1`` assigns a field named return; it is no clause.
        if tok.word != "RETURN" or following is None or following.text in ("=", "+", "-"):
            continue
        return following.word if following.word in _RETURN_MODES else "FIELDS"
    return None


def _clauses(toks: list[Token]) -> dict[str, list[Token]]:
    """A SELECT's tokens grouped under the clause keyword that introduces them.

    The projection is under "SELECT". A clause word only opens a clause when
    the current one is not still waiting for an operand, so a field named
    like a keyword (``ORDER BY start``, ``WHERE a = limit``) stays a field.
    """
    clauses: dict[str, list[Token]] = {"SELECT": []}
    current = "SELECT"
    for tok in toks[1:]:
        opens = tok.depth == 0 and tok.word in _SELECT_CLAUSES
        if opens and not _wants_operand(current, clauses[current]):
            current = tok.word
            clauses.setdefault(current, [])
        else:
            clauses[current].append(tok)
    return clauses


def select_clauses(toks: list[Token]) -> dict[str, list[Token]]:
    """A SELECT's tokens (its keyword first) grouped by clause; the projection under "SELECT"."""
    return _clauses(toks)


def split_terms(body: list[Token]) -> list[list[Token]]:
    """A clause operand's depth-0 terms (split at depth-0 commas), with their nested tokens.

    Unlike the depth-0-only terms used for ORDER BY, a term keeps the tokens
    inside its brackets, so a subquery or a call stays whole.
    """
    base = min((t.depth for t in body), default=0)
    terms: list[list[Token]] = [[]]
    for tok in body:
        if tok.depth == base and tok.text == ",":
            terms.append([])
        else:
            terms[-1].append(tok)
    return [t for t in terms if t]


def _wants_operand(clause: str, body: list[Token]) -> bool:
    """Whether a clause body so far ends where an operand must follow."""
    if clause in _BARE_CLAUSES:
        return False
    top = [t for t in _operand(clause, body)[1] if t.depth == 0]
    if not top:
        return True
    last, before = top[-1], top[-2].text if len(top) > 1 else ""
    if last.text == "." and before == ".":
        return False
    return last.word in _WORD_OPERATORS or (last.kind == "punct" and last.text in _OPERATORS)


def _operand(clause: str, body: list[Token]) -> tuple[bool, list[Token]]:
    """Split a clause's leading connector word (``ORDER BY``, ``FROM ONLY``) from its operand."""
    if body and body[0].word == _CONNECTORS.get(clause):
        return True, body[1:]
    return False, body


def _describe_select(sql: str, text: str, toks: list[Token], write: bool) -> Statement:
    """Build the Statement for a SELECT."""
    c = _clauses(toks)
    value, projection = _operand("SELECT", c["SELECT"])
    only, targets = _operand("FROM", c.get("FROM", []))
    order_by, order_exact = _order_terms(_operand("ORDER", c.get("ORDER", []))[1])
    limit, limit_param = _count(sql, _operand("LIMIT", c.get("LIMIT", []))[1])
    start, start_param = _count(sql, _operand("START", c.get("START", []))[1])
    return Statement(
        text,
        "SELECT",
        is_write=write,
        order_by=order_by,
        order_exact=order_exact,
        limit=limit,
        limit_param=limit_param,
        start=start,
        start_param=start_param,
        from_tables=_tables(targets),
        only=only,
        value=value,
        group_or_split="GROUP" in c or "SPLIT" in c or _aggregates(projection),
        fetch="FETCH" in c,
        explain="EXPLAIN" in c,
    )


def _aggregates(projection: list[Token]) -> bool:
    """Whether the projection calls ``count()``, a ``math::`` or an array grouping function."""
    for i, tok in enumerate(projection[:-1]):
        nxt = projection[i + 1].text
        if (tok.word == "COUNT" and nxt == "(") or (tok.word == "MATH" and nxt == "::"):
            return True
        after = projection[i + 2].word if i + 2 < len(projection) else ""
        if tok.word == "ARRAY" and nxt == "::" and after in ("GROUP", "DISTINCT"):
            return True
    return False


def _terms(body: list[Token]) -> list[list[Token]]:
    """A clause operand's depth-0 tokens split at depth-0 commas."""
    terms: list[list[Token]] = [[]]
    for tok in body:
        if tok.depth != 0:
            continue
        if tok.text == ",":
            terms.append([])
        else:
            terms[-1].append(tok)
    return [t for t in terms if t]


def _order_terms(body: list[Token]) -> tuple[tuple[OrderTerm, ...], bool]:
    """The leading plain-field ORDER BY terms, and whether they are the whole story."""
    found: list[OrderTerm] = []
    exact = True
    for term in _terms(body):
        descending = False
        if term[-1].word in _DIRECTIONS:
            descending = _DIRECTIONS[term.pop().word]
        if any(t.word in ("COLLATE", "NUMERIC") for t in term):
            exact = False  # string collations we only approximate
            term = [t for t in term if t.word not in ("COLLATE", "NUMERIC")]
        if [t.text.lower() for t in term] == ["rand", "(", ")"]:
            continue
        path = _field_path(term)
        if path is None:
            return tuple(found), False
        found.append(OrderTerm(path, descending))
    return tuple(found), exact


def _field_path(term: list[Token]) -> str | None:
    """``a.b.c`` from word/ident tokens joined by dots, or None for anything else."""
    names = term[0::2]
    dots = term[1::2]
    if len(term) % 2 == 0 or any(d.text != "." for d in dots):
        return None
    if any(t.kind not in ("word", "ident") for t in names):
        return None
    return ".".join(_name(t) for t in names)


def _name(tok: Token) -> str:
    """The name a word or quoted identifier token stands for."""
    if tok.kind != "ident":
        return tok.text
    inner = tok.text[1:-1] if len(tok.text) >= 2 else ""
    return inner.replace("\\" + tok.text[-1], tok.text[-1]).replace("\\\\", "\\")


def _count(sql: str, operand: list[Token]) -> tuple[int | None, str | None]:
    """A LIMIT/START operand: (integer, None) for a literal, else (None, its raw text)."""
    if not operand:
        return None, None
    if len(operand) == 1 and operand[0].kind == "number" and operand[0].text.isdigit():
        return int(operand[0].text), None
    return None, sql[operand[0].start : operand[-1].end]


def _tables(body: list[Token]) -> tuple[str, ...]:
    """Table names among FROM targets: ``t`` or a record id ``t:...``, nothing else.

    Graph traversals, functions (``type::table($t)``), parameters and
    subqueries name no table we can know.
    """
    tables: list[str] = []
    for target in _terms(body):
        head = target[0]
        if head.kind not in ("word", "ident") or any(t.text in ("<", ">") for t in target):
            continue
        if len(target) == 1 or target[1].text == ":":
            tables.append(_name(head))
    return tuple(tables)
