"""Voice calls (session.type "realtime") the way Open WebUI's Bridge drives them, straight over the protocol.

There is no LLM here: a user turn is answered by calling the chat tool with the transcript, and a tool
result is spoken by the TTS service. The real Open WebUI runs the same flow in
tests/integration/openwebui/test_voice_call.py.
"""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest

from tests.live.client import RealtimeClient, silence
from tests.live.conftest import KEY
from tests.support import wait_until

pytestmark = pytest.mark.timeout(900)

FAILURE_SENTENCE = "Sorry, that request failed. You can ask me to try again."
CHAT_TOOL = {
    "type": "function",
    "name": "generate_chat_completion",
    "description": "Handle substantive questions and tasks using the selected chat model.",
    "parameters": {
        "type": "object",
        "properties": {"request": {"type": "string"}},
        "required": ["request"],
        "additionalProperties": False,
    },
}
BRIDGE_SESSION = {
    "type": "realtime",
    "output_modalities": ["audio"],
    "instructions": "You are a helpful voice assistant in a call.",
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": {"model": "gpt-transcribe"},
            "turn_detection": {"type": "server_vad", "interrupt_response": False, "create_response": False},
        },
        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
    },
    "tools": [CHAT_TOOL],
    "tool_choice": "auto",
}
MAX_EVENT_BYTES = 512 * 1024  # Open WebUI's aiohttp max_msg_size for provider events


def call(stack, model: str = "gpt-realtime-2.1-mini") -> RealtimeClient:
    c = RealtimeClient(stack["live"], f"model={model}", KEY)
    created = c.recv()
    assert created["type"] == "session.created" and created["session"]["type"] == "realtime"
    c.send({"type": "session.update", "session": BRIDGE_SESSION})
    updated = c.recv()  # Open WebUI requires session.updated as the very next event
    assert updated["type"] == "session.updated", updated
    return c


def user_turn(c: RealtimeClient, speech: bytes) -> str:
    c.append(silence(0.4) + speech + silence(1.2))
    done = c.until(lambda e: e["type"].startswith("conversation.item.input_audio_transcription.c"))[-1]
    assert done["transcript"].strip()
    return done["item_id"]


def response_events(c: RealtimeClient) -> list[dict]:
    return c.until("response.done")


def spoken(events: list[dict]) -> tuple[bytes, str]:
    """(PCM of the audio deltas, final transcript); checks the deltas as Open WebUI does."""
    pcm = b""
    for e in events:
        if e["type"] == "response.output_audio.delta":
            assert len(json.dumps(e).encode()) < MAX_EVENT_BYTES
            chunk = base64.b64decode(e["delta"], validate=True)
            assert chunk and len(chunk) % 2 == 0
            pcm += chunk
    done = [e for e in events if e["type"] == "response.output_audio_transcript.done"]
    assert len(done) == 1
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta")
    assert deltas == done[0]["transcript"]
    return pcm, done[0]["transcript"]


def function_call(c: RealtimeClient, item_id: str) -> dict:
    c.send({"type": "response.create", "response": {"metadata": {"input_item_id": item_id}}})
    events = response_events(c)
    assert events[0]["type"] == "response.created"
    assert events[0]["response"]["metadata"] == {"input_item_id": item_id}
    item = next(e["item"] for e in events if e["type"] == "response.output_item.done")
    assert events[-1]["response"]["status"] == "completed"
    assert events[-1]["response"]["output"][0]["call_id"] == item["call_id"]
    assert not [e for e in events if e["type"] == "response.output_audio.delta"]
    return item


