"""Realtime transcription sessions, as a user's app drives them: real processes, tiny models, espeak-ng speech."""

from __future__ import annotations

import base64
import json
import subprocess
import threading

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.live.client import RealtimeClient, silence, transcription_session
from tests.live.conftest import KEY
from tests.support import wait_until

pytestmark = pytest.mark.timeout(900)

TRANSCRIPTION_EVENTS = (
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.segment",
)


def connect(stack, query: str = "intent=transcription", key: str | None = KEY) -> RealtimeClient:
    return RealtimeClient(stack["live"], query, key)


def finished(e: dict) -> bool:
    return e["type"] in (
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.failed",
    )


def check_transcript_events(events: list[dict], item_id: str) -> dict:
    """Deltas and segments belong to the item, deltas add up to the transcript; returns the completed event."""
    done = events[-1]
    assert done["type"] == "conversation.item.input_audio_transcription.completed", done
    assert done["item_id"] == item_id and done["content_index"] == 0
    deltas = [e for e in events if e["type"] == "conversation.item.input_audio_transcription.delta"]
    assert deltas, "the transcript is streamed in deltas before it completes"
    assert all(e["item_id"] == item_id for e in events if e["type"] in TRANSCRIPTION_EVENTS)
    assert "".join(d["delta"] for d in deltas) == done["transcript"]
    assert done["transcript"].strip()
    segments = [e for e in events if e["type"] == "conversation.item.input_audio_transcription.segment"]
    assert segments and all(s["speaker"] for s in segments)
    assert done["usage"]["type"] == "duration" and done["usage"]["seconds"] > 0
    return done


