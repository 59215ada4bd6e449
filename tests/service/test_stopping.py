"""unless_stopped: a step a stop request cuts short, and the errors it lets through bare."""

from __future__ import annotations

import anyio
import pytest

from syncd.errors import ConfigError
from syncd.service.stopping import Stopped, unless_stopped


async def test_a_step_that_finishes_returns() -> None:
    done: list[bool] = []

    async def step() -> None:
        done.append(True)

    with anyio.fail_after(30):
        await unless_stopped(anyio.Event(), step)
    assert done == [True]


async def test_a_stop_cancels_the_waiting_step_and_raises_stopped() -> None:
    stop = anyio.Event()
    started = anyio.Event()
    reached_end: list[bool] = []

    async def step() -> None:
        started.set()
        await anyio.sleep_forever()
        reached_end.append(True)

    async def stopper() -> None:
        await started.wait()
        stop.set()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(stopper)
            with pytest.raises(Stopped):
                await unless_stopped(stop, step)
    assert reached_end == []


async def test_a_stop_already_requested_stops_before_anything_waits() -> None:
    stop = anyio.Event()
    stop.set()

    async def step() -> None:
        await anyio.sleep_forever()

    with anyio.fail_after(30), pytest.raises(Stopped):
        await unless_stopped(stop, step)


async def test_a_syncd_error_comes_out_bare() -> None:
    async def step() -> None:
        raise ConfigError("bad key")

    with anyio.fail_after(30), pytest.raises(ConfigError, match=r"^bad key$"):
        await unless_stopped(anyio.Event(), step)


async def test_a_stopped_raised_by_the_step_is_a_stop() -> None:
    async def step() -> None:
        raise Stopped

    with anyio.fail_after(30), pytest.raises(Stopped):
        await unless_stopped(anyio.Event(), step)


async def test_other_errors_are_not_hidden() -> None:
    async def step() -> None:
        raise KeyError("bug")

    with anyio.fail_after(30), pytest.raises(BaseException) as caught:
        await unless_stopped(anyio.Event(), step)
    group = caught.value
    assert isinstance(group, KeyError) or (
        isinstance(group, BaseExceptionGroup) and group.subgroup(KeyError) is not None
    )
