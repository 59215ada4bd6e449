"""What kind of refusal a secondary's error is, without repeating what it quotes.

The secondary's error texts quote the very values it refused ("Found
'CONTENT-…' for field `n`, with record `events:2`, but expected a int") and
the records they belong to. The full text goes to the dead-letter file (mode
0600), where an operator reads it on purpose; logs get only the *kind* named
here, a fixed vocabulary safe at any level. Pure: no I/O.

The patterns are SurrealDB's own texts, measured on the 2.3 engine; 3.x
keeps the same phrases. A text matching none is ``other``.
"""

from __future__ import annotations

import re

__all__ = ["KINDS", "error_kind"]

# First match wins: the more specific phrase comes first.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE | re.DOTALL))
    for kind, pattern in (
        ("field_assertion", r"\bfor field\b.*\bmust conform to\b"),
        ("field_type", r"\bfor field\b.*\bexpected\b|couldn't coerce|\bexpected a\b.*\bfound\b"),
        ("unique_index", r"\bindex\b.*\balready contains\b"),
        ("relation", r"\brelation\b"),
        ("record_exists", r"\balready exists\b"),
        ("not_found", r"\bdoes not exist\b|\bnot found\b"),
        ("permission", r"\bnot allowed\b|\bpermission|\bIAM\b"),
        ("parse", r"\bparse error\b|\bfailed to parse\b"),
        ("timeout", r"\btimed out\b|\btimeout\b"),
        ("payload", r"\bdecode\b|\bencode\b|\bserializ|\bdeserializ|\bCBOR\b"),
        ("response", r"\bunexpected response\b"),
    )
)

#: Every kind :func:`error_kind` can return.
KINDS = frozenset(kind for kind, _ in _PATTERNS) | {"other"}


def error_kind(text: str) -> str:
    """The kind of the secondary's refusal ``text``: one word from :data:`KINDS`."""
    for kind, pattern in _PATTERNS:
        if pattern.search(text):
            return kind
    return "other"
