"""The exceptions syncd raises.

Every error carries ``retriable`` as a class attribute: the retry loop in the
executor reads it instead of guessing from the exception's type or text.
SDK and websockets exceptions are translated into these in one place
(:mod:`syncd.surreal.connection`), where they enter syncd.
"""

from __future__ import annotations

from typing import ClassVar


class SyncdError(Exception):
    """Base class of every error raised by syncd."""

    retriable: ClassVar[bool] = False


class ConfigError(SyncdError):
    """The configuration is invalid; the message names the offending key."""


class SecondaryUnavailable(SyncdError):
    """The secondary could not be reached, timed out, or dropped the connection."""

    retriable = True


class PrimaryUnavailable(SyncdError):
    """The primary could not be reached, timed out, or dropped the connection."""

    retriable = True


class AuthenticationFailed(SyncdError):
    """The server refused the credentials (user, password, namespace or database)."""


class RecordRejected(SyncdError):
    """The secondary answered, but refused this record (schema, index, permissions)."""


class SpoolCorrupt(SyncdError):
    """A spool segment holds bytes that do not decode as operations."""


class DeadLetterError(SyncdError):
    """The dead-letter file could not be read or written."""
