"""Classify SurrealDB errors of both server generations into the few kinds syncd acts on.

An error reaches syncd in one of four shapes, and each generation fills them
differently (recorded in ``tests/surreal/frames/v2.json`` and ``v3.json``):

- a statement result ``{"status": "ERR", "result": <text>}``; 3.x adds
  ``kind`` (``NotFound``, ``Internal``, ``Query``, ``AlreadyExists``,
  ``NotAllowed``, ``Thrown``...) and often ``details``;
- an RPC error frame ``{"id", "error": {"code", "message"}}``; 3.x adds
  ``kind``, ``details`` and ``cause``. The 2.x embedded engine never sends one:
  it raises, and the devserver (or ``surreal start``) wraps the text;
- an exception: the embedded engines raise ``RuntimeError``/``ValueError``
  (2.x texts start "There was a problem with the database: "); the SDK
  raises ``ServerError`` subclasses carrying the frame's message and, from a
  3.x server, its ``kind`` and ``details``;
- a bare message text.

3.x's ``kind`` is too coarse to use alone (a coercion failure, a UNIQUE index
violation and a missing COMMIT are all ``Internal``, and an undefined table
inside a block becomes ``Thrown``), so the structured fields decide only where
they are exact, and the message text decides the rest. Both generations word
the cases syncd cares about recognisably; anything else is ``OTHER``.

This is syncd's one vocabulary of failures: the executor hands each refused
record up with its :class:`ErrorKind`, the worker decides retry or dead letter
from it, and logs name it (``error_kind``) where the text, which quotes the
refused values, may not go. Nobody above this module reads a message again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from syncd.surreal.values import CodecError

__all__ = ["ErrorKind", "Failure", "classify", "failure_of", "is_undefined_table"]


class ErrorKind(StrEnum):
    """What went wrong, as far as syncd's decisions and logs go (values are the logged words)."""

    UNDEFINED_TABLE = "undefined_table"
    """The table does not exist (3.x reads fail; 2.x reads return ``[]``)."""
    FIELD_TYPE = "field_type"
    """A field's value is not of its defined type and cannot be coerced."""
    FIELD_ASSERTION = "field_assertion"
    """A field's value fails its ``ASSERT``."""
    RELATION = "relation"
    """A relation written to a normal table, or a normal record to a relation table."""
    PAYLOAD = "payload"
    """A value that cannot be encoded (syncd's codec) or decoded (the engine)."""
    REFUSED_VALUE = "refused_value"
    """The record was refused for a value in another way: a READONLY field, a
    SCHEMAFULL table's unknown field, a failed cast."""
    UNIQUE_INDEX = "unique_index"
    """A UNIQUE index already holds the value for another record."""
    ALREADY_EXISTS = "already_exists"
    """CREATE of a record id that exists (UPSERTs never see it)."""
    NOT_EXECUTED = "not_executed"
    """Collateral: the statement did not run because its transaction failed,
    was cancelled or never committed. Retry it; do not blame its record."""
    TIMEOUT = "timeout"
    """The statement ran out of its ``TIMEOUT``."""
    PARSE = "parse"
    """The query text is not SurrealQL this server accepts."""
    PERMISSION = "permission"
    """Signed in, but not allowed to do this."""
    AUTH = "auth"
    """Not signed in, wrong credentials, bad or expired token."""
    RESPONSE = "response"
    """The answer does not have the shape of what was asked (syncd's finding,
    not the server's words)."""
    OTHER = "other"
    """Anything else (THROW, unknown method, internal errors, a bug)."""


@dataclass(frozen=True, slots=True)
class Failure:
    """One error: its kind and its message text (the server's words, prefix removed)."""

    kind: ErrorKind
    message: str


_DB_PREFIX = "There was a problem with the database: "

# Ordered: the first match wins. Each pattern was seen on at least one engine
# (a value may hold newlines, hence DOTALL).
_TEXT_RULES: tuple[tuple[ErrorKind, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.DOTALL))
    for kind, pattern in (
        (ErrorKind.PARSE, r"^Parse error\b"),
        (ErrorKind.UNDEFINED_TABLE, r"\bThe table '.*' does not exist"),
        (ErrorKind.UNIQUE_INDEX, r"^Database index `[^`]*` already contains\b"),
        (ErrorKind.ALREADY_EXISTS, r"^Database record `.*` already exists"),
        # A nested BEGIN is the culprit, not collateral; 2.x words it like collateral.
        (ErrorKind.OTHER, r"Tried to start a transaction while another transaction was open"),
        (ErrorKind.TIMEOUT, r"^The query was not executed because it exceeded the timeout"),
        (
            ErrorKind.NOT_EXECUTED,
            r"^The query was not executed due to a (failed|cancelled) transaction"
            r"|^Cannot COMMIT: the transaction was aborted|^Missing COMMIT statement",
        ),
        # Both generations: "Found 'x' for field `s`, with record `t:2`, but field
        # must conform to: ..."
        (ErrorKind.FIELD_ASSERTION, r"^Found .* for field `.*, but field must conform to\b"),
        (
            ErrorKind.FIELD_TYPE,
            # 2.x: "Found 'x' for field `n`, with record `s:2`, but expected a int";
            # 3.x: "Couldn't coerce value for field `n` of `s:2`: Expected ..."
            r"^Found .* for field `.*, but expected\b|^Couldn't coerce value for field `",
        ),
        (ErrorKind.RELATION, r"^Found record: `.*` which is (not )?a relation"),
        (ErrorKind.PAYLOAD, r"^Failed to decode CBOR request"),
        (
            ErrorKind.REFUSED_VALUE,
            r"^Found .* for field `"  # 2.x READONLY: "Found changed value for field `n`..."
            r"|^Found field '.*', but no such field exists"  # 3.x SCHEMAFULL
            r"|^Can ?not execute \w+ statement using value"
            r"|^Expected a .* but cannot convert|^Could not cast into\b",
        ),
        (ErrorKind.AUTH, r"^Anonymous access not allowed"),
        (ErrorKind.PERMISSION, r"^IAM error: Not enough permissions|^Not enough permissions"),
        (
            ErrorKind.AUTH,
            r"problem with authentication|^Username or Password was not provided"
            r"|^The access method does not exist|^InvalidToken$|token has expired"
            r"|session has expired|^Invalid token",
        ),
    )
)


