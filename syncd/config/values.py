"""The values of syncd's config: each one checked and converted, with a one-line message.

Pure: the validators and the annotated types :mod:`syncd.config`'s models are
built from, and the URL helpers the connections use.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BeforeValidator, SecretStr

from syncd.durations import parse_duration

#: Prefix of the environment variables that override file keys.
ENV_PREFIX = "SYNCD_"

#: URL schemes the SurrealDB SDK (2.0) can connect with.
SUPPORTED_SCHEMES = (
    "ws",
    "wss",
    "http",
    "https",
    "mem",
    "memory",
    "surrealkv",
    "surrealkv+versioned",
    "file",
)
#: Schemes that reach a server over the network, so the URL must name a host.
NETWORK_SCHEMES = ("ws", "wss", "http", "https")

_SCHEME_HINT = "use ws, wss, http, https, mem, memory, surrealkv, file"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENTIFIER_RULE = "letters, digits and underscores, not starting with a digit"
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
# Password keys: their values are never echoed, whatever went wrong.
SECRET_KEYS = frozenset({"secondary_pass", "primary_pass", "control_token"})
# Structured keys: not overridable from the environment (see module docstring).
STRUCTURED_KEYS = frozenset({"tables", "volatile_fields", "secondaries"})


# --------------------------------------------------------------------------
# Helpers shared by the validators and the error formatter.


def show_value(value: object) -> str:
    """Render an offending value for an error message: JSON-like, one line, bounded."""
    if isinstance(value, str):
        text = json.dumps(value)
    else:
        try:
            text = json.dumps(value, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    # A whole YAML mapping pasted into the message would drown the key name.
    return text if len(text) <= 80 else text[:77] + "..."


def kind_of(value: object) -> str:
    """A YAML-flavoured name for the type of ``value`` ("a list", "a string")."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def is_identifier(name: object) -> bool:
    """Whether ``name`` is a plain SurrealDB identifier (safe to splice into SurrealQL)."""
    return isinstance(name, str) and _IDENTIFIER.fullmatch(name) is not None


def sdk_url(url: str) -> str:
    """The URL to hand to the SDK: ``url`` without one trailing ``/rpc`` (or ``/``).

    ``AsyncSurreal("ws://h:8000")`` appends ``/rpc`` itself, and config files
    conventionally carry it (``ws://h:8000/rpc``), so we accept both spellings
    and normalise here. Embedded URLs (``mem://``, ``surrealkv://path``) are
    returned unchanged.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in NETWORK_SCHEMES:
        return url
    path = parts.path.rstrip("/")
    if path.endswith("/rpc"):
        path = path[: -len("/rpc")]
    path = path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def redact_url(url: str) -> str:
    """``url`` with any password in its user-info replaced by ``***`` (for logs and summaries)."""
    # Without "://" (a scheme forgotten: "root:pw@db:8000") urlsplit would read
    # "root" as the scheme and find no password: read it as a network location.
    bare = "://" not in url
    try:
        parts = urlsplit("//" + url if bare else url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    userinfo = f"{parts.username or ''}:***"
    host = parts.netloc.rpartition("@")[2]
    out = urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, parts.fragment))
    return out.removeprefix("//") if bare else out


# --------------------------------------------------------------------------
# Validators. Each one turns the raw YAML (or environment string) value into
# the field's type and raises ValueError with the exact text the user sees.
# Writing them by hand, rather than leaning on pydantic's coercion, is what
# keeps every message short, consistent and aware of env strings ("4", "true").


def _int_at_least(minimum: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                number = None
        if number is None or number < minimum:
            raise ValueError(f"must be an integer >= {minimum} (got {show_value(value)})")
        return number

    return check


_SIZE = re.compile(r"(\d+)\s*(|b|kib|mib|gib|tib|kb|mb|gb|tb)", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_SIZE_UNITS.update({"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40})


def _byte_size(value: object) -> int:
    """A size in bytes: an integer, or a string such as "512MiB", "1GiB", "100MB"."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f'must be a size in bytes >= 0 such as 1073741824, "512MiB" or "1GiB" '
            f"(got {show_value(value)})"
        )
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def _duration(*, allow_zero: bool) -> Callable[[object], float]:
    bound = ">= 0" if allow_zero else "> 0"
    expected = f'must be a duration {bound} such as "5s", "250ms" or "1m30s"'

    def check(value: object) -> float:
        if isinstance(value, bool):
            raise ValueError(f"{expected} (got {show_value(value)})")
        if isinstance(value, int | float):
            try:
                seconds = float(value)
            except OverflowError:
                seconds = math.inf
        elif isinstance(value, str):
            seconds = parse_duration(value)  # its ValueError already quotes the text
        else:
            raise ValueError(f"{expected} (got {show_value(value)})")
        if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
            raise ValueError(f"{expected} (got {show_value(value)})")
        return seconds

    return check


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    # Strings come from the environment; YAML already turns yes/no/true/false into bools.
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"must be true or false (got {show_value(value)})")


def optional_bool(value: object) -> bool | None:
    # null (or "auto"/"" from the environment, which cannot say null) means "decide at run time".
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    try:
        return _bool(value)
    except ValueError:
        raise ValueError(
            f"must be true, false or null for auto (got {show_value(value)})"
        ) from None