def test_a_call_turn_calls_the_chat_tool_and_speaks_its_answer(live_stack, speech_pcm):
    with call(live_stack) as c:
        item_id = user_turn(c, speech_pcm)
        transcript = next(
            e["transcript"]
            for e in c.events
            if e["type"] == "conversation.item.input_audio_transcription.completed" and e["item_id"] == item_id
        )
        assert not [e for e in c.events if e["type"] == "response.created"], "create_response is false"
        item = function_call(c, item_id)
        assert item["type"] == "function_call" and item["status"] == "completed"
        assert item["name"] == "generate_chat_completion"
        assert json.loads(item["arguments"]) == {"request": transcript}

        answer = "The weather is sunny today. Take a hat if you go out!"
        c.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "function_call_output",
                    "call_id": item["call_id"],
                    "output": json.dumps({"status": "completed", "answer": answer}),
                },
            }
        )
        assert c.recv()["type"] == "conversation.item.added"
        assert c.recv()["type"] == "conversation.item.done"
        c.send(
            {
                "type": "response.create",
                "response": {"tools": [], "tool_choice": "none", "metadata": {"call_id": item["call_id"]}},
            }
        )
        events = response_events(c)
        pcm, text = spoken(events)
        assert text == answer
        samples = np.frombuffer(pcm, dtype="<i2")
        assert samples.size > 24000 // 10 and np.abs(samples).max() > 0
        done = events[-1]["response"]
        assert done["status"] == "completed" and done["metadata"] == {"call_id": item["call_id"]}
        out = done["output"][0]
        assert out["role"] == "assistant" and out["content"][0]["transcript"] == answer
        assert {e["item_id"] for e in events if e["type"] == "response.output_audio.delta"} == {out["id"]}


def test_a_failed_result_speaks_one_short_fixed_sentence(live_stack, short_speech_pcm):
    with call(live_stack) as c:
        item = function_call(c, user_turn(c, short_speech_pcm))
        c.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "function_call_output",
                    "call_id": item["call_id"],
                    "output": json.dumps({"status": "failed", "answer": "Traceback: the model crashed"}),
                },
            }
        )
        c.until("conversation.item.done")
        c.send(
            {
                "type": "response.create",
                "response": {
                    "tools": [],
                    "tool_choice": "none",
                    "instructions": "Briefly tell the user the request failed, in their language.",
                    "metadata": {"call_id": item["call_id"]},
                },
            }
        )
        pcm, text = spoken(response_events(c))
        assert text == FAILURE_SENTENCE and pcm


def test_say_this_briefly_speaks_the_text(live_stack):
    with call(live_stack) as c:
        c.send(
            {
                "type": "response.create",
                "response": {
                    "conversation": "none",
                    "input": [],
                    "tools": [],
                    "tool_choice": "none",
                    "instructions": "Say this briefly in the user's language: I am working on your request.",
                    "metadata": {"status": "working"},
                },
            }
        )
        events = response_events(c)
        pcm, text = spoken(events)
        assert text == "I am working on your request." and pcm
        assert events[-1]["response"]["status"] == "completed"
        # Out of band: not added to the conversation.
        assert not [e for e in events if e["type"] == "conversation.item.added"]


def test_cancel_stops_the_audio_at_once_and_truncate_follows(live_stack):
    # An answer far longer than the socket buffers between us can hold (~120 MB of audio events): the server cannot
    # have sent all of it before it reads our cancel, however fast it speaks.
    long_text = " ".join(f"This is sentence number {i} of a long answer." for i in range(300))
    with call(live_stack) as c:
        c.send({"type": "response.cancel", "response_id": "resp_nothing"})
        err = c.recv()
        assert err["type"] == "error" and err["error"]["code"] == "response_cancel_not_active"
        c.send({"type": "response.create", "response": {"instructions": f"Say this: {long_text}"}})
        first = c.until("response.output_audio.delta")
        rid = first[0]["response"]["id"]
        audio_item = first[-1]["item_id"]
        c.send({"type": "response.cancel", "response_id": rid})
        rest = c.until("response.done")
        assert rest[-1]["response"]["status"] == "cancelled"
        assert rest[-1]["response"]["status_details"]["reason"] == "client_cancelled"
        # Nothing of the response follows its response.done: the next event answers our next request.
        c.send({"type": "conversation.item.truncate", "item_id": audio_item, "content_index": 0, "audio_end_ms": 0})
        nxt = c.recv()
        assert nxt["type"] == "conversation.item.truncated", nxt
        assert nxt["item_id"] == audio_item and nxt["audio_end_ms"] == 0
        sent = sum(
            len(base64.b64decode(e["delta"])) for e in first + rest if e["type"] == "response.output_audio.delta"
        )
        # The cancel came long before the whole answer was spoken: the tiny voice speaks ~6,600 bytes of PCM a
        # character, so this bound is under half of the answer (~90 MB), and above what socket buffers can hold.
        assert sent < len(long_text) * 3000
        c.send({"type": "conversation.item.truncate", "item_id": audio_item, "content_index": 0, "audio_end_ms": 10**7})
        assert c.recv()["error"]["param"] == "audio_end_ms"
        c.send({"type": "response.cancel", "response_id": rid})
        assert c.recv()["error"]["code"] == "response_cancel_not_active"


