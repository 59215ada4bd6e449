"""SurrealQL tokens: text split into words, numbers, strings, identifiers, params, punctuation.

Strings, comments and nesting are understood, so a keyword inside a string or
a subquery is never taken for a statement's own (see :mod:`syncd.reads.statements`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Token", "split_statements", "split_tokens", "tokenize"]

_OPENERS, _CLOSERS = "([{", ")]}"
_QUOTES = {"'": "'", '"': '"', "`": "`", "⟨": "⟩"}


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token: ``kind`` is word, number, string, ident, param or punct."""

    kind: str
    text: str
    start: int
    end: int
    depth: int

    @property
    def word(self) -> str:
        """The upper-cased text of a word token ("" for any other kind)."""
        return self.text.upper() if self.kind == "word" else ""


def tokenize(sql: str) -> list[Token]:
    """Split ``sql`` into tokens, dropping whitespace and comments."""
    tokens: list[Token] = []
    depth, i, n = 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif c == "#" or sql.startswith(("--", "//"), i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c in _QUOTES:
            end = _quoted_end(sql, i + 1, _QUOTES[c])
            kind = "string" if c in "'\"" else "ident"
            tokens.append(Token(kind, sql[i:end], i, end, depth))
            i = end
        elif c in _OPENERS:
            tokens.append(Token("punct", c, i, i + 1, depth))
            depth, i = depth + 1, i + 1
        elif c in _CLOSERS:
            # Clamped: a stray closer must not push the rest below depth 0.
            depth = max(depth - 1, 0)
            tokens.append(Token("punct", c, i, i + 1, depth))
            i += 1
        else:
            kind, end = _scan_atom(sql, i)
            tokens.append(Token(kind, sql[i:end], i, end, depth))
            i = end
    return tokens


def _quoted_end(sql: str, i: int, close: str) -> int:
    """The index just past the closing ``close`` (backslash escapes), or the end."""
    while i < len(sql):
        if sql[i] == "\\":
            i += 2
        elif sql[i] == close:
            return i + 1
        else:
            i += 1
    return len(sql)


def _scan_atom(sql: str, i: int) -> tuple[str, int]:
    """Kind and end of the word, number, parameter or punctuation at ``i``."""
    if sql[i].isdigit():
        j = i + 1
        # Numbers run on through suffixes (1ms, 10dec, 1e3) and decimals,
        # but a dot must be followed by a digit so ranges (1..5) split.
        while j < len(sql) and (
            _word_char(sql[j]) or (sql[j] == "." and sql[j + 1 : j + 2].isdigit())
        ):
            j += 1
        return "number", j
    if _word_char(sql[i]) or sql[i] == "$":
        j = i + 1
        while j < len(sql) and _word_char(sql[j]):
            j += 1
        return ("param" if sql[i] == "$" else "word"), j
    if sql.startswith("::", i):
        return "punct", i + 2
    return "punct", i + 1


def _word_char(c: str) -> bool:
    """Whether ``c`` continues an identifier."""
    return c.isalnum() or c == "_"


def split_tokens(sql: str) -> list[list[Token]]:
    """The tokens of each non-empty top-level statement."""
    groups: list[list[Token]] = [[]]
    for tok in tokenize(sql):
        if tok.text == ";" and tok.depth == 0:
            groups.append([])
        else:
            groups[-1].append(tok)
    return [g for g in groups if g]


def split_statements(sql: str) -> list[str]:
    """The text of each top-level statement, trimmed of blanks and edge comments."""
    return [sql[g[0].start : g[-1].end] for g in split_tokens(sql)]
