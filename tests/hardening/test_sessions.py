"""Long-lived sessions: many sessions leave no memory behind; idle and over-long sessions end with the API's events.

The leak check is the small form of bench/sessions.py (500 sequential + 50 concurrent): sessions opened through
the gateway, used (format set, audio appended and cleared, a turn committed now and then, a cancel refused) and
closed, then every process's RSS compared with its level after warm-up. The timeout tests run a second live
service (it owns no model, so it starts in seconds) with short limits in front of the same ASR and TTS services.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.live.client import RealtimeClient, transcription_session
from tests.support import BIN, free_port, rss_mb, running, wait_until

RSS_BOUND_MB = 30
AUDIO = base64.b64encode(b"\1\0" * 4800).decode()  # 200 ms


def one_session(gw: str, n: int) -> None:
    with RealtimeClient(gw, "intent=transcription", None, timeout=120) as c:
        assert c.recv()["type"] == "session.created"
        assert c.update(transcription_session(None))["type"] == "session.updated"
        for _ in range(3):
            c.send({"type": "input_audio_buffer.append", "audio": AUDIO})
        c.send({"type": "input_audio_buffer.clear"})
        c.until("input_audio_buffer.cleared")
        c.send({"type": "response.cancel"})
        assert c.until("error")[-1]["error"]["code"] == "response_cancel_not_active"
        if n % 10 == 0:  # now and then a real turn through the ASR service
            c.send({"type": "input_audio_buffer.append", "audio": AUDIO * 5})
            c.send({"type": "input_audio_buffer.commit"})
            ends = ("completed", "failed")
            c.until(
                lambda e: (
                    e["type"].startswith("conversation.item.input_audio_transcription.")
                    and e["type"].rsplit(".", 1)[-1] in ends
                )
            )


def sessions_open(stack) -> int:
    return httpx.get(stack["live"] + "/ready", timeout=10).json()["sessions"]


def test_many_sessions_leave_memory_flat(stack):
    names = ("gw", "live", "asr", "tts")
    for n in range(15):  # warm-up: first-use allocations
        one_session(stack["gw"], n)
    assert wait_until(lambda: sessions_open(stack) == 0)
    before = {k: rss_mb(stack["procs"][k].proc.pid) for k in names}
    for n in range(60):
        one_session(stack["gw"], n + 1)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda n: one_session(stack["gw"], n + 1), range(20)))
    assert wait_until(lambda: sessions_open(stack) == 0), "every session was closed"
    grew = {k: round(rss_mb(stack["procs"][k].proc.pid) - before[k], 1) for k in names}
    print(f"\nRSS growth over 80 sessions (MB): {grew}")
    assert all(g < RSS_BOUND_MB for g in grew.values()), grew


@contextlib.contextmanager
def second_live(stack, name: str, **settings: str) -> Iterator[str]:
    """Another live service (its URL) in front of the stack's ASR and TTS, with ``settings`` on top of its env."""
    port = free_port()
    with running(
        [str(BIN / "vibevoice-live"), "--host", "127.0.0.1", "--port", str(port)],
        {**stack["env"]["live"], **settings},
        stack["logs"] / f"{name}-live.log",
        f"http://127.0.0.1:{port}/ready",
        timeout=120,
    ):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def short_live(stack):
    """A live service whose sessions idle out after 2 s and last at most 6 s."""
    with second_live(
        stack, "short", VIBEVOICE_LIVE_IDLE_TIMEOUT_SECONDS="2", VIBEVOICE_LIVE_MAX_SESSION_SECONDS="6"
    ) as url:
        yield url


def closing_events(c: RealtimeClient) -> list[dict]:
    """Every event until the server closes the socket."""
    from websockets.exceptions import ConnectionClosed

    got = []
    try:
        while True:
            got.append(c.recv())
    except ConnectionClosed as exc:
        assert exc.rcvd is not None and exc.rcvd.code == 1000, exc  # a clean close, not a dropped connection
    return got


def test_an_idle_session_ends_with_an_error_event_and_a_close(short_live):
    with RealtimeClient(short_live, "model=gpt-realtime", None, timeout=60) as c:
        assert c.recv()["type"] == "session.created"
        events = closing_events(c)
    assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == "session_idle_timeout", events


def test_a_session_ends_at_its_maximum_length_even_when_busy(short_live):
    with RealtimeClient(short_live, "intent=transcription", None, timeout=60) as c:
        created = c.recv()
        assert created["type"] == "session.created"
        assert isinstance(created["session"].get("expires_at"), int)
        sent = 0
        from websockets.exceptions import ConnectionClosed

        try:
            while sent < 200_000:  # keeps the session from idling; the length limit must still end it
                c.send({"type": "input_audio_buffer.clear"})
                sent += 1
                c.until("input_audio_buffer.cleared")
        except ConnectionClosed:
            pass
        try:
            while True:  # what the server said before closing
                c.recv()
        except ConnectionClosed:
            pass
        errors = [e for e in c.events if e["type"] == "error"]
    assert sent < 200_000
    assert errors and errors[-1]["error"]["code"] == "session_expired", errors[-3:]


def test_refusals_past_the_session_limit_are_clean(stack):
    """Too many sessions at once: an error event (rate_limit_exceeded) and a close, never a hang."""
    with second_live(stack, "limit", VIBEVOICE_LIVE_MAX_SESSIONS="2") as url:
        with RealtimeClient(url, "model=gpt-realtime", None) as a, RealtimeClient(url, "model=gpt-realtime", None) as b:
            a.recv(), b.recv()
            with RealtimeClient(url, "model=gpt-realtime", None, timeout=60) as c:
                first = json.loads(c.ws.recv(timeout=60))
                assert first["type"] == "error" and first["error"]["code"] == "rate_limit_exceeded"
