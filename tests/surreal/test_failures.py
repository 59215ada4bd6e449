"""Error classification: every error both engines were recorded answering, and the refusal
texts the worker meets (the values they quote never reach the kind)."""

from __future__ import annotations

import pytest

from syncd.surreal.dialect import ErrorKind, classify, failure_of, is_undefined_table
from syncd.surreal.values import CodecError
from tests.surreal.recorded import frames

K = ErrorKind
# case: (kind on 2.x, kind on 3.x); None: the engine did not fail.
EXPECTED: dict[str, tuple[ErrorKind | None, ErrorKind | None]] = {
    "select_undefined_table": (None, K.UNDEFINED_TABLE),
    "count_undefined_table": (None, K.UNDEFINED_TABLE),
    "update_undefined_table": (None, K.UNDEFINED_TABLE),
    "natural_upsert_old_form_undefined": (None, K.UNDEFINED_TABLE),
    "show_changes_since_param": (K.PARSE, K.PARSE),
    "parse_error": (K.PARSE, K.PARSE),
    "type_thing": (None, K.PARSE),
    "coercion_error": (K.FIELD_TYPE, K.FIELD_TYPE),
    "assert_error": (K.FIELD_ASSERTION, K.FIELD_ASSERTION),
    "schemafull_extra_field": (None, K.REFUSED_VALUE),  # 2.x drops the field silently
    "relation_refused": (K.RELATION, K.RELATION),
    "undecodable_value": (K.PAYLOAD, K.PAYLOAD),  # raised by both engines
    "unique_index_error": (K.UNIQUE_INDEX, K.UNIQUE_INDEX),
    "already_exists": (K.ALREADY_EXISTS, K.ALREADY_EXISTS),
    "signin_wrong_password": (K.AUTH, K.AUTH),
    "permission_error": (K.PERMISSION, K.PERMISSION),
    "anonymous_query": (None, K.AUTH),  # 2.x never enforces auth in-process
    "method_not_found": (K.OTHER, K.OTHER),
    "invalid_params": (K.OTHER, K.OTHER),
    "stray_commit": (K.OTHER, K.OTHER),
}


def _first_failure(generation: int, case: str) -> ErrorKind | None:
    frame = frames(generation)[case]
    if frame.raised is not None or (frame.answer is not None and "error" in frame.answer):
        return classify(frame.error())
    for result in frame.results:
        failure = failure_of(result)
        if failure is not None:
            return failure.kind
    return None


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_recorded_errors_classify_alike(case: str) -> None:
    assert (_first_failure(2, case), _first_failure(3, case)) == EXPECTED[case]


@pytest.mark.parametrize("case", ["parse_error", "undecodable_value", "signin_wrong_password"])
def test_wrapped_2x_exception_classifies_like_the_exception(case: str) -> None:
    # The devserver (and `surreal start`) turn the 2.x engine's exception into a frame.
    frame = frames(2)[case]
    assert frame.raised is not None
    wrapped = {"id": case, "error": {"code": -32000, "message": frame.raised["message"]}}
    assert classify(wrapped) == classify(frame.error()) == classify(frame.raised["message"])


def test_transaction_statements_classify_alike() -> None:
    v2 = [failure_of(r) for r in frames(2)["transaction_failed"].results]
    v3 = [failure_of(r) for r in frames(3)["transaction_failed"].results]
    assert [f.kind for f in v2 if f] == [K.NOT_EXECUTED, K.FIELD_TYPE]
    assert [f.kind for f in v3 if f] == [K.NOT_EXECUTED, K.FIELD_TYPE, K.NOT_EXECUTED]
    cancelled = [failure_of(r) for r in frames(3)["transaction_cancel"].results]
    assert [f.kind for f in cancelled if f] == [K.NOT_EXECUTED]


def test_message_prefix_is_dropped() -> None:
    failure = failure_of(RuntimeError("There was a problem with the database: Parse error: x"))
    assert failure is not None and failure.message == "Parse error: x"
    assert failure.kind is K.PARSE


