"""Schema mirror logic: definitions read from one server generation, written for another.

Pure logic: no I/O, no SDK, no event loop. The I/O (``INFO FOR DB``/``INFO FOR
TABLE`` on both sides, applying statements) is :mod:`syncd.service.schemamirror`.

Rules of this file:

- A definition is what ``INFO FOR DB``/``INFO FOR TABLE`` prints: one
  ``DEFINE`` statement per ANALYZER, FUNCTION, PARAM, TABLE, FIELD, INDEX,
  EVENT, keyed by (kind, table, name). Both generations print definitions
  canonically (upper-case keywords, every option spelled out), so the text is
  compared token by token after :func:`canonical` smooths what differs
  between them without changing the meaning.
- What a secondary gets (:func:`statement_for`): the definition with
  ``OVERWRITE`` (so a changed one replaces the old, on 2.x and 3.x alike);
  an index ``CONCURRENTLY`` (built in the background on both generations: the
  secondary keeps taking writes); a table without its ``CHANGEFEED`` (a
  secondary is read, not tailed; one it already has is kept); a field without
  its ``VALUE`` clause (rows arrive with the values the primary computed:
  computing them again, ``time::now()`` say, would make the archive differ).
- Between generations: 2.x ``SEARCH ANALYZER a BM25 ... DOC_IDS_ORDER n ...``
  is 3.x ``FULLTEXT ANALYZER a BM25`` (3.x refuses SEARCH with a parse error,
  2.x FULLTEXT, and 3.x prints none of the 2.x-only tuning options); an
  ``MTREE`` index has no 3.x form (3.x refuses it) and is reported
  unsupported; a field ``a[*]`` (2.x) is ``a.*`` (3.x), both accepted by both.
- Not mirrored: EVENTs (an event would fire a second time on the secondary),
  unless the table opts in; users, accesses, APIs and other definitions.
  ANALYZERs, FUNCTIONs and PARAMs are mirrored when a mirrored definition
  refers to them (closure: an analyzer's function, a function's function).
- A definition on the secondary that the primary no longer has is *archived*
  (kept; the secondary is an archive), or removed with ``mirror_removals``:
  never a table, whose removal would delete the archived records.

Measured on 2.3.10 and 3.2.4 (``tests/surreal/test_schema_engines.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from syncd.config.schema import TablePolicy

__all__ = [
    "DB_KINDS",
    "KINDS",
    "Change",
    "Definition",
    "Key",
    "Schema",
    "TablePolicy",
    "canonical",
    "diff",
    "field_key",
    "from_info",
    "removal_for",
    "select",
    "statement_for",
]

KINDS = ("ANALYZER", "FUNCTION", "PARAM", "FIELD", "TABLE", "INDEX", "EVENT")
"""Definition kinds in the order they are applied: what is depended on first, and a
table's fields before the table (a field defines a missing table as schemaless on
both generations), so a SCHEMAFULL table never meets a record without its fields
defined (2.x would drop them silently, 3.x refuse the record)."""
DB_KINDS = frozenset({"ANALYZER", "FUNCTION", "PARAM", "TABLE"})
"""Kinds ``INFO FOR DB`` lists; the others are per table (``INFO FOR TABLE``)."""

_DB_SECTIONS = {"analyzers": "ANALYZER", "functions": "FUNCTION", "params": "PARAM"}
_TABLE_SECTIONS = {"fields": "FIELD", "indexes": "INDEX", "events": "EVENT"}
# Full-text tuning options only 2.x has (each takes one number).
_SEARCH_OPTIONS = frozenset(
    {
        "DOC_IDS_ORDER",
        "DOC_LENGTHS_ORDER",
        "POSTINGS_ORDER",
        "TERMS_ORDER",
        "DOC_IDS_CACHE",
        "DOC_LENGTHS_CACHE",
        "POSTINGS_CACHE",
        "TERMS_CACHE",
    }
)
# Clauses that may follow a field's VALUE expression (where it ends).
_FIELD_CLAUSES = frozenset(
    {"ASSERT", "DEFAULT", "READONLY", "PERMISSIONS", "COMMENT", "TYPE", "FLEXIBLE", "REFERENCE"}
)
_TABLE_CLAUSES = frozenset(
    {"TYPE", "SCHEMALESS", "SCHEMAFULL", "PERMISSIONS", "COMMENT", "DROP", "AS"}
)
_QUOTES = {"'": "'", '"': '"', "`": "`", "⟨": "⟩"}
_FUNCTION_REF = re.compile(r"fn::([A-Za-z0-9_:]+)")
_PARAM_REF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")

#: (kind, table or "", name); a field's name with ``[*]`` written ``.*``.
Key = tuple[str, str, str]


@dataclass(frozen=True)
class Definition:
    """One definition as a server printed it."""

    kind: str
    name: str
    table: str
    text: str

    @property
    def key(self) -> Key:
        """(kind, table, name), the same for both generations' spelling."""
        return (self.kind, self.table, field_key(self.name) if self.kind == "FIELD" else self.name)

    def describe(self) -> str:
        """``INDEX hnsw ON vector_memories`` (for logs and reports: names, never contents)."""
        on = f" ON {self.table}" if self.table and self.kind != "TABLE" else ""
        return f"{self.kind} {self.name}{on}"