def test_server_vad_turn_on_speech_and_silence(live_stack, speech_pcm):
    """Speech between silences: started, stopped, committed, the item, streamed deltas, completed; one item id."""
    with connect(live_stack) as c:
        created = c.recv()
        assert created["type"] == "session.created" and created["session"]["type"] == "transcription"
        updated = c.update(transcription_session(language="en", prompt="A test sentence."))
        assert updated["type"] == "session.updated", updated
        td = updated["session"]["audio"]["input"]["turn_detection"]
        assert td["type"] == "server_vad" and td["silence_duration_ms"] == 500
        assert updated["session"]["audio"]["input"]["transcription"] == {
            "model": "gpt-transcribe",
            "language": "en",
            "prompt": "A test sentence.",
        }
        c.append(silence(0.5) + speech_pcm + silence(1.5))
        events = c.until(finished)
    kinds = [e["type"] for e in events]
    order = [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert [k for k in kinds if k in order] == order
    started, stopped, committed = (events[kinds.index(k)] for k in order[:3])
    item = events[kinds.index("conversation.item.added")]["item"]
    item_id = started["item_id"]
    assert stopped["item_id"] == committed["item_id"] == item["id"] == item_id
    assert committed["previous_item_id"] is None
    assert item["role"] == "user" and item["content"][0]["type"] == "input_audio"
    speech_ms = len(speech_pcm) * 1000 // 48000
    # Speech begins after the half second of silence and ends before the trailing silence is over.
    assert 300 <= started["audio_start_ms"] <= 900, started
    assert started["audio_start_ms"] + speech_ms // 2 <= stopped["audio_end_ms"] <= 500 + speech_ms + 500, stopped
    done = check_transcript_events(events, item_id)
    # The committed audio is the speech plus the prefix padding: its length is what the ASR billed.
    seconds = (stopped["audio_end_ms"] - started["audio_start_ms"] + 300) / 1000
    assert abs(done["usage"]["seconds"] - seconds) < 0.1, (done["usage"], seconds)


def test_two_turns_chain_items(live_stack, short_speech_pcm):
    with connect(live_stack) as c:
        c.recv()
        assert c.update(transcription_session())["type"] == "session.updated"
        c.append(silence(0.3) + short_speech_pcm + silence(1.0) + short_speech_pcm + silence(1.0))
        first = c.until("input_audio_buffer.committed")
        rest = c.until(lambda e: e["type"] == "input_audio_buffer.committed")
        ids = {first[-1]["item_id"], rest[-1]["item_id"]}
        # The two turns are transcribed concurrently: their completions may come in either order (as OpenAI's).
        while not ids <= {x["item_id"] for x in c.events if finished(x)}:
            c.recv()
        events = first + rest + c.events[len(first) + len(rest) + 2 :]
    a, b = first[-1], rest[-1]
    assert a["item_id"] != b["item_id"] and b["previous_item_id"] == a["item_id"]
    completed = [e for e in c.events if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert {e["item_id"] for e in completed} == {a["item_id"], b["item_id"]}
    assert events


def test_manual_commit(live_stack, speech_pcm):
    """turn_detection null: nothing happens until the client commits the buffer."""
    with connect(live_stack) as c:
        c.recv()
        updated = c.update(transcription_session(None))
        assert updated["session"]["audio"]["input"]["turn_detection"] is None
        c.append(silence(0.5) + speech_pcm + silence(0.5))
        c.send({"type": "input_audio_buffer.commit", "event_id": "evt_commit"})
        events = c.until(finished)
    kinds = [e["type"] for e in events]
    assert "input_audio_buffer.speech_started" not in kinds
    assert kinds[0] == "input_audio_buffer.committed"
    item_id = events[0]["item_id"]
    done = check_transcript_events(events, item_id)
    assert abs(done["usage"]["seconds"] - (len(speech_pcm) / 48000 + 1.0)) < 0.05


def test_logprobs_when_include_asks(live_stack, short_speech_pcm):
    """include item.input_audio_transcription.logprobs: deltas and the completed item carry the ASR's real
    token log-probabilities ({token, logprob, bytes}), which spell the transcript; without it, none are sent."""
    with connect(live_stack) as c:
        c.recv()
        body = transcription_session(None)
        body["include"] = ["item.input_audio_transcription.logprobs"]
        assert c.update(body)["session"]["include"] == ["item.input_audio_transcription.logprobs"]
        c.append(short_speech_pcm)
        c.send({"type": "input_audio_buffer.commit"})
        events = c.until(finished)
        done = check_transcript_events(events, events[0]["item_id"])
        lps = done["logprobs"]
        assert lps and all(lp["logprob"] <= 0 for lp in lps)
        assert "".join(lp["token"] for lp in lps) == done["transcript"]
        assert all(bytes(lp["bytes"]) == lp["token"].encode() for lp in lps)
        deltas = [e for e in events if e["type"] == "conversation.item.input_audio_transcription.delta"]
        assert [lp for d in deltas for lp in d["logprobs"]] == lps
        c.update(transcription_session(None) | {"include": []})
        c.append(short_speech_pcm)
        c.send({"type": "input_audio_buffer.commit"})
        events = c.until(finished)
        assert "logprobs" not in events[-1]
        assert all("logprobs" not in e for e in events if e["type"].endswith(".delta"))


def test_clear_then_commit_is_an_error_and_the_session_goes_on(live_stack, short_speech_pcm):
    with connect(live_stack) as c:
        c.recv()
        c.update(transcription_session(None))
        c.append(short_speech_pcm)
        c.send({"type": "input_audio_buffer.clear"})
        assert c.recv()["type"] == "input_audio_buffer.cleared"
        c.send({"type": "input_audio_buffer.commit", "event_id": "evt_1"})
        err = c.recv()
        assert err["type"] == "error" and err["error"]["code"] == "input_audio_buffer_commit_empty"
        assert err["error"]["event_id"] == "evt_1"
        c.append(short_speech_pcm)
        c.send({"type": "input_audio_buffer.commit"})
        events = c.until(finished)
        check_transcript_events(events, events[0]["item_id"])


@pytest.mark.parametrize(("fmt", "ffmpeg_fmt"), [("audio/pcmu", "mulaw"), ("audio/pcma", "alaw")])
def test_g711_input(live_stack, speech_wav, fmt, ffmpeg_fmt):
    """8 kHz G.711 from ffmpeg's encoder: VAD finds the speech where it is, the ASR hears its full length."""
    from tests.live.conftest import pcm_of

    speech = pcm_of(speech_wav, rate=8000, fmt=ffmpeg_fmt)
    quiet = pcm_of_silence(ffmpeg_fmt, 0.5)
    with connect(live_stack) as c:
        c.recv()
        updated = c.update(transcription_session(fmt=fmt))
        assert updated["session"]["audio"]["input"]["format"] == {"type": fmt, "rate": 8000}
        c.append(quiet + speech + quiet * 3, chunk=1600)
        events = c.until(finished)
    started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
    stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    speech_ms = len(speech) * 1000 // 8000
    assert 300 <= started["audio_start_ms"] <= 900
    assert stopped["audio_end_ms"] - started["audio_start_ms"] >= speech_ms // 2
    check_transcript_events(events, started["item_id"])


def pcm_of_silence(ffmpeg_fmt: str, seconds: float) -> bytes:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"anullsrc=r=8000:cl=mono:d={seconds}", "-f", ffmpeg_fmt, "-"],
        capture_output=True,
        check=True,
    ).stdout


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