def test_context_items_are_created_and_deleted(live_stack):
    with call(live_stack) as c:
        item = {
            "id": "chat_context_1",
            "type": "message",
            "role": "system",
            "content": [{"type": "input_text", "text": "Current chat snapshot: []"}],
        }
        c.send({"type": "conversation.item.create", "item": item})
        added = c.recv()
        assert added["type"] == "conversation.item.added" and added["item"]["id"] == "chat_context_1"
        assert added["item"]["role"] == "system"
        assert c.recv()["type"] == "conversation.item.done"
        c.send({"type": "conversation.item.delete", "item_id": "chat_context_1"})
        assert c.recv() == {**c.events[-1], "type": "conversation.item.deleted", "item_id": "chat_context_1"}
        c.send({"type": "conversation.item.delete", "item_id": "chat_context_1"})
        assert c.recv()["error"]["code"] == "item_delete_invalid_item_id"


def test_realtime_names_voices_and_refusals(live_stack):
    for model in ("gpt-realtime", "gpt-4o-realtime-preview", "gpt-4o-mini-realtime-preview-2024-12-17"):
        with call(live_stack, model) as c:
            assert c.events[0]["session"]["model"] == model
    with call(live_stack) as c:
        err = c.update({"type": "realtime", "audio": {"output": {"voice": "no-such-voice"}}})
        assert err["type"] == "error" and err["error"]["param"] == "session.audio.output.voice"
        ok = c.update({"type": "realtime", "audio": {"output": {"voice": "carter"}}})
        assert ok["session"]["audio"]["output"]["voice"] == "carter"
        # A typed turn: with the chat tool it is handed over; with no tool it is spoken, as a speech-only
        # realtime client (Open WebUI's openai-realtime TTS engine) expects.
        text_item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi there."}]}
        c.send({"type": "conversation.item.create", "item": text_item})
        c.until("conversation.item.done")
        c.send({"type": "response.create", "response": {}})
        item = next(e["item"] for e in response_events(c) if e["type"] == "response.output_item.done")
        assert json.loads(item["arguments"]) == {"request": "Hi there."}
        c.send({"type": "response.create", "response": {"tools": [], "input": [text_item]}})
        pcm, text = spoken(response_events(c))
        assert text == "Hi there." and pcm


def test_a_spoken_turn_without_a_tool_fails_instead_of_inventing_an_answer(live_stack, short_speech_pcm):
    with call(live_stack) as c:
        item_id = user_turn(c, short_speech_pcm)
        c.send({"type": "response.create", "response": {"tools": [], "metadata": {"input_item_id": item_id}}})
        events = response_events(c)
        done = events[-1]["response"]
        assert done["status"] == "failed" and done["status_details"]["error"]["code"] == "no_tool"
        assert not [e for e in events if e["type"] == "response.output_audio.delta"]


def tts_metric(stack, name: str, match: str = "") -> float:
    total = 0.0
    for line in httpx.get(stack["tts"] + "/metrics").text.splitlines():
        if line.startswith(name) and match in line and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_call_that_vanishes_mid_answer_stops_its_speech_jobs(live_stack):
    """The answer is spoken piece by piece; a caller who hangs up after the first audio gets no more pieces made."""
    from vibevoice_api.live.protocol import sentence_groups

    text = " ".join(f"Here is sentence number {i} of a very long spoken answer." for i in range(40))
    pieces = len(sentence_groups(text, 300))
    speech_requests = 'vibevoice_http_requests_total{method="POST",route="/v1/audio/speech"'
    before = tts_metric(live_stack, speech_requests)
    c = call(live_stack)
    c.send({"type": "response.create", "response": {"instructions": f"Say this: {text}"}})
    c.until("response.output_audio.delta")
    c.close()
    assert wait_until(lambda: httpx.get(live_stack["live"] + "/ready").json()["sessions"] == 0)
    # The session's jobs were cancelled before it counted as closed; the TTS service then ends the stream.
    assert wait_until(lambda: tts_metric(live_stack, "vibevoice_tts_active_streams") == 0)
    made = tts_metric(live_stack, speech_requests) - before
    assert pieces >= 6 and made < pieces, (made, pieces)
