"""Per-table options: defaults, checks, and ``prefer: newest`` needing a version."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from syncd.config.tables import TableConfig


def test_defaults() -> None:
    options = TableConfig()
    assert (options.key, options.volatile_fields, options.version, options.prefer) == (
        None, [], None, "primary",
    )  # fmt: skip


def test_a_full_entry() -> None:
    options = TableConfig.model_validate(
        {"key": ["tenant", "slug"], "volatile_fields": ["seen"], "version": "updated_at",
         "prefer": "newest"}
    )  # fmt: skip
    assert options.key == ["tenant", "slug"]
    assert options.version == "updated_at" and options.prefer == "newest"


def test_newest_needs_a_version() -> None:
    with pytest.raises(ValidationError, match="prefer: newest needs a version field"):
        TableConfig(prefer="newest")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"key": []}, "non-empty list of field names"),
        ({"key": ["a", "a"]}, 'lists "a" more than once'),
        ({"version": "updated at"}, "not a valid field name"),
        ({"prefer": "secondary"}, "prefer"),
        ({"keys": ["a"]}, "Extra inputs are not permitted"),
    ],
)
def test_bad_entries(data: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        TableConfig.model_validate(data)


def test_options_are_frozen() -> None:
    options = TableConfig()
    with pytest.raises(ValidationError):
        options.prefer = "newest"  # type: ignore[misc]