def _text(value: Any) -> str:
    text = str(value)
    return text[len(_DB_PREFIX) :] if text.startswith(_DB_PREFIX) else text


def _detail_kinds(details: Any) -> list[str]:
    """The ``kind`` at each level of 3.x's nested ``details`` (outermost first)."""
    kinds: list[str] = []
    while isinstance(details, Mapping) and len(kinds) < 8:
        kind = details.get("kind")
        if isinstance(kind, str):
            kinds.append(kind)
        details = details.get("details")
    return kinds


def _structured(kind: Any, details: Any, message: str) -> ErrorKind | None:
    """3.x's ``kind``/``details`` where they are exact; None to fall back to the text."""
    inner = _detail_kinds(details)
    if kind == "NotFound" and inner[:1] == ["Table"]:
        return ErrorKind.UNDEFINED_TABLE
    if kind == "AlreadyExists" and inner[:1] == ["Record"]:
        return ErrorKind.ALREADY_EXISTS
    if kind == "Query" and inner[:1] in (["NotExecuted"], ["Cancelled"]):
        return ErrorKind.NOT_EXECUTED
    if kind == "NotAllowed" and inner[:1] == ["Auth"]:
        # InvalidAuth, MissingUserOrPass, expired tokens...: who you are is the
        # problem. NotAllowed: what you asked; anonymous means "sign in first".
        if inner[1:2] == ["NotAllowed"] and not message.startswith("Anonymous access"):
            return ErrorKind.PERMISSION
        return ErrorKind.AUTH
    return None


def _classify_text(message: str) -> ErrorKind:
    for kind, pattern in _TEXT_RULES:
        if pattern.search(message):
            return kind
    return ErrorKind.OTHER


def failure_of(value: Any) -> Failure | None:
    """The error carried by ``value``, or ``None`` when it carries none.

    ``value`` may be an exception, a whole RPC answer frame, its ``error``
    object, one statement result of a query, or a message text. An ``OK``
    statement result and an answer frame without ``error`` carry none.
    """
    if isinstance(value, str):
        return Failure(_classify_text(_text(value)), _text(value))
    if isinstance(value, BaseException):
        message = _text(value)
        if isinstance(value, CodecError):  # syncd's own codec: SurrealDB cannot hold the value
            return Failure(ErrorKind.PAYLOAD, message)
        # The SDK's ServerError keeps the frame's kind and details (3.x servers).
        kind = _structured(getattr(value, "kind", None), getattr(value, "details", None), message)
        return Failure(kind or _classify_text(message), message)
    if not isinstance(value, Mapping):
        return None
    error = value.get("error")
    if isinstance(error, Mapping):  # an answer frame
        return failure_of(error)
    if error is not None:  # an SDK-style {"error": "text"}
        return failure_of(str(error))
    if "status" in value:  # a statement result
        if value.get("status") != "ERR":
            return None
        message = _text(value.get("result"))
    elif "message" in value:  # an RPC error object
        message = _text(value.get("message"))
    else:
        return None
    kind = _structured(value.get("kind"), value.get("details"), message)
    return Failure(kind or _classify_text(message), message)


def classify(error: Any) -> ErrorKind:
    """The :class:`ErrorKind` of ``error`` (any shape :func:`failure_of` takes).

    Raises ``ValueError`` when ``error`` carries no error (an OK result).
    """
    failure = failure_of(error)
    if failure is None:
        raise ValueError("not an error: an OK result or an answer without 'error'")
    return failure.kind


def is_undefined_table(error: Any) -> bool:
    """Whether ``error`` says a table does not exist (False for non-errors).

    On 3.x a read of a table nothing was ever written to fails this way where
    2.x returns ``[]``; callers reading a secondary treat it as empty.
    """
    failure = failure_of(error)
    return failure is not None and failure.kind is ErrorKind.UNDEFINED_TABLE
