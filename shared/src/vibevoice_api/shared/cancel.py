"""Stop work when the client goes away, even while no bytes are flowing."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from starlette.requests import Request

T = TypeVar("T")


@contextlib.asynccontextmanager
async def within(seconds: float) -> AsyncIterator[None]:
    """Raise TimeoutError if the block takes longer than ``seconds``.

    Use this instead of ``asyncio.wait_for`` on a path that is cancelled. On Python < 3.12, ``wait_for`` returns
    its inner result when a cancellation lands in the same loop turn as that result. The caller then runs on as
    if it had never been cancelled. A voice-call answer that was sending its audio went on to the end that way.
    ``asyncio.timeout`` (3.11+) runs the block in the caller's own task and keeps the cancellation.
    """
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            yield
    else:  # pragma: no cover - Python 3.10 has no asyncio.timeout
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        handle = asyncio.get_running_loop().call_later(seconds, expire)
        try:
            yield
        except asyncio.CancelledError:
            if expired:
                raise TimeoutError from None
            raise
        finally:
            handle.cancel()


async def cancel_and_wait(task: asyncio.Future[Any], every: float = 0.5) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling it again every ``every`` seconds while it runs
    (code we don't own may swallow a cancellation, as ``asyncio.wait_for`` does before Python 3.12)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=every)
    if not task.cancelled():
        task.exception()  # retrieved: a failure of a cancelled job is not "never retrieved"


class ClientDisconnected(Exception):
    """The client closed the connection before the answer was ready."""


async def wait_disconnect(request: Request) -> None:
    """Return once the client has disconnected (call only after its body has been read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``; if the client disconnects first, cancel it and raise ClientDisconnected.

    Only call this after the request body has been read completely.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_disconnect(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise ClientDisconnected()
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
