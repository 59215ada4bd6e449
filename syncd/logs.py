"""Structured logging for syncd (structlog), with a redaction safety net.

Conventions:

* Event names are snake_case verbs or facts (``batch_applied``,
  ``secondary_down``, ``spool_replay_started``); details go in keyword
  arguments, never formatted into the event string.
* Never log record contents, keys, record ids or credentials: callers name
  a record by its table and :func:`syncd.keys.key_hash` (unless
  ``log_record_ids`` is set) and a refusal by its kind. :func:`redact` is a
  last line of defence, not the primary control, and redacts by meaning:
  a credential-named key (``password``, ``token``...) is always hidden; a
  content-named key (``record``, ``content``, ``data``...) is hidden unless
  its value is a number — ``records=1200`` is a count, not a record.
* Output is JSON lines when not writing to a terminal, human-readable
  otherwise. Tracebacks never include local variables, which may hold
  records or passwords.

The stdlib ``logging`` tree (websockets, the SurrealDB SDK) is routed to the
same stream and format at WARNING and above, so their debug chatter stays out.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO, cast

import structlog
from structlog.processors import ExceptionRenderer
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

REDACTED = "[redacted]"

# A key names a credential when any of its words (split on non-alphanumerics)
# is one of these, so "db_password" matches but "database" does not. Whatever
# its value, it is hidden.
_CREDENTIAL_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pass",
        "passphrase",
        "pwd",
        "secret",
        "secrets",
        "token",
        "tokens",
        "authorization",
        "auth",
        "credential",
        "credentials",
    }
)
# A key names record contents when any of its words is one of these. Its value
# is hidden unless it is a number: contents are mappings, lists and strings,
# while a number under such a name can only be a count ("records": 1200).
_CONTENT_WORDS = frozenset({"record", "records", "content", "data"})
# ... unless its last word says it is a measurement of the thing, not the
# thing itself: "record_count" and "data_bytes" are safe and useful.
_SAFE_LAST_WORDS = frozenset({"count", "counts", "size", "bytes", "len", "length", "total", "n"})
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
# Nested values are redacted down to this depth; deeper ones are replaced
# whole, which also stops on self-referencing structures.
_MAX_DEPTH = 6

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def _is_sensitive(key: object, value: object) -> bool:
    words = [w for w in _WORD_SPLIT.split(str(key).lower()) if w]
    if not words or words[-1] in _SAFE_LAST_WORDS:
        return False
    if any(w in _CREDENTIAL_WORDS for w in words):
        return True
    is_count = isinstance(value, int | float) and not isinstance(value, bool)
    return not is_count and any(w in _CONTENT_WORDS for w in words)


def _scrub(value: Any, depth: int) -> Any:
    if isinstance(value, Mapping):
        if depth >= _MAX_DEPTH:
            return REDACTED
        return {
            k: REDACTED if _is_sensitive(k, v) else _scrub(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        if depth >= _MAX_DEPTH:
            return REDACTED
        return [_scrub(v, depth + 1) for v in value]
    return value


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: replace sensitive values with ``[redacted]`` (see the module docstring).

    Applies to top-level keys and to keys inside nested mappings and lists.
    The ``event`` itself is left alone.
    """
    for key, value in list(event_dict.items()):
        if key == "event":
            continue
        if _is_sensitive(key, value):
            event_dict[key] = REDACTED
        elif isinstance(value, Mapping | list | tuple):
            event_dict[key] = _scrub(value, 0)
    return event_dict


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class _NamedWriteLogger(structlog.WriteLogger):
    """A WriteLogger that remembers the name given to :func:`get_logger`."""

    def __init__(self, file: TextIO, name: str | None) -> None:
        super().__init__(file)
        self.name = name


def _add_logger_name(logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    # A stdlib record carries its logger's name; our own loggers carry the
    # name they were created with (see _NamedWriteLogger).
    record = event_dict.get("_record")
    name = record.name if isinstance(record, logging.LogRecord) else getattr(logger, "name", None)
    if name:
        event_dict.setdefault("logger", name)
    return event_dict


class _StdlibHandler(logging.StreamHandler[TextIO]):
    """The root handler we install; its own class so re-configuring replaces only it."""


def configure_logging(
    level: str = "info", json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Configure structlog and route stdlib logging to the same output.

    ``level`` is one of debug, info, warning, error, critical. ``json``
    forces JSON lines (True) or console output (False); ``None`` picks JSON
    unless ``stream`` is a terminal. ``stream`` defaults to ``sys.stderr``
    (looked up at call time). Calling again replaces the previous setup.
    Raises ``ValueError`` for an unknown level.
    """
    try:
        numeric = _LEVELS[level.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; use one of {sorted(_LEVELS)}") from None
    out = stream if stream is not None else sys.stderr
    tty = _is_tty(out)
    as_json = (not tty) if json is None else json

    renderer: Processor
    exceptions: list[Processor]
    if as_json:
        # structlog's stock dict_tracebacks includes locals; ours must not.
        exceptions = [ExceptionRenderer(ExceptionDictTransformer(show_locals=False))]
        renderer = structlog.processors.JSONRenderer()
    else:
        # The console renderer formats exc_info itself; plain_traceback is the
        # stdlib format, which has no locals (rich/better-exceptions might).
        exceptions = []
        renderer = structlog.dev.ConsoleRenderer(
            colors=tty, exception_formatter=structlog.dev.plain_traceback
        )

    shared: list[Processor] = [
        _add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Before exception rendering, so it sees the caller's keys only.
        redact,
    ]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *shared,
            structlog.processors.StackInfoRenderer(),
            *exceptions,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # One write() per line, under a lock: lines from threads don't interleave.
        # The factory receives get_logger()'s positional args: the name.
        logger_factory=lambda *args: _NamedWriteLogger(out, args[0] if args else None),
        # Not cached, so module-level loggers follow a later re-configuration.
        cache_logger_on_first_use=False,
    )

    handler = _StdlibHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *exceptions,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    # Replace only our own handler: others (pytest's capture, an embedding
    # application's) stay.
    for old in [h for h in root.handlers if isinstance(h, _StdlibHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(max(logging.WARNING, numeric))


def get_logger(name: str | None = None) -> FilteringBoundLogger:
    """A structlog logger; its lines carry ``logger=name`` when a name is given.

    Safe to call at import time: the configuration is looked up when the
    logger is used, not when it is created.
    """
    args = () if name is None else (name,)
    return cast(FilteringBoundLogger, structlog.get_logger(*args))