APPEND = "input_audio_buffer.append"
BAD_EVENTS = [
    ("not json", "{nope", "invalid_json", None),
    ("no type", {"audio": "AAAA"}, "invalid_event", None),
    ("unknown type", {"type": "input_audio_buffer.explode"}, "invalid_value", "type"),
    ("bad base64", {"type": APPEND, "audio": "!!!not base64"}, "invalid_base64", "audio"),
    ("audio not a string", {"type": APPEND, "audio": 5}, "invalid_value", "audio"),
    ("odd PCM length", {"type": APPEND, "audio": b64(b"\0\0\0")}, "invalid_audio_length", "audio"),
    ("append over the size limit", {"type": APPEND, "audio": b64(b"\0" * 300 * 1024)}, "audio_too_large", "audio"),
    ("commit of an empty buffer", {"type": "input_audio_buffer.commit"}, "input_audio_buffer_commit_empty", None),
    ("response in a transcription session", {"type": "response.create"}, "invalid_session_type", "type"),
    ("cancel with no response", {"type": "response.cancel"}, "response_cancel_not_active", None),
    (
        "delete an unknown item",
        {"type": "conversation.item.delete", "item_id": "item_x"},
        "item_delete_invalid_item_id",
        "item_id",
    ),
    (
        "truncate an unknown item",
        {"type": "conversation.item.truncate", "item_id": "item_x", "content_index": 0, "audio_end_ms": 0},
        "item_truncate_invalid_item_id",
        "item_id",
    ),
    (
        "unknown transcription model",
        {"type": "session.update", "session": transcription_session(model="llama-3-8b")},
        "model_not_found",
        "session.audio.input.transcription.model",
    ),
    (
        "unknown language",
        {"type": "session.update", "session": transcription_session(language="xx-klingon")},
        "invalid_value",
        "session.audio.input.transcription.language",
    ),
    (
        "pcm at the wrong rate",
        {"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}},
        "invalid_value",
        "session.audio.input.format.rate",
    ),
    (
        "unknown format",
        {"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/flac"}}}}},
        "invalid_value",
        "session.audio.input.format.type",
    ),
    (
        "threshold out of range",
        {"type": "session.update", "session": transcription_session({"type": "server_vad", "threshold": 2})},
        "invalid_value",
        "session.audio.input.turn_detection.threshold",
    ),
    ("session not an object", {"type": "session.update", "session": []}, "invalid_value", "session"),
    (
        "old-style bad format",
        {"type": "transcription_session.update", "session": {"input_audio_format": "mp3"}},
        "invalid_value",
        "session.input_audio_format",
    ),
]


