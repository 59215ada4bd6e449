"""The ``secondaries:`` list: several named secondaries, each with a priority.

Rules of this file:

- a secondary is ``{name, url, user, pass, namespace, database, priority}``;
  ``name`` matches ``[a-z0-9_-]+`` and is unique in the list; ``priority`` is
  an integer, lower wins among secondaries in merged reads (the primary always
  wins);
- the flat ``secondary_*`` keys stay valid and mean one secondary named
  :data:`FLAT_NAME` with priority 0; giving both forms is a config error;
- a secondary's ``namespace`` and ``database`` not given are the primary's
  (``primary_namespace``/``primary_database``, whose own defaults stay the
  original module's ``remembrances``/``production``); given, they stand;
- a password may come from the file, a systemd credential named
  ``secondaries_<name>_pass`` (``LoadCredential=``; read from
  ``$CREDENTIALS_DIRECTORY``), or the environment variable
  ``SYNCD_SECONDARIES_<NAME>_PASS`` (name upper-cased, ``-`` → ``_``), the
  later overriding the earlier. The flat keys' ``primary_pass``,
  ``secondary_pass`` and ``control_token`` take credentials of those names.

Pure apart from reading credential files; :mod:`syncd.config` validates with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from syncd.config.values import ENV_PREFIX, Name, Password, Text, Url, sdk_url, show_value
from syncd.errors import UnknownSecondary

__all__ = [
    "FLAT_NAME",
    "NAME_RULE",
    "Endpoint",
    "SecondaryConfig",
    "apply_secret_sources",
    "credential",
    "env_conflict",
    "follow_primary",
    "form_problem",
    "into_itself",
    "password_variable",
    "secondaries_value",
    "select",
]

#: The name of the one secondary the flat ``secondary_*`` keys configure.
FLAT_NAME = "secondary"
#: What a secondary's name may be made of (it names files, metrics and CLI flags).
NAME_RULE = re.compile(r"[a-z0-9_-]+")
#: Keys whose values may come from a systemd credential of the same name.
CREDENTIAL_KEYS = ("primary_pass", "secondary_pass", "control_token")


def _name(value: object) -> str:
    if not isinstance(value, str) or not NAME_RULE.fullmatch(value):
        raise ValueError(f"must be lower-case letters, digits, _ and - (got {show_value(value)})")
    return value


def _priority(value: object) -> int:
    # A bool is an int in Python; `priority: yes` is a typo, not 1.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"must be an integer, lower wins (got {show_value(value)})")


class Endpoint(BaseModel):
    """Where a database is and how to sign in: the primary's keys, or one secondary's."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, use_attribute_docstrings=True
    )

    url: Url
    """The database's URL (``ws``/``wss``/``http``/``https``, or embedded)."""
    user: Text = "root"
    """User to sign in as."""
    password: Password = Field(default=SecretStr(""), alias="pass")
    """``pass`` in YAML; empty: do not sign in."""
    namespace: Name = "remembrances"
    """Namespace on this database."""
    database: Name = "production"
    """Database on this database's server."""


class SecondaryConfig(Endpoint):
    """One entry of ``secondaries:`` (or the flat ``secondary_*`` keys, named ``secondary``)."""

    name: Annotated[str, BeforeValidator(_name)]
    """Names its state, metrics label and ``--secondary`` flag: ``[a-z0-9_-]+``, unique."""
    priority: Annotated[int, BeforeValidator(_priority)] = 0
    """Merged reads: among secondaries, the lower number's row wins (the primary always wins)."""


def password_variable(name: str) -> str:
    """The environment variable holding secondary ``name``'s password."""
    return f"{ENV_PREFIX}SECONDARIES_{name.upper().replace('-', '_')}_PASS"


def credential(key: str, env: Mapping[str, str]) -> str | None:
    """The systemd credential ``key`` (``$CREDENTIALS_DIRECTORY/<key>``), if there is one.

    Trailing newlines are dropped (``echo secret > file`` adds one).
    """
    directory = env.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    try:
        return (Path(directory) / key).read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        # Named, never shown: the value of a credential is a secret.
        raise ValueError(f"credential {key}: cannot read it ({type(exc).__name__})") from None


