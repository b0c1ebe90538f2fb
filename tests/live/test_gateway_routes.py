"""Through the gateway: live sessions reach the live service, speech-only realtime stays on the TTS service."""

from __future__ import annotations

import pytest

from tests.live.client import RealtimeClient, transcription_session
from tests.live.conftest import KEY
from tests.live.test_transcription import check_transcript_events, finished

pytestmark = pytest.mark.timeout(900)


def test_transcription_session_through_the_gateway(gateway, short_speech_pcm):
    with RealtimeClient(gateway["url"], "intent=transcription", KEY) as c:
        assert c.recv()["session"]["type"] == "transcription"
        assert c.update(transcription_session(None))["type"] == "session.updated"
        c.append(short_speech_pcm)
        c.send({"type": "input_audio_buffer.commit"})
        check_transcript_events(c.until(finished), c.events[-1]["item_id"])


@pytest.mark.parametrize("model", ["gpt-realtime-2.1-mini", "gpt-4o-realtime-preview", "vibevoice-live"])
def test_realtime_names_open_voice_call_sessions(gateway, model):
    with RealtimeClient(gateway["url"], f"model={model}", KEY) as c:
        session = c.recv()["session"]
        assert session["type"] == "realtime" and session["model"] == model
        # A voice-call session takes audio in (the TTS service's speech-only socket refuses it).
        c.append(b"\0\0" * 2400)
        c.send({"type": "input_audio_buffer.commit"})
        assert c.recv()["type"] == "input_audio_buffer.committed"


def test_speech_only_realtime_stays_on_the_tts_service(gateway):
    with RealtimeClient(gateway["url"], "model=vibevoice-realtime", KEY) as c:
        session = c.recv()["session"]
        assert session["model"] == "vibevoice-realtime"
        c.append(b"\0\0" * 2400)
        assert c.recv()["type"] == "error"