#: Every definition of a database (or the part of it syncd looked at), by key.
Schema = dict[Key, Definition]


@dataclass(frozen=True)
class Change:
    """One difference between the primary's schema and a secondary's.

    ``action``: ``define`` (missing on the secondary), ``redefine`` (different
    there), ``remove`` (gone from the primary, ``mirror_removals`` on),
    ``archived`` (gone from the primary, kept), ``unsupported`` (no form for
    the secondary's generation). ``statement`` is what to send, if anything.
    """

    action: str
    definition: Definition
    statement: str | None = None

    @property
    def applies(self) -> bool:
        """Whether there is a statement to send to the secondary."""
        return self.statement is not None


# --------------------------------------------------------------------------
# Reading.


def field_key(name: str) -> str:
    """A field's name spelled the same for both generations (``a[*]`` is ``a.*``)."""
    return name.replace("[*]", ".*")


def from_info(db_info: Mapping[str, object], tables: Mapping[str, Mapping[str, object]]) -> Schema:
    """The definitions in ``INFO FOR DB`` and, per table, ``INFO FOR TABLE`` answers."""
    schema: Schema = {}

    def add(kind: str, name: str, table: str, text: object) -> None:
        if isinstance(text, str):
            definition = Definition(kind, str(name), table, text)
            schema[definition.key] = definition

    for section, kind in _DB_SECTIONS.items():
        for name, text in _section(db_info, section).items():
            add(kind, name, "", text)
    for name, text in _section(db_info, "tables").items():
        add("TABLE", name, name, text)
    for table, info in tables.items():
        for section, kind in _TABLE_SECTIONS.items():
            for name, text in _section(info, section).items():
                add(kind, name, table, text)
    return schema


def _section(info: Mapping[str, object], name: str) -> Mapping[str, object]:
    part = info.get(name) if isinstance(info, Mapping) else None
    return part if isinstance(part, Mapping) else {}


# --------------------------------------------------------------------------
# Selecting what is mirrored.


def select(schema: Schema, policy: Callable[[str], TablePolicy | None]) -> Schema:
    """The definitions of ``schema`` a secondary gets.

    ``policy(table)`` says how a table is mirrored, None when it is not
    replicated. Per-table definitions follow their table's policy; analyzers,
    functions and params are taken when something taken refers to them.
    """
    chosen: Schema = {}
    for key, definition in schema.items():
        if definition.kind in ("ANALYZER", "FUNCTION", "PARAM"):
            continue
        rules = policy(definition.table)
        if rules is None or not rules.mirror:
            continue
        if definition.kind == "EVENT" and not rules.events:
            continue
        chosen[key] = definition
    pending = list(chosen.values())
    while pending:
        for key in _references(pending.pop().text, schema):
            if key not in chosen:
                chosen[key] = schema[key]
                pending.append(schema[key])
    return chosen


