"""Logging: JSON shape, redaction, tracebacks without locals, stdlib routing."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from syncd.logs import configure_logging, get_logger


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo configure_logging: structlog defaults, root handlers and level."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    """The JSON lines written to ``stream``."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def leak(secret: str) -> None:
    """Raise with a secret in a local variable."""
    password = secret
    raise ValueError(f"failed with a {len(password)}-char value")


def test_json_lines_have_event_level_timestamp() -> None:
    out = io.StringIO()  # not a TTY: JSON chosen automatically
    configure_logging(stream=out)
    get_logger("syncd.test").info("batch_applied", table="user", count=3)

    [entry] = lines(out)
    assert entry["event"] == "batch_applied"
    assert entry["level"] == "info"
    assert entry["logger"] == "syncd.test"
    assert str(entry["timestamp"]).endswith("Z")
    assert entry["table"] == "user" and entry["count"] == 3


def test_level_filtering() -> None:
    out = io.StringIO()
    configure_logging("warning", stream=out)
    log = get_logger()
    log.info("dropped")
    log.warning("kept")
    assert [e["event"] for e in lines(out)] == ["kept"]


def test_unknown_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="loud"):
        configure_logging("loud", stream=io.StringIO())


def test_contextvars_are_merged() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    with structlog.contextvars.bound_contextvars(replicator="r1"):
        get_logger().info("started")
    assert lines(out)[0]["replicator"] == "r1"


def test_redaction_of_sensitive_keys() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    get_logger().info(
        "connected",
        password="s3cret",
        db_password="s3cret",
        record={"name": "alice"},
        nested={"token": "s3cret", "rows": [{"content": "s3cret"}]},
        database="prod",
        record_count=2,
    )

    text = out.getvalue()
    assert "s3cret" not in text and "alice" not in text
    [entry] = lines(out)
    assert entry["password"] == "[redacted]"
    assert entry["db_password"] == "[redacted]"
    assert entry["record"] == "[redacted]"
    assert entry["nested"] == {"token": "[redacted]", "rows": [{"content": "[redacted]"}]}
    # Lookalikes that are safe and useful stay.
    assert entry["database"] == "prod"
    assert entry["record_count"] == 2


def test_json_traceback_is_structured_without_locals() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    try:
        leak("s3" + "cret")  # built at runtime: the source line is in the traceback
    except ValueError:
        get_logger().exception("apply_failed")

    assert "s3cret" not in out.getvalue()
    [entry] = lines(out)
    exception = entry["exception"]
    assert isinstance(exception, list) and exception[0]["exc_type"] == "ValueError"


def test_console_traceback_shows_no_locals() -> None:
    out = io.StringIO()
    configure_logging("debug", json=False, stream=out)
    try:
        leak("s3" + "cret")  # built at runtime: the source line is in the traceback
    except ValueError:
        get_logger().exception("apply_failed")

    text = out.getvalue()
    assert "apply_failed" in text
    assert "Traceback" in text and "ValueError" in text
    assert "s3cret" not in text
    assert "\x1b[" not in text  # no colours off a TTY


def test_stdlib_logging_goes_through_at_warning_and_above() -> None:
    out = io.StringIO()
    configure_logging("debug", stream=out)
    third_party = logging.getLogger("websockets.client")
    third_party.info("chatter")
    third_party.warning("connection %s lost", "ws://x")

    [entry] = lines(out)
    assert entry["event"] == "connection ws://x lost"
    assert entry["level"] == "warning"
    assert entry["logger"] == "websockets.client"


def test_reconfigure_replaces_the_stdlib_handler_and_reaches_existing_loggers() -> None:
    log = get_logger("early")  # created before configuration, like a module-level logger
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first)
    configure_logging(stream=second)
    log.info("hello")
    logging.getLogger("sdk").error("oops")

    assert first.getvalue() == ""
    assert [e["event"] for e in lines(second)] == ["hello", "oops"]


def test_redaction_is_by_meaning_counts_stay() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    get_logger().info(
        "backfill_table_done",
        table="events",
        records=1200,
        data=3.5,
        record="events:SECRET",
        records_list=["SECRET"],
        content={"n": "SECRET"},
        token=12345678,  # a credential stays hidden even when it is a number
        auth=True,
        nested={"records": 7, "record": "SECRET"},
    )
    text = out.getvalue()
    assert "SECRET" not in text and "12345678" not in text
    [entry] = lines(out)
    assert (entry["records"], entry["data"]) == (1200, 3.5)
    assert entry["nested"] == {"records": 7, "record": "[redacted]"}
    for key in ("record", "records_list", "content", "token", "auth"):
        assert entry[key] == "[redacted]", key
