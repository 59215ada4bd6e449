"""Error kinds: the secondary's refusal texts (measured on the 2.3 engine), values dropped."""

from __future__ import annotations

import pytest

from syncd.sink.rejections import KINDS, error_kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Found 'CONTENT-X' for field `n`, with record `t:1`, but expected a int", "field_type"),
        (
            "Found 'CONTENT-LONG' for field `s`, with record `t:2`, but field must conform to: "
            "$value = NONE OR string::len($value) < 5",
            "field_assertion",
        ),
        ("Database index `uk` already contains 'SECRET-K', with record `u:1`", "unique_index"),
        ("Found record: `rel:1` which is a relation, but expected a  RELATION", "relation"),
        ("Database record `t:1` already exists", "record_exists"),
        ("The table 'nope' does not exist", "not_found"),
        ("IAM error: Not enough permissions to perform this action", "permission"),
        ("Parse error: Unexpected token", "parse"),
        ("The query was not executed because it exceeded the timeout", "timeout"),
        ("Failed to decode CBOR request: Error: Encountered an unknown CBOR tag", "payload"),
        ("unexpected response to a per-record upsert", "response"),
        ("something nobody has seen before: 'VALUE'", "other"),
    ],
)
def test_kinds(text: str, kind: str) -> None:
    assert error_kind(text) == kind
    assert kind in KINDS


def test_a_kind_never_carries_the_text() -> None:
    for text in ("Found 'SECRET' for field `n`, but expected a int", "SECRET"):
        assert "SECRET" not in error_kind(text)
