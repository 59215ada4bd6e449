"""run_until_interrupted: the body's result, or KeyboardInterrupt after its clean-up ran."""

from __future__ import annotations

import os
import signal

import anyio
import anyio.lowlevel
import pytest

from syncd.interrupts import run_until_interrupted

# SIGUSR1 stands in for Ctrl-C: pytest's own SIGINT handling stays out of it.
SIGNAL = (signal.SIGUSR1,)


def test_the_bodys_result_is_returned() -> None:
    async def body(a: int, b: int) -> int:
        await anyio.lowlevel.checkpoint()
        return a + b

    assert run_until_interrupted(body, 2, 3, signals=SIGNAL) == 5


def test_a_signal_cancels_the_body_after_its_clean_up_and_raises() -> None:
    cleaned: list[bool] = []

    async def body() -> None:
        try:
            with anyio.fail_after(60):  # a body that swallows nothing of its own
                await anyio.wait_all_tasks_blocked()  # the receiver is listening
                os.kill(os.getpid(), signal.SIGUSR1)
                await anyio.sleep_forever()
        finally:
            cleaned.append(True)

    with pytest.raises(KeyboardInterrupt):
        run_until_interrupted(body, signals=SIGNAL)
    assert cleaned == [True]


def test_an_error_of_the_body_is_raised() -> None:
    async def body() -> None:
        raise ValueError("boom")

    with pytest.raises(BaseException) as caught:
        run_until_interrupted(body, signals=SIGNAL)
    error = caught.value
    if isinstance(error, BaseExceptionGroup):
        assert error.subgroup(ValueError) is not None
    else:
        assert isinstance(error, ValueError)