def _references(text: str, schema: Schema) -> list[Key]:
    """Keys of the analyzers, functions and params ``text`` names that ``schema`` has."""
    tokens = [t for t in _tokens(text) if t.kind != "string"]
    found: list[Key] = []
    for before, tok, after in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if tok.word == "ANALYZER" and before.word != "DEFINE" and after.kind == "word":
            found.append(("ANALYZER", "", after.text))
    code = _code_only(text)
    found += [("FUNCTION", "", m) for m in _FUNCTION_REF.findall(code)]
    found += [("PARAM", "", m) for m in _PARAM_REF.findall(code)]
    return [k for k in found if k in schema]


def _code_only(text: str) -> str:
    """``text`` with string literals blanked (a keyword in a string refers to nothing)."""
    return "".join(text[t.start : t.end] if t.kind != "string" else "''" for t in _tokens(text))


# --------------------------------------------------------------------------
# Comparing.


def canonical(definition: Definition) -> tuple[str, ...]:
    """The definition's tokens with what does not change its meaning smoothed out.

    Whitespace, a ``;`` before ``}``, 2.x's full-text tuning options, SEARCH
    versus FULLTEXT, a table's CHANGEFEED, a field's VALUE (never mirrored),
    ``[*]`` versus ``.*``.
    """
    text = _rewrite(definition, rules=3, for_secondary=True)
    out: list[str] = []
    tokens = _tokens(text)
    for i, tok in enumerate(tokens):
        if tok.text == ";" and i + 1 < len(tokens) and tokens[i + 1].text == "}":
            continue
        out.append(tok.text)
    return tuple(out)


def diff(
    wanted: Schema,
    secondary: Schema,
    rules: int,
    *,
    primary: Schema | None = None,
    policy: Callable[[str], TablePolicy | None] | None = None,
    removals: bool = False,
    settled: Mapping[Key, tuple[str, str]] | None = None,
    changefeeds: bool = True,
) -> list[Change]:
    """What a secondary of generation ``rules`` lacks or has differently, in apply order.

    ``wanted`` is what the secondary should have (:func:`select` of
    ``primary``, every definition the primary has), ``secondary`` what it
    has. A definition of the secondary that ``primary`` lacks, in what
    ``policy`` mirrors, was removed there: ``archived``, or ``remove`` with
    ``removals``. ``settled`` maps a key to the (primary text, secondary text)
    pair last applied and read back: a pair seen before is in sync even if
    :func:`canonical` cannot tell (a default one generation prints and the
    other not), so nothing is applied at every check. ``changefeeds``: keep a
    CHANGEFEED the secondary's table already has.
    """
    primary = wanted if primary is None else primary
    settled = settled or {}
    changes: list[Change] = []
    for key in sorted(wanted, key=_order):
        want = wanted[key]
        have = secondary.get(key)
        if have is not None and (
            settled.get(key) == (want.text, have.text) or canonical(want) == canonical(have)
        ):
            continue
        statement = statement_for(
            want, rules, keep_changefeed=have.text if have is not None and changefeeds else None
        )
        if statement is None:
            changes.append(Change("unsupported", want))
            continue
        changes.append(Change("define" if have is None else "redefine", want, statement))
    gone = [
        secondary[k]
        for k in sorted(secondary, key=_order, reverse=True)
        if k not in primary and _in_scope(secondary[k], policy)
    ]
    for definition in gone:
        statement = removal_for(definition) if removals else None
        changes.append(Change("remove" if statement else "archived", definition, statement))
    return changes


def _in_scope(definition: Definition, policy: Callable[[str], TablePolicy | None] | None) -> bool:
    """Whether the mirror looks after ``definition`` (on the secondary) at all."""
    if policy is None or definition.kind in ("ANALYZER", "FUNCTION", "PARAM"):
        return True
    rules = policy(definition.table)
    if rules is None or not rules.mirror:
        return False
    return definition.kind != "EVENT" or rules.events


def _order(key: Key) -> tuple[int, str, str]:
    kind, table, name = key
    return (KINDS.index(kind) if kind in KINDS else len(KINDS), table, name)


# --------------------------------------------------------------------------
# Writing.