def test_non_errors() -> None:
    assert failure_of({"status": "OK", "result": []}) is None
    assert failure_of({"id": "x", "result": 1}) is None
    assert failure_of(42) is None
    with pytest.raises(ValueError, match="not an error"):
        classify({"status": "OK", "result": None})
    assert not is_undefined_table({"status": "OK", "result": []})


def test_sdk_shapes() -> None:
    # The SDK decodes NONE to None and raises with the message text.
    assert classify({"status": "ERR", "result": "The table 'x' does not exist", "type": None})
    assert is_undefined_table(Exception("The table 'kv' does not exist"))
    assert classify({"error": "Parse error: nope"}) is K.PARSE
    thrown = "An error occurred: The table 'nothere' does not exist"  # 3.x, inside a block
    assert is_undefined_table({"status": "ERR", "kind": "Thrown", "result": thrown})


def test_structured_kinds_win_over_text() -> None:
    err = {"status": "ERR", "kind": "NotFound", "details": {"kind": "Table"}, "result": "?"}
    assert classify(err) is K.UNDEFINED_TABLE
    denied = {
        "kind": "NotAllowed",
        "details": {"kind": "Auth", "details": {"kind": "NotAllowed"}},
        "message": "IAM error: whatever the words",
    }
    assert classify(denied) is K.PERMISSION
    expired = {"kind": "NotAllowed", "details": {"kind": "Auth"}, "message": "?"}
    assert classify(expired) is K.AUTH


def test_sdk_server_errors_keep_3x_kinds() -> None:
    from surrealdb.errors import NotAllowedError, NotFoundError

    missing = NotFoundError("NotFound", "?", details={"kind": "Table", "details": {"name": "x"}})
    assert classify(missing) is K.UNDEFINED_TABLE
    denied = NotAllowedError("NotAllowed", "There was a problem with authentication")
    assert classify(denied) is K.AUTH


# Refusal texts as the worker meets them (2.3 engine unless noted); the kind is what logs name.
@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Found 'CONTENT-X' for field `n`, with record `t:1`, but expected a int", K.FIELD_TYPE),
        ("Found 'A\nB' for field `n`, with record `t:1`, but expected a int", K.FIELD_TYPE),
        (
            "Found 'CONTENT-LONG' for field `s`, with record `t:2`, but field must conform to: "
            "$value = NONE OR string::len($value) < 5",
            K.FIELD_ASSERTION,
        ),
        (
            "Found changed value for field `n`, with record `t:1`, but field is readonly",
            K.REFUSED_VALUE,
        ),
        ("Database index `uk` already contains 'SECRET-K', with record `u:1`", K.UNIQUE_INDEX),
        ("Found record: `rel:1` which is a relation, but expected a  RELATION", K.RELATION),
        ("Database record `t:1` already exists", K.ALREADY_EXISTS),
        ("The table 'nope' does not exist", K.UNDEFINED_TABLE),
        ("IAM error: Not enough permissions to perform this action", K.PERMISSION),
        ("Parse error: Unexpected token", K.PARSE),
        ("The query was not executed because it exceeded the timeout", K.TIMEOUT),
        ("Failed to decode CBOR request: Error: Encountered an unknown CBOR tag", K.PAYLOAD),
        ("something nobody has seen before: 'VALUE'", K.OTHER),
    ],
)
def test_refusal_texts(text: str, kind: ErrorKind) -> None:
    assert classify(text) is kind
    failure = failure_of(text)
    assert failure is not None and failure.message == text  # whole, for the dead-letter file


def test_a_value_syncd_cannot_encode_is_a_payload_failure() -> None:
    assert classify(CodecError("SurrealDB has no value for Widget <Widget>")) is K.PAYLOAD


def test_a_kind_never_carries_the_text() -> None:
    for text in ("Found 'SECRET' for field `n`, but expected a int", "SECRET"):
        assert "SECRET" not in classify(text).value
