"""A config as it may be shown: every key's effective value, secrets masked."""

from __future__ import annotations

from pydantic import BaseModel, SecretStr

from syncd.config.secondaries import SecondaryConfig, password_variable
from syncd.config.values import redact_url
from syncd.durations import format_duration

__all__ = ["summarize"]


def summarize(config: BaseModel) -> dict[str, object]:
    """Every key of ``config`` and its effective value, safe to print or log (see
    :meth:`syncd.config.Config.summary`)."""
    out: dict[str, object] = {}
    for attr, info in type(config).model_fields.items():
        name = info.alias or attr
        value = getattr(config, attr)
        if isinstance(value, SecretStr):
            out[name] = "***" if value.get_secret_value() else None
        elif isinstance(value, float):  # every float field is a duration
            out[name] = format_duration(value)
        elif name in ("secondary_url", "primary_url"):
            out[name] = None if value is None else redact_url(value)
        elif name == "secondaries":
            out[name] = None if value is None else [_shown(s) for s in value]
        elif name == "tables":
            out[name] = (
                None
                if value is None
                else {t: opts.model_dump(mode="json", by_alias=True) for t, opts in value.items()}
            )
        elif isinstance(value, BaseModel):
            out[name] = value.model_dump(mode="json")
        elif isinstance(value, list):
            out[name] = list(value)
        else:
            out[name] = value
    return out


def _shown(secondary: SecondaryConfig) -> dict[str, object]:
    """One secondary for ``summary()``: URL redacted, password masked."""
    return {
        "name": secondary.name,
        "url": redact_url(secondary.url),
        "user": secondary.user,
        "pass": "***" if secondary.password.get_secret_value() else None,
        "namespace": secondary.namespace,
        "database": secondary.database,
        "priority": secondary.priority,
        "pass_env": password_variable(secondary.name),
    }