def statement_for(
    definition: Definition, rules: int, *, keep_changefeed: str | None = None
) -> str | None:
    """The statement that gives a secondary of generation ``rules`` this definition.

    None when that generation has no form of it (an MTREE index on 3.x).
    ``keep_changefeed``: the secondary's current definition of the table,
    whose CHANGEFEED clause (if any) is kept.
    """
    if rules >= 3 and definition.kind == "INDEX" and _has_word(definition.text, "MTREE"):
        return None
    text = _rewrite(definition, rules=rules, for_secondary=True)
    tokens = _tokens(text)
    # DEFINE <KIND> [OVERWRITE | IF NOT EXISTS] name ...
    if len(tokens) < 3 or tokens[0].word != "DEFINE":
        return None
    head = tokens[2]
    if head.word == "IF":
        not_exists = tokens[4] if len(tokens) > 4 else head
        text = text[: head.start] + "OVERWRITE" + text[not_exists.end :]
    elif head.word != "OVERWRITE":
        text = f"{text[: head.start]}OVERWRITE {text[head.start :]}"
    if definition.kind == "INDEX":
        text = f"{text} CONCURRENTLY"
    if definition.kind == "TABLE" and keep_changefeed is not None:
        clause = _clause(keep_changefeed, "CHANGEFEED", _TABLE_CLAUSES)
        if clause is not None:
            text = f"{text} {clause}"
    return text


def removal_for(definition: Definition) -> str | None:
    """``REMOVE <KIND> name [ON table]``; None for a table (its records are the archive)."""
    kind, name = definition.kind, definition.name
    if kind == "TABLE":
        return None
    if kind == "FUNCTION":
        return f"REMOVE FUNCTION fn::{name}"
    if kind == "PARAM":
        return f"REMOVE PARAM ${name}"
    if kind == "ANALYZER":
        return f"REMOVE ANALYZER {_ident(name)}"
    target = name if kind == "FIELD" else _ident(name)
    return f"REMOVE {kind} {target} ON {_ident(definition.table)}"


