"""PauseControl: gates, pause file and metrics kept in step.

Idempotent changes, a pause persisted before it takes effect, an unknown name
refused, and the pauses of secondaries not served here kept in the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from prometheus_client import CollectorRegistry

from syncd.errors import ConfigError, UnknownSecondary
from syncd.metrics import Metrics
from syncd.pipeline.pause import PauseFile
from syncd.service.pausing import PauseControl, PauseState
from tests.support.waiting import until

NAMES = ("a", "b")


def make(state: Path, names: tuple[str, ...] = NAMES) -> tuple[PauseControl, Metrics]:
    metrics = Metrics(CollectorRegistry())
    return PauseControl(state, metrics, names=names), metrics


def gauge(metrics: Metrics, attr: str, name: str) -> float:
    value: float = getattr(metrics, attr).labels(name)._value.get()
    return value


async def test_every_secondary_starts_running_and_shown_so(tmp_path: Path) -> None:
    pauses, metrics = make(tmp_path / "state")
    pauses.start()
    assert pauses.state("a") == PauseState("a", False, None)
    assert not pauses.is_paused()
    assert pauses.status("b") == {"paused": False, "paused_since": None}
    assert gauge(metrics, "paused", "a") == 0
    assert not (tmp_path / "state" / "paused.json").exists()


async def test_pause_one_is_persisted_shown_and_held(tmp_path: Path) -> None:
    pauses, metrics = make(tmp_path / "state")
    pauses.start()
    [state] = pauses.pause("a")
    assert state.secondary == "a" and state.paused and state.since is not None
    assert PauseFile(tmp_path / "state").load() == {"a": state.since}
    assert pauses.gate("a").paused and not pauses.gate("b").paused
    assert pauses.is_paused("a") and not pauses.is_paused()
    assert gauge(metrics, "paused", "a") == 1
    assert gauge(metrics, "paused_since", "a") == state.since
    assert gauge(metrics, "paused", "b") == 0
    assert state.as_dict() == {"secondary": "a", "paused": True, "since": state.since}


async def test_pausing_again_keeps_the_time_the_pause_started(tmp_path: Path) -> None:
    pauses, _ = make(tmp_path / "state")
    pauses.start()
    [first] = pauses.pause("a")
    before = (tmp_path / "state" / "paused.json").read_bytes()
    [again] = pauses.pause("a")
    assert again.since == first.since
    assert (tmp_path / "state" / "paused.json").read_bytes() == before


async def test_pause_all_pauses_the_rest_and_keeps_earlier_times(tmp_path: Path) -> None:
    pauses, _ = make(tmp_path / "state")
    pauses.start()
    [a] = pauses.pause("a")
    states = pauses.pause()
    assert [s.secondary for s in states] == ["a", "b"]
    assert all(s.paused for s in states)
    assert states[0].since == a.since
    assert pauses.is_paused()
    assert set(PauseFile(tmp_path / "state").load()) == {"a", "b"}


async def test_resume_of_a_running_secondary_writes_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    pauses, _ = make(state)
    pauses.start()
    [s] = pauses.resume("a")
    assert s == PauseState("a", False, None)
    assert not state.exists()  # not even the directory was made


async def test_resume_removes_the_pause_and_the_file_when_none_is_left(tmp_path: Path) -> None:
    pauses, metrics = make(tmp_path / "state")
    pauses.start()
    pauses.pause()
    pauses.resume("a")
    assert PauseFile(tmp_path / "state").load().keys() == {"b"}
    assert not pauses.gate("a").paused
    assert gauge(metrics, "paused", "a") == 0
    assert gauge(metrics, "paused_since", "a") == 0
    pauses.resume()
    assert not (tmp_path / "state" / "paused.json").exists()


async def test_an_unknown_name_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    pauses, _ = make(tmp_path / "state")
    pauses.start()
    for change in (pauses.pause, pauses.resume, pauses.is_paused):
        with pytest.raises(UnknownSecondary, match=r"unknown secondary 'c'.*configured: a, b"):
            change("c")
    assert not pauses.is_paused("a") and not pauses.is_paused("b")
    assert not (tmp_path / "state" / "paused.json").exists()


async def test_a_pause_that_cannot_be_persisted_does_not_take_effect(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.write_text("a file where the directory should be")
    pauses, metrics = make(state)
    pauses.start()
    with pytest.raises(ConfigError, match=f"state_dir {state}"):
        pauses.pause("a")
    assert not pauses.gate("a").paused
    assert gauge(metrics, "paused", "a") == 0


async def test_a_resume_that_cannot_be_persisted_does_not_take_effect(tmp_path: Path) -> None:
    state = tmp_path / "state"
    pauses, _ = make(state)
    pauses.start()
    pauses.pause("a")
    (state / "paused.json").unlink()
    state.rmdir()
    state.write_text("a file now")
    with pytest.raises(ConfigError, match="state_dir"):
        pauses.resume("a")
    assert pauses.gate("a").paused


async def test_start_takes_up_saved_pauses_and_keeps_others_in_the_file(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    PauseFile(state).save({"a": 100.0, "gone": 50.0})
    pauses, metrics = make(state)
    pauses.start()
    assert pauses.state("a") == PauseState("a", True, 100.0)
    assert gauge(metrics, "paused_since", "a") == 100.0
    with pytest.raises(KeyError):
        pauses.state("gone")
    pauses.pause("b")
    saved = PauseFile(state).load()
    assert saved["gone"] == 50.0 and saved["a"] == 100.0 and "b" in saved
    pauses.resume()
    # "gone" is not served here: its pause is not ours to drop
    assert PauseFile(state).load() == {"gone": 50.0}


async def test_a_malformed_file_stops_the_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "paused.json").write_text(json.dumps({"version": 9, "paused": {}}))
    pauses, _ = make(state)
    with pytest.raises(ConfigError, match="pause file"):
        pauses.start()


async def test_changes_before_start_run_on_the_caller(tmp_path: Path) -> None:
    pauses, _ = make(tmp_path / "state")
    [s] = pauses.from_thread("pause", "b")
    assert s.paused
    [s] = pauses.from_thread("resume", "b")
    assert not s.paused


async def test_from_a_thread_after_start_the_change_runs_on_the_loop(tmp_path: Path) -> None:
    pauses, _ = make(tmp_path / "state")
    pauses.start()
    states = await anyio.to_thread.run_sync(pauses.from_thread, "pause", None)
    assert [s.paused for s in states] == [True, True]
    states = await anyio.to_thread.run_sync(pauses.from_thread, "resume", "a")
    assert [(s.secondary, s.paused) for s in states] == [("a", False)]


async def test_unless_paused_returns_when_the_wait_does(tmp_path: Path) -> None:
    pauses, _ = make(tmp_path / "state")
    pauses.start()
    waited: list[bool] = []

    async def wait() -> None:
        waited.append(True)

    with anyio.fail_after(30):
        await pauses.unless_paused(wait)
    assert waited == [True]


async def test_unless_paused_returns_at_once_when_already_paused(tmp_path: Path) -> None:
    pauses, _ = make(tmp_path / "state")
    pauses.start()
    pauses.pause("a")

    async def never() -> None:
        await anyio.sleep_forever()

    with anyio.fail_after(30):
        await pauses.unless_paused(never, "a")


async def test_unless_paused_stops_waiting_when_every_secondary_pauses(tmp_path: Path) -> None:
    pauses, _ = make(tmp_path / "state")
    pauses.start()
    started = anyio.Event()
    finished: list[bool] = []

    async def never() -> None:
        started.set()
        await anyio.sleep_forever()

    async def waiter() -> None:
        await pauses.unless_paused(never)
        finished.append(True)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await started.wait()
            pauses.pause("a")
            await anyio.wait_all_tasks_blocked()
            assert finished == []  # "b" still runs
            pauses.pause("b")
            await until(lambda: finished == [True], 30)