def test_every_bad_event_gets_an_error_and_the_session_stays_usable(live_stack, short_speech_pcm):
    with connect(live_stack) as c:
        c.recv()
        c.update(transcription_session(None))
        for name, raw, code, param in BAD_EVENTS:
            c.ws.send(raw if isinstance(raw, str) else json.dumps(raw))
            err = c.recv()
            assert err["type"] == "error", (name, err)
            assert err["error"]["code"] == code, (name, err)
            assert err["error"]["param"] == param, (name, err)
            assert err["error"]["message"], name
        c.ws.send(b"\x00\x01binary")
        assert c.recv()["error"]["code"] == "invalid_event"
        # Nothing of the bad appends reached the buffer: a clean turn transcribes exactly its own audio.
        c.append(short_speech_pcm)
        c.send({"type": "input_audio_buffer.commit"})
        events = c.until(finished)
        done = check_transcript_events(events, events[0]["item_id"])
        assert abs(done["usage"]["seconds"] - len(short_speech_pcm) / 48000) < 0.05


def test_older_transcription_session_update_shape(live_stack, short_speech_pcm):
    with connect(live_stack) as c:
        c.recv()
        updated = c.update(
            {
                "input_audio_format": "pcm16",
                "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                "turn_detection": None,
            },
            kind="transcription_session.update",
        )
        assert updated["type"] == "transcription_session.updated"
        assert updated["session"]["audio"]["input"]["turn_detection"] is None
        assert updated["session"]["audio"]["input"]["transcription"]["model"] == "gpt-4o-transcribe"
        c.append(short_speech_pcm)
        c.send({"type": "input_audio_buffer.commit"})
        events = c.until(finished)
        check_transcript_events(events, events[0]["item_id"])


def test_session_update_can_make_a_transcription_session(live_stack, short_speech_pcm):
    """Connected with a realtime model, a session.update with type transcription turns it into one."""
    with connect(live_stack, "model=gpt-realtime") as c:
        assert c.recv()["session"]["type"] == "realtime"
        updated = c.update(transcription_session(None))
        assert updated["session"]["type"] == "transcription"
        c.append(short_speech_pcm)
        c.send({"type": "input_audio_buffer.commit"})
        check_transcript_events(c.until(finished), c.events[-1]["item_id"])


def test_refused_connections(live_stack):
    with pytest.raises(InvalidStatus) as exc:
        connect(live_stack, key="wrong")
    assert exc.value.response.status_code == 403  # a WebSocket refused before accept
    for query, code in (("model=gpt-5-nano", "model_not_found"), ("", "missing_required_parameter")):
        with connect(live_stack, query) as c:
            err = c.recv()
            assert err["type"] == "error" and err["error"]["code"] == code
            with pytest.raises(ConnectionClosed):
                c.recv()


def asr_metric(stack, name: str) -> float:
    for line in httpx.get(stack["asr"] + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} missing")


def test_twenty_concurrent_sessions(live_stack, short_speech_pcm):
    results: dict[int, list[dict]] = {}
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            with connect(live_stack) as c:
                c.recv()
                c.update(transcription_session())
                c.append(silence(0.3) + short_speech_pcm + silence(1.0))
                results[i] = c.until(finished)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 20
    ids = set()
    for events in results.values():
        started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
        check_transcript_events(events, started["item_id"])
        ids.add(started["item_id"])
    assert len(ids) == 20
    assert wait_sessions_closed(live_stack)


def wait_sessions_closed(stack) -> bool:
    """The live service counts no open session (polled; the bound is only a hang guard)."""
    return wait_until(lambda: httpx.get(stack["live"] + "/ready").json()["sessions"] == 0)


def wait_asr_idle(stack) -> None:
    assert wait_until(lambda: asr_metric(stack, "vibevoice_asr_active_requests") == 0), "ASR requests still running"