def apply_secret_sources(data: dict[str, object], env: Mapping[str, str]) -> set[str]:
    """Fill passwords from credentials and ``SYNCD_SECONDARIES_<NAME>_PASS``; the keys set.

    Flat keys take credentials here (their ``SYNCD_<KEY>`` variables are applied
    after, with every other scalar key). Entries of ``secondaries`` are copied,
    never changed in place: the caller's mapping stays as it was.
    """
    used: set[str] = set()
    for key in CREDENTIAL_KEYS:
        if key == "secondary_pass" and "secondaries" in data:
            continue  # the flat secondary is not configured: its credential means nothing
        value = credential(key, env)
        if value is not None:
            data[key] = value
            used.add(key)
    entries = data.get("secondaries")
    if not isinstance(entries, list):
        return used
    filled: list[object] = []
    for entry in entries:
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            name = str(entry["name"])
            entry = dict(entry)
            value = credential(f"secondaries_{name}_pass", env)
            value = env.get(password_variable(name), value)
            if value is not None:
                entry["pass"] = value
        filled.append(entry)
    data["secondaries"] = filled
    return used


def follow_primary(data: Mapping[str, object], defaults: Mapping[str, str]) -> dict[str, object]:
    """``data`` with each secondary's missing namespace and database set to the primary's.

    ``defaults`` holds ``primary_namespace``/``primary_database`` for a config
    that names neither. Only the form in use is filled (the flat keys, or the
    entries of ``secondaries:``), so the two forms never seem both given.
    """
    out = dict(data)
    place = {
        side: out.get(f"primary_{side}", defaults[f"primary_{side}"])
        for side in ("namespace", "database")
    }
    entries = out.get("secondaries")
    if entries is None:
        for side, value in place.items():
            out.setdefault(f"secondary_{side}", value)
        return out
    if isinstance(entries, list):
        out["secondaries"] = [
            {**place, **entry} if isinstance(entry, Mapping) else entry for entry in entries
        ]
    return out


def secondaries_value(value: object) -> object:
    """The ``secondaries`` key before validation: a non-empty list of unique names."""
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        shown = show_value(value) if not isinstance(value, list) else "[]"
        raise ValueError(
            "must be a list of secondaries, each {name, url, user, pass, namespace, "
            f"database, priority}} (got {shown})"
        )
    seen: set[str] = set()
    for entry in value:
        if isinstance(entry, Mapping):
            name = entry.get("name")
            if isinstance(name, str):
                if name in seen:
                    raise ValueError(f"name {show_value(name)} is given twice (names are unique)")
                seen.add(name)
    return value


def form_problem(listed: bool, flat_keys: list[str], has_url: bool) -> str | None:
    """What is wrong with how the secondaries are given (both forms, or neither), if anything."""
    if listed and flat_keys:
        return (
            "secondaries: give either the secondaries list or the flat secondary_* keys, "
            f"not both ({', '.join(flat_keys)} also set)"
        )
    if not listed and not has_url:
        return (
            'secondary_url: required, where replicated writes go, e.g. "ws://archive:8000/rpc" '
            "(or SYNCD_SECONDARY_URL in the environment, or a secondaries: list)"
        )
    return None


def into_itself(
    primary: tuple[str, str, str], secondaries: list[SecondaryConfig], *, flat: bool
) -> str | None:
    """Which secondary is the primary itself (``(sdk url, namespace, database)``), if one is.

    Replicating a database into itself would write every change back to its
    own changefeed, forever.
    """
    url, namespace, database = primary
    for secondary in secondaries:
        if (
            sdk_url(secondary.url).lower() == url.lower()
            and secondary.namespace == namespace
            and secondary.database == database
        ):
            where = "secondary_url" if flat else f"secondaries.{secondary.name}.url"
            return (
                f"{where}: same server, namespace and database as the primary "
                "(a database cannot replicate into itself; a secondary's namespace and "
                "database default to the primary's: name another one)"
            )
    return None


def env_conflict(listed: bool, from_env: set[str]) -> str | None:
    """Why a ``secondaries:`` list meets flat ``secondary_*`` keys set from the environment.

    Said apart from :func:`form_problem`: the operator must unset a variable
    (often left by an older unit file), not edit the file.
    """
    ambient = sorted(f"{ENV_PREFIX}{k.upper()}" for k in from_env if k.startswith("secondary_"))
    if not listed or not ambient:
        return None
    return (
        f"secondaries: the environment sets {', '.join(ambient)} for the flat secondary_* "
        "keys; unset it (a secondaries: list takes each password from "
        "SYNCD_SECONDARIES_<NAME>_PASS)"
    )


def select(configured: Sequence[str], names: Sequence[str] | None) -> list[str]:
    """The secondaries ``names`` picks out of ``configured`` (none: every one), in the
    configured (priority) order, each once.

    Raises:
        UnknownSecondary: a name not configured (one line naming it and the others).
    """
    if not names:
        return list(configured)
    for name in names:
        if name not in configured:
            known = ", ".join(configured)
            raise UnknownSecondary(f"unknown secondary {name!r} (configured: {known})")
    return [name for name in configured if name in names]
