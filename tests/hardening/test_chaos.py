"""Chaos: the TTS and the ASR service are SIGKILLed mid-request and mid-session, then restarted.

Clients get a clean end: a request that had not started its answer gets 503 with Retry-After (OpenAI shape); a
stream already under way ends short (no terminating chunk, so no client mistakes it for complete audio); a realtime
session gets an `error`/failed event instead of a hang. The same gateway (never restarted) serves again once the
service is back. Runs last on the shared stack (it restarts services) and only kills what the stack started.
"""

from __future__ import annotations

import concurrent.futures
import subprocess

import httpx
import pytest

from tests.live.client import RealtimeClient, transcription_session
from tests.support import assert_openai_error, kill_session, wait_until

LONG = " ".join(f"Sentence {i} of a reading that is cut by a killed service." for i in range(30))


def metric(url: str, name: str) -> float:
    try:
        text = httpx.get(url + "/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0
    return sum(float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(name) and not x.startswith("#"))


def kill(stack, name: str) -> None:
    kill_session(stack["procs"][name].proc)


def refused_cleanly(r: httpx.Response) -> None:
    assert r.status_code == 503, (r.status_code, r.text[:200])
    assert r.headers.get("retry-after")
    assert_openai_error(r.json(), "server_error")


def speech(gw: str, text: str) -> tuple[int, bytes, str]:
    """(status, body, how it ended) for a streamed speech request."""
    try:
        with httpx.stream(
            "POST", gw + "/v1/audio/speech", json={"model": "tts-1", "input": text, "voice": "carter"}, timeout=120
        ) as r:
            body = b"".join(r.iter_bytes())
            return r.status_code, body, "complete"
    except httpx.RemoteProtocolError:
        return 200, b"", "cut short"


@pytest.fixture
def wav(tmp_path) -> bytes:
    out = tmp_path / "a.wav"
    subprocess.run(["espeak-ng", "-w", str(out), "Testing the chaos."], check=True)
    return out.read_bytes()


def test_tts_killed_mid_request_and_mid_session(stack):
    gw, gw_pid = stack["gw"], stack["procs"]["gw"].proc.pid
    with concurrent.futures.ThreadPoolExecutor(2) as pool, RealtimeClient(gw, "model=gpt-realtime", None) as call:
        assert call.recv()["type"] == "session.created"
        streaming = pool.submit(speech, gw, LONG)
        call.send({"type": "response.create", "response": {"instructions": f"Say this: {LONG}"}})
        call.until("response.output_audio.delta")
        assert wait_until(lambda: metric(stack["tts"], "vibevoice_tts_active_streams") >= 2)
        kill(stack, "tts")
        status, _, how = streaming.result(timeout=120)
        assert (status, how) == (200, "cut short") or status == 503
        done = call.until(lambda e: e["type"] in ("response.done", "error"))[-1]
        if done["type"] == "response.done":
            assert done["response"]["status"] == "failed", done
        refused_cleanly(httpx.post(gw + "/v1/audio/speech", json={"model": "tts-1", "input": "Hi.", "voice": "carter"}))
        stack["restart"]("tts")
        assert wait_until(lambda: speech(gw, "Back again.")[0] == 200)
        call.send({"type": "response.create", "response": {"instructions": "Say this: Back again."}})
        assert call.until("response.done")[-1]["response"]["status"] == "completed"
    assert stack["procs"]["gw"].proc.pid == gw_pid and stack["procs"]["gw"].proc.poll() is None


def test_asr_killed_mid_request_and_mid_session(stack, wav):
    gw, gw_pid = stack["gw"], stack["procs"]["gw"].proc.pid
    pcm = b"\1\0" * 24000 * 3

    def transcribe():
        return httpx.post(
            gw + "/v1/audio/transcriptions", files={"file": ("a.wav", wav)}, data={"model": "whisper-1"}, timeout=120
        )

    with concurrent.futures.ThreadPoolExecutor(2) as pool, RealtimeClient(gw, "intent=transcription", None) as s:
        assert s.recv()["type"] == "session.created"
        assert s.update(transcription_session(None))["type"] == "session.updated"
        pending = pool.submit(transcribe)
        s.append(pcm)
        s.send({"type": "input_audio_buffer.commit"})
        s.until("input_audio_buffer.committed")
        assert wait_until(lambda: metric(stack["asr"], "vibevoice_http_in_flight_requests") >= 3)  # 2 + this GET
        kill(stack, "asr")
        r = pending.result(timeout=120)
        if r.status_code != 200:  # it may have finished just before the kill
            refused_cleanly(r)
        ends = (
            "conversation.item.input_audio_transcription.completed",
            "conversation.item.input_audio_transcription.failed",
        )
        end = s.until(lambda e: e["type"] in ends or e["type"] == "error")[-1]
        assert end["type"] != "conversation.item.input_audio_transcription.completed" or r.status_code == 200
        refused_cleanly(transcribe())
        stack["restart"]("asr")
        assert wait_until(lambda: transcribe().status_code == 200)
        s.append(pcm)
        s.send({"type": "input_audio_buffer.commit"})
        assert s.until(lambda e: e["type"] in ends)[-1]["type"].endswith("completed")
    assert stack["procs"]["gw"].proc.pid == gw_pid and stack["procs"]["gw"].proc.poll() is None