def test_client_vanishing_mid_utterance_frees_its_work(live_stack, speech_pcm):
    # Mid-utterance (speech started, nothing committed): the session and its VAD model are released.
    c = connect(live_stack)
    c.recv()
    c.update(transcription_session())
    c.append(silence(0.5) + speech_pcm[: len(speech_pcm) // 2])
    c.until("input_audio_buffer.speech_started")
    c.close()
    assert wait_sessions_closed(live_stack)
    # Mid-transcription: the ASR job is cancelled, so the ASR service never bills its audio.
    wait_asr_idle(live_stack)
    billed = asr_metric(live_stack, "vibevoice_asr_audio_seconds_total")
    long_audio = (silence(0.3) + speech_pcm) * 6
    c = connect(live_stack)
    c.recv()
    c.update(transcription_session(None))
    c.append(long_audio, chunk=96000)
    c.send({"type": "input_audio_buffer.commit"})
    c.until("conversation.item.done")
    c.close()
    assert wait_sessions_closed(live_stack)
    wait_asr_idle(live_stack)
    assert asr_metric(live_stack, "vibevoice_asr_audio_seconds_total") == billed
    # The service is unaffected: the next session transcribes (and is billed).
    with connect(live_stack) as c:
        c.recv()
        c.update(transcription_session(None))
        c.append(speech_pcm)
        c.send({"type": "input_audio_buffer.commit"})
        check_transcript_events(c.until(finished), c.events[-1]["item_id"])
    wait_asr_idle(live_stack)
    assert asr_metric(live_stack, "vibevoice_asr_audio_seconds_total") > billed


def test_idle_timeout_commits_what_was_heard(live_stack):
    """server_vad idle_timeout_ms: that much audio without speech triggers a commit of the buffer."""
    with connect(live_stack) as c:
        c.recv()
        vad = {"type": "server_vad", "silence_duration_ms": 500, "idle_timeout_ms": 1000}
        updated = c.update(transcription_session(vad))
        assert updated["session"]["audio"]["input"]["turn_detection"]["idle_timeout_ms"] == 1000
        c.append(silence(1.5))
        events = c.until(finished)
    kinds = [e["type"] for e in events]
    assert "input_audio_buffer.speech_started" not in kinds
    trig = events[kinds.index("input_audio_buffer.timeout_triggered")]
    committed = events[kinds.index("input_audio_buffer.committed")]
    assert trig["item_id"] == committed["item_id"] == events[-1]["item_id"]
    assert trig["audio_end_ms"] - trig["audio_start_ms"] >= 1000


def test_asr_down_fails_the_turn_cleanly(live_stack, short_speech_pcm, tmp_path):
    """A live service whose ASR is unreachable: the turn gets .failed, the session stays open."""
    from tests.support import BIN, free_port, running

    port = free_port()
    env = {**live_stack["env"], "VIBEVOICE_ASR_URL": f"http://127.0.0.1:{free_port()}"}
    with running(
        [str(BIN / "vibevoice-live"), "--host", "127.0.0.1", "--port", str(port)],
        env,
        tmp_path / "live.log",
        f"http://127.0.0.1:{port}/ready",
        timeout=120,
    ):
        with RealtimeClient(f"http://127.0.0.1:{port}", "intent=transcription", KEY) as c:
            c.recv()
            c.update(transcription_session(None))
            for _ in range(2):
                c.append(short_speech_pcm)
                c.send({"type": "input_audio_buffer.commit"})
                events = c.until(finished)
                committed = next(e for e in events if e["type"] == "input_audio_buffer.committed")
                failed = events[-1]
                assert failed["type"] == "conversation.item.input_audio_transcription.failed"
                assert failed["item_id"] == committed["item_id"]
                assert failed["error"]["code"] == "service_unavailable" and failed["error"]["message"]
