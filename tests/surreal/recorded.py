"""Read the frames ``record_frames`` wrote, and reduce them to what must not drift."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from syncd.surreal.dialect import failure_of
from tests.surreal.tagged import from_json

FRAMES_DIR = Path(__file__).with_name("frames")


@dataclass(frozen=True)
class Frame:
    """One recorded case: the request, and the answer or what the engine raised."""

    name: str
    request: dict[str, Any]
    answer: dict[str, Any] | None
    raised: dict[str, str] | None

    @property
    def results(self) -> list[Any]:
        """The statement results of a ``query`` answer."""
        assert self.answer is not None and "result" in self.answer, self.name
        return list(self.answer["result"])

    @property
    def sql(self) -> str:
        """The query text of a ``query`` request."""
        return str(self.request["params"][0])

    def error(self) -> Any:
        """The error in the shape syncd meets it: an exception, or the error frame."""
        if self.raised is not None:
            kind = {"RuntimeError": RuntimeError, "ValueError": ValueError}[self.raised["type"]]
            return kind(self.raised["message"])
        assert self.answer is not None
        return self.answer


@cache
def document(generation: int) -> dict[str, Any]:
    """The whole recorded file of a generation."""
    text = (FRAMES_DIR / f"v{generation}.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def frames(generation: int) -> dict[str, Frame]:
    """The recorded frames of a generation, by case name."""
    out: dict[str, Frame] = {}
    for raw in document(generation)["frames"]:
        answer = from_json(raw["answer"]) if "answer" in raw else None
        request = from_json(raw["request"])
        out[raw["name"]] = Frame(raw["name"], request, answer, raw.get("raised"))
    return out


def kinds_of(sql: str) -> list[str]:
    """First keyword of each top-level statement (the fixture SQL has no ``;`` in strings)."""
    return [part.split(None, 1)[0].upper() for part in sql.split(";") if part.strip()]


def shape(answer: dict[str, Any] | None, raised: dict[str, str] | None) -> Any:
    """What a frame says, without what changes run to run (times, stamps, tokens).

    For an answer: an error's kind, or per statement its status and, for an
    error, its kind. A raised exception: its kind.
    """
    if raised is not None:
        failure = failure_of(RuntimeError(raised["message"]))
        return ("raised", failure.kind if failure else None)
    assert answer is not None
    if "error" in answer:
        failure = failure_of(answer)
        return ("error", failure.kind if failure else None)
    result = answer.get("result")
    if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
        return ("result",)
    statuses = []
    for entry in result:
        failure = failure_of(entry)
        statuses.append(entry.get("status") if failure is None else failure.kind)
    return ("statements", tuple(statuses))
