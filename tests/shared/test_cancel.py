"""Cancellation that holds: a job told to stop stops, whatever it was awaiting at that moment."""

from __future__ import annotations

import asyncio

import pytest
from vibevoice_api.shared.cancel import cancel_and_wait, within


async def _instant() -> int:
    return 1  # like a send into a socket with room: done at its first step


async def _sender(guard) -> str:
    """A voice-call answer in miniature: many sends, each under a time limit."""
    for _ in range(100_000):
        await guard(_instant())
        await asyncio.sleep(0)
    return "finished"


async def _with_within(coro):
    async with within(5):
        return await coro


async def _trials(guard) -> dict[str, int]:
    """Cancel the sender once, at 200 different points of its loop; how did it end?"""
    ended = {"cancelled": 0, "finished": 0}
    for trial in range(200):
        task = asyncio.ensure_future(_sender(guard))
        for _ in range(trial % 7 + 3):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.wait({task})
        ended["cancelled" if task.cancelled() else "finished"] += 1
    return ended


@pytest.mark.skipif(not hasattr(asyncio, "timeout"), reason="Python 3.10's fallback is the same idea, untested here")
def test_a_send_under_within_keeps_its_cancellation():
    ended = asyncio.run(_trials(_with_within))
    assert ended == {"cancelled": 200, "finished": 0}


def test_within_raises_timeout_error():
    async def slow():
        async with within(0.01):
            await asyncio.Event().wait()

    with pytest.raises(TimeoutError):
        asyncio.run(slow())


def test_cancel_and_wait_ends_a_task_that_swallowed_a_cancellation():
    async def stubborn(log: list[str]) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            log.append("swallowed")  # as asyncio.wait_for does before 3.12, when its result is ready too
        await asyncio.Event().wait()  # runs on as if never cancelled

    async def go() -> tuple[list[str], asyncio.Task]:
        log: list[str] = []
        task = asyncio.ensure_future(stubborn(log))
        await asyncio.sleep(0)
        await cancel_and_wait(task, every=0.01)
        return log, task

    log, task = asyncio.run(asyncio.wait_for(go(), 60))  # the bound only guards against a hang
    assert log == ["swallowed"] and task.cancelled()
