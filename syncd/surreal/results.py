"""Reading the SDK's query responses exactly as the SDK itself does.

The wrapper answers ``query`` with the SDK's own semantics (the first
statement's result) and the SDK's own exceptions; those checks live in the
SDK's ``UtilsMixin``, and this is the one place syncd touches them.
"""

from __future__ import annotations

from typing import Any

from surrealdb.connections.utils_mixin import UtilsMixin

__all__ = ["first_result"]


def first_result(response: Any) -> Any:
    """The first statement's result of a ``query_raw`` response, raising as the SDK does."""
    UtilsMixin.check_response_for_error(response, "query")
    UtilsMixin.check_response_for_result(response, "query")
    # 2.0 raises on a failed first statement; 1.0.x returns its error text.
    check_statement = getattr(UtilsMixin, "_check_query_result", None)
    if check_statement is not None:
        check_statement(response["result"][0])
    return response["result"][0]["result"]