def _ident(name: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return name
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _rewrite(definition: Definition, *, rules: int, for_secondary: bool) -> str:
    """The definition's text in generation ``rules``' words, minus what is not mirrored."""
    text = definition.text
    if definition.kind == "TABLE" and for_secondary:
        text = _drop_clause(text, "CHANGEFEED", _TABLE_CLAUSES)
    elif definition.kind == "FIELD":
        if for_secondary:
            text = _drop_clause(text, "VALUE", _FIELD_CLAUSES)
        text = _field_name(text, rules)
        text = _field_type(text, rules)
    elif definition.kind == "INDEX":
        text = _full_text(text, rules)
    return text


def _full_text(text: str, rules: int) -> str:
    tokens = _tokens(text)
    edits: list[tuple[int, int, str]] = []
    skip_number = False
    for tok in tokens:
        if skip_number:
            skip_number = False
            if tok.kind == "atom":
                edits.append((tok.start, tok.end, ""))
                continue
        if tok.depth:
            continue
        if tok.word == "SEARCH" and rules >= 3:
            edits.append((tok.start, tok.end, "FULLTEXT"))
        elif tok.word == "FULLTEXT" and rules < 3:
            edits.append((tok.start, tok.end, "SEARCH"))
        elif tok.word in _SEARCH_OPTIONS and rules >= 3:
            edits.append((tok.start, tok.end, ""))
            skip_number = True
    return _apply(text, edits)


def _field_name(text: str, rules: int) -> str:
    """``DEFINE FIELD a[*] ON`` (2.x's print) as ``a.*`` on 3.x and back."""
    tokens = _tokens(text)
    on = next((t for t in tokens if t.word == "ON" and t.depth == 0), None)
    if on is None or len(tokens) < 3:
        return text
    start = tokens[2].start
    if tokens[2].word in ("OVERWRITE", "IF"):
        first = next((t for t in tokens[3:] if t.word not in ("NOT", "EXISTS")), tokens[2])
        start = first.start
    name = text[start : on.start].rstrip()
    spelled = field_key(name) if rules >= 3 else name.replace(".*", "[*]")
    return text[:start] + spelled + text[start + len(name) :]


def _field_type(text: str, rules: int) -> str:
    """An optional type: 3.x prints ``none | T``, which 2.x refuses; 2.x's ``option<T>``."""
    span = _clause_span(text, "TYPE", _FIELD_CLAUSES - {"TYPE"})
    if span is None:
        return text
    start, end = span
    kind = text[start + len("TYPE") : end].strip()
    parts = _union(kind)
    if rules >= 3:
        match = re.fullmatch(r"option\s*<(.*)>", kind, re.DOTALL)
        if match is None or len(parts) > 1:
            return text
        spelled = "none | " + match.group(1).strip()
    elif len(parts) > 1 and any(p.lower() == "none" for p in parts):
        spelled = "option<" + " | ".join(p for p in parts if p.lower() != "none") + ">"
    else:
        return text
    return f"{text[:start]}TYPE {spelled} {text[end:].lstrip()}".rstrip()


def _union(kind: str) -> list[str]:
    """The alternatives of a type at its top level (``a | b<c | d>`` is two)."""
    parts, depth, begin = [], 0, 0
    for i, c in enumerate(kind):
        if c in "<([{":
            depth += 1
        elif c in ">)]}":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(kind[begin:i].strip())
            begin = i + 1
    parts.append(kind[begin:].strip())
    return parts


def _drop_clause(text: str, keyword: str, ends: frozenset[str]) -> str:
    """``text`` without the depth-0 clause opened by ``keyword`` (up to the next of ``ends``)."""
    span = _clause_span(text, keyword, ends)
    if span is None:
        return text
    start, end = span
    return (text[:start].rstrip() + " " + text[end:].lstrip()).strip()


def _clause(text: str, keyword: str, ends: frozenset[str]) -> str | None:
    span = _clause_span(text, keyword, ends)
    return None if span is None else text[span[0] : span[1]].strip()


def _clause_span(text: str, keyword: str, ends: frozenset[str]) -> tuple[int, int] | None:
    tokens = _tokens(text)
    for i, tok in enumerate(tokens):
        if i < 3 or tok.depth or tok.word != keyword:
            continue
        end = len(text)
        for later in tokens[i + 1 :]:
            if later.depth == 0 and later.word in ends:
                end = later.start
                break
        return tok.start, end
    return None


def _has_word(text: str, word: str) -> bool:
    return any(t.word == word and t.depth == 0 for t in _tokens(text))


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, new in sorted(edits, reverse=True):
        if not new:  # a deleted word takes the space before it along
            start = len(text[:start].rstrip())
        text = text[:start] + new + text[end:]
    return text


# --------------------------------------------------------------------------
# Tokens: enough to keep strings, brackets and comments opaque. (The SurrealQL
# splitter of syncd.reads sits above this layer; definitions as a server
# prints them need only this much.)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # word, atom, param, string, ident, punct
    text: str
    start: int
    end: int
    depth: int
    word: str = field(default="", compare=False)


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    depth, i, n = 0, 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in _QUOTES:
            end = _quoted_end(text, i + 1, _QUOTES[c])
            kind = "string" if c in "'\"" else "ident"
            tokens.append(_Token(kind, text[i:end], i, end, depth))
            i = end
        elif c == "$":
            end = i + 1
            while end < n and (text[end].isalnum() or text[end] == "_"):
                end += 1
            tokens.append(_Token("param", text[i:end], i, end, depth))
            i = end
        elif c in "([{":
            tokens.append(_Token("punct", c, i, i + 1, depth))
            depth, i = depth + 1, i + 1
        elif c in ")]}":
            depth = max(depth - 1, 0)
            tokens.append(_Token("punct", c, i, i + 1, depth))
            i += 1
        elif c.isalnum() or c == "_":
            number = c.isdigit()
            end = i
            while end < n and (
                text[end].isalnum() or text[end] == "_" or (number and text[end] == ".")
            ):
                end += 1
            word = text[i:end]
            if number:
                tokens.append(_Token("atom", word, i, end, depth))
            else:
                tokens.append(_Token("word", word, i, end, depth, word.upper()))
            i = end
        else:
            tokens.append(_Token("punct", c, i, i + 1, depth))
            i += 1
    return tokens


def _quoted_end(text: str, i: int, close: str) -> int:
    n = len(text)
    while i < n:
        if text[i] == "\\":
            i += 2
        elif text[i] == close:
            return i + 1
        else:
            i += 1
    return n
