"""A fuzzer for realtime events, against every session type through the gateway.

Per session type (transcription session, realtime voice call, the TTS service's speech-only realtime) one session
is fed random JSON, mutated valid events, binary frames, oversized frames and floods, while a second session beside
it stays healthy. Every surely-bad event must be answered by an `error` event in the OpenAI shape; no event may
produce a server error; afterwards both sessions still do their normal work and every process is still ready.
``FUZZ_EVENTS`` sets the events per session type (``make fuzz`` raises it); the seed is fixed, so runs repeat.
"""

from __future__ import annotations

import base64
import json
import os
import random
from typing import Any

import httpx
import pytest

from tests.live.client import RealtimeClient, transcription_session

EVENTS = int(os.environ.get("FUZZ_EVENTS", "100"))
QUERIES = {
    "transcription": "intent=transcription",
    "voice call": "model=gpt-realtime",
    "tts realtime": "model=vibevoice-realtime",
}
PCM = base64.b64encode(b"\1\0" * 2400).decode()
VALID: list[dict[str, Any]] = [
    {"type": "session.update", "session": transcription_session(None)},
    {"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"voice": "marin"}}}},
    {"type": "transcription_session.update", "session": {"input_audio_format": "pcm16", "turn_detection": None}},
    {"type": "input_audio_buffer.append", "audio": PCM},
    {"type": "input_audio_buffer.commit"},
    {"type": "input_audio_buffer.clear"},
    {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello."}]},
    },
    {"type": "conversation.item.delete", "item_id": "item_x"},
    {"type": "conversation.item.retrieve", "item_id": "item_x"},
    {"type": "conversation.item.truncate", "item_id": "item_x", "content_index": 0, "audio_end_ms": 10},
    {"type": "response.create", "response": {"instructions": "Say this: Hi."}},
    {"type": "response.cancel"},
]
JUNK: list[Any] = [None, True, -1, 2**70, 1e308, "", "x" * 5000, [], {}, [1, "a"], {"a": {"b": [None]}}, "\u0000\ud7ff"]


def junk(rng: random.Random) -> Any:
    return rng.choice(JUNK)


def mutate(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A valid event with one part broken: a field dropped, retyped, or junk added, at any depth."""
    e = json.loads(json.dumps(event))
    target = e
    path = [k for k in e if k != "type"]
    while path:
        key = rng.choice(path)
        if isinstance(target[key], dict) and target[key] and rng.random() < 0.6:
            target = target[key]
            path = list(target)
            continue
        choice = rng.random()
        if choice < 0.3:
            del target[key]
        elif choice < 0.8:
            target[key] = junk(rng)
        else:
            target[rng.choice(["zz", "audio", "session", "item"])] = junk(rng)
        break
    else:
        e[rng.choice(["session", "item", "response", "audio"])] = junk(rng)
    return e


def surely_bad(rng: random.Random, n: int) -> tuple[str, str | bytes]:
    """(what, frame): a frame every session must answer with an error event."""
    kind = rng.choice(["json", "not-object", "no-type", "unknown", "binary", "bad-audio"])
    if kind == "json":
        return kind, rng.choice(["{", "nul\x00l", "[1,", '{"type": "x"'])
    if kind == "not-object":
        return kind, json.dumps(junk(rng) if rng.random() < 0.5 else [1, 2])
    if kind == "no-type":
        return kind, json.dumps({"event_id": f"evt_{n}", "typ": "response.create"})
    if kind == "unknown":
        return kind, json.dumps({"type": rng.choice(["x", "response.explode", "session." * 40]), "event_id": f"e{n}"})
    if kind == "binary":
        return kind, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    return kind, json.dumps({"type": "input_audio_buffer.append", "audio": "%%%not base64%%%"})


def next_error(c: RealtimeClient) -> dict[str, Any]:
    e = c.until("error")[-1]
    check_error(e)
    return e


def check_error(e: dict[str, Any]) -> None:
    err = e["error"]
    assert {"type", "code", "message"} <= set(err) and err["message"], e
    assert err["type"] != "server_error" and err.get("code") != "internal_error", e


def drain_checked(c: RealtimeClient) -> None:
    """Read until a marker error comes back, checking every error event on the way."""
    c.ws.send(json.dumps({"type": "fuzz.marker.unknown"}))
    while True:
        e = c.recv()
        if e["type"] == "error":
            check_error(e)
            if "fuzz.marker.unknown" in e["error"]["message"]:
                return


def normal_work(c: RealtimeClient, kind: str) -> None:
    """What a healthy session of this kind does: it must still work."""
    if kind == "transcription":
        assert c.update(transcription_session(None))["type"] != "error"
        c.append(b"\0\0" * 24000)
        c.send({"type": "input_audio_buffer.commit"})
        item = c.until("input_audio_buffer.committed")[-1]["item_id"]
        ends = (
            "conversation.item.input_audio_transcription.completed",
            "conversation.item.input_audio_transcription.failed",
        )
        done = c.until(lambda e: e["type"] in ends and e.get("item_id") == item)[-1]
        assert done["type"].endswith("completed"), done
        return
    if kind == "voice call":
        assert c.update({"type": "realtime", "audio": {"output": {"voice": "marin"}}})["type"] != "error"
        c.send({"type": "response.create", "response": {"instructions": "Say this: Still here."}})
    else:
        c.send(
            {
                "type": "conversation.item.create",
                "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Still here."}]},
            }
        )
        c.send({"type": "response.create"})
    events = c.until("response.done")
    assert events[-1]["response"]["status"] == "completed", events[-1]
    assert any(e["type"] in ("response.output_audio.delta", "response.audio.delta") for e in events)


@pytest.mark.parametrize("kind", list(QUERIES))
def test_realtime_event_fuzzing(stack, kind):
    rng = random.Random(f"fuzz-{kind}")
    counts = {"surely_bad": 0, "mutated": 0, "oversized": 0, "flood": 0}
    with (
        RealtimeClient(stack["gw"], QUERIES[kind], None, timeout=180) as healthy,
        RealtimeClient(stack["gw"], QUERIES[kind], None, timeout=180) as fuzzed,
    ):
        assert healthy.recv()["type"] == "session.created"
        assert fuzzed.recv()["type"] == "session.created"
        # A cancel with nothing to cancel: the Realtime API's own code (Open WebUI relies on it).
        healthy.send({"type": "response.cancel"})
        assert next_error(healthy)["error"]["code"] == "response_cancel_not_active"
        for n in range(EVENTS):
            r = rng.random()
            if r < 0.45:
                _, frame = surely_bad(rng, n)
                fuzzed.ws.send(frame)
                next_error(fuzzed)
                counts["surely_bad"] += 1
            elif r < 0.97:
                fuzzed.ws.send(json.dumps(mutate(rng.choice(VALID), rng)))
                counts["mutated"] += 1
                drain_checked(fuzzed)  # its answer (if any) read before the next surely-bad one
            else:
                # A flood of unknown events, answered one error each.
                for i in range(50):
                    fuzzed.ws.send(json.dumps({"type": f"flood.{i}"}))
                for _ in range(50):
                    next_error(fuzzed)
                counts["flood"] += 50
        # An oversized frame: refused with an error (the session goes on), never a crash.
        fuzzed.ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (3 * 2**20)}))
        next_error(fuzzed)
        counts["oversized"] += 1
        drain_checked(fuzzed)
        print(f"\nrealtime fuzz {kind}: {counts}")

        normal_work(healthy, kind)
        normal_work(fuzzed, kind)
    for name in ("gw", "asr", "tts", "live"):
        assert stack["procs"][name].proc.poll() is None, f"{name} died"
        assert httpx.get(stack[name] + "/ready", timeout=10).status_code == 200
