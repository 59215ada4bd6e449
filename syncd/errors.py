"""The exceptions syncd raises.

Every error carries ``retriable`` as a class attribute: the worker's retry
loop (:mod:`syncd.pipeline.worker`) reads it to tell a batch nobody answered
(sent again once the database is back) from one that failed. SDK, websockets
and OS exceptions are translated into these in one place
(:mod:`syncd.surreal.errors`), where they enter syncd. What kind of refusal a
database's error is, is :class:`syncd.surreal.failures.ErrorKind`'s business.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SyncdError(Exception):
    """Base class of every error raised by syncd."""

    retriable: ClassVar[bool] = False


class ConfigError(SyncdError):
    """The configuration is invalid; the message names the offending key."""


class UnknownSecondary(ConfigError):
    """A secondary was named (pause, resume) that the configuration does not define."""


class DatabaseUnavailable(SyncdError):
    """A database could not be reached, timed out, or dropped the connection."""

    retriable = True


class SecondaryUnavailable(DatabaseUnavailable):
    """The secondary could not be reached, timed out, or dropped the connection."""


class PrimaryUnavailable(DatabaseUnavailable):
    """The primary could not be reached, timed out, or dropped the connection."""


class ServerError(SyncdError):
    """The database answered, with an error: a refused query or request, not a lost connection."""

    def __init__(
        self, code: int, message: str, *, kind: str | None = None, details: Any = None
    ) -> None:
        """Keep the RPC error ``code`` (0 for a failed statement), and 3.x ``kind``/``details``."""
        super().__init__(message)
        self.code = code
        self.message = message
        self.kind = kind
        self.details = details


class MergeUnsupported(SyncdError):
    """A merged read syncd cannot answer like one database holding the union; names the clause."""

    def __init__(self, clause: str, detail: str = "") -> None:
        """``clause``: what cannot be merged (``search::score``, ``GROUP BY`` ...)."""
        super().__init__(
            f"merged read: {clause} cannot be answered like the union of the databases"
            + (f" ({detail})" if detail else "")
        )
        self.clause = clause


class AuthenticationFailed(SyncdError):
    """The database refused the sign-in: wrong user or password (an operator must act)."""


class RecordRejected(SyncdError):
    """The secondary answered, but refused this record (schema, index, permissions).

    Never raised to the application, whose write succeeded on the primary:
    the worker retries a refused record, then writes it to the dead-letter
    file with the refusal's text. Exported for callers that already catch it.
    """


class SpoolCorrupt(SyncdError):
    """A spool segment holds bytes that do not decode as operations."""


class DeadLetterError(SyncdError):
    """The dead-letter file could not be read or written."""