def _string(*, non_empty: bool) -> Callable[[object], str]:
    def check(value: object) -> str:
        # YAML turns `database: 2024` into an int; silently str()-ing it would
        # also turn `0123` into "83", so ask for quotes instead.
        if not isinstance(value, str):
            raise ValueError(f"must be a string; quote it in YAML (got {show_value(value)})")
        if non_empty and not value.strip():
            raise ValueError("must not be empty")
        return value

    return check


def _secret(value: object) -> object:
    # Never echo the value: a password typed as a bare number is still a password.
    if isinstance(value, str | SecretStr):
        return value
    raise ValueError("must be a string; quote it in YAML (value not shown)")


def _url(value: object) -> str:
    example = 'e.g. "ws://127.0.0.1:8000/rpc" or "mem://"'
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a URL, {example} (got {show_value(value)})")
    text = value.strip()
    if "://" not in text:
        # urlsplit("localhost:8000") reads "localhost" as the scheme; say what is missing instead.
        raise ValueError(
            f"must be a URL with a scheme, {example} (got {show_value(redact_url(text))})"
        )
    try:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in SUPPORTED_SCHEMES:
            raise ValueError(f'scheme "{parts.scheme}" is not supported ({_SCHEME_HINT})')
        if scheme in NETWORK_SCHEMES:
            if not parts.hostname:
                raise ValueError(
                    f"a {scheme}:// URL needs a host, e.g. "
                    f'"{scheme}://127.0.0.1:8000" (got {show_value(redact_url(text))})'
                )
            _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as exc:
        message = str(exc)
        if message.startswith(("scheme ", "a ")):
            raise
        raise ValueError(
            f"is not a valid URL: {message} (got {show_value(redact_url(text))})"
        ) from None
    return text


def listen_value(value: object) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None  # metrics endpoint disabled
    expected = 'must be "host:port" with a port 0-65535, or null to disable'
    if not isinstance(value, str):
        raise ValueError(f"{expected} (got {show_value(value)})")
    text = value.strip()
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # bracketed IPv6 literal, e.g. [::1]:9464
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{expected} (got {show_value(value)})")
    return text


def _log_level(value: object) -> str:
    choices = ("debug", "info", "warning", "error")
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    raise ValueError(f"must be one of {', '.join(choices)} (got {show_value(value)})")


def _identifier(kind: str, *, echo: bool = True) -> Callable[[object], str]:
    # echo=False for mapping keys: the error path already ends with the name.
    def check(value: object) -> str:
        if not is_identifier(value):
            what = f"{show_value(value)} is" if echo else "is"
            raise ValueError(f"{what} not a valid {kind} ({_IDENTIFIER_RULE})")
        assert isinstance(value, str)  # for mypy: is_identifier checked it
        return value

    return check


def _field_names(*, non_empty: bool) -> Callable[[object], list[str]]:
    check_name = _identifier("field name")

    def check(value: object) -> list[str]:
        if value is None and not non_empty:
            return []
        if not isinstance(value, list) or (non_empty and not value):
            wanted = "a non-empty list" if non_empty else "a list"
            raise ValueError(f"must be {wanted} of field names (got {show_value(value)})")
        names = [check_name(item) for item in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"lists {show_value(duplicates[0])} more than once")
        return names

    return check


def tables_value(value: object) -> object:
    if value is None:
        return None  # every table of the primary database
    if isinstance(value, list):
        # Shorthand: `tables: [events, entities]` = each with default options.
        if not all(isinstance(item, str) for item in value):
            raise ValueError(
                f"must be a mapping of table name to options (got {show_value(value)})"
            )
        value = dict.fromkeys(value)
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping of table name to options (got {show_value(value)})")
    if not value:
        raise ValueError("must name at least one table (omit the key to replicate every table)")
    # `events:` with nothing after it is YAML null: a table with default options.
    return {name: ({} if options is None else options) for name, options in value.items()}


Duration = Annotated[float, BeforeValidator(_duration(allow_zero=False))]
DurationOrZero = Annotated[float, BeforeValidator(_duration(allow_zero=True))]
Password = Annotated[SecretStr, BeforeValidator(_secret)]
Url = Annotated[str, BeforeValidator(_url)]
Text = Annotated[str, BeforeValidator(_string(non_empty=False))]
Name = Annotated[str, BeforeValidator(_string(non_empty=True))]
Bool = Annotated[bool, BeforeValidator(_bool)]
TableName = Annotated[str, BeforeValidator(_identifier("table name", echo=False))]
KeyFields = Annotated[list[str], BeforeValidator(_field_names(non_empty=True))]
FieldNames = Annotated[list[str], BeforeValidator(_field_names(non_empty=False))]
FieldName = Annotated[str, BeforeValidator(_identifier("field name"))]
LogLevel = Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_log_level)]


AtLeastOne = Annotated[int, BeforeValidator(_int_at_least(1))]
AtLeastZero = Annotated[int, BeforeValidator(_int_at_least(0))]
ByteSize = Annotated[int, BeforeValidator(_byte_size)]
