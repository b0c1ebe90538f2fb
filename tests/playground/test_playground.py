"""The playground page in a real headless Chromium: a user speaks, transcribes, and reads the docs offline."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path

import av
import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from playwright.sync_api import expect

from tests.conftest import service_env
from tests.playground.conftest import ARTIFACTS, KEY
from tests.support import BIN, REPO, ThreadServer, assert_openai_error, free_port, running

LONG = 180_000  # ms: bounded waits for tiny models on a shared CPU (never asserted as a speed)


# ----------------------------------------------------------------------------- served page


class Markup(HTMLParser):
    """Collects what a strict CSP forbids in markup: inline scripts/styles, style and event attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and not attrs.get("src"):
            self.inline.append("inline <script>")
        if tag == "style":
            self.inline.append("<style>")
        for name, value in attrs.items():
            if name == "style" or name.startswith("on"):
                self.inline.append(f"{tag} {name}={value!r}")
            if name in ("src", "href", "action") and value:
                self.urls.append(value)


def test_page_is_one_self_contained_document_with_a_strict_csp(stack):
    gw = stack["gw"]
    r = httpx.get(f"{gw}/playground")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'" and csp["connect-src"] == "'self'"
    assert "unsafe" not in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"

    markup = Markup()
    markup.feed(r.text)
    assert markup.inline == []
    # Every URL the page names is on this server.
    assert markup.urls and all(u.startswith("/") and not u.startswith("//") for u in markup.urls), markup.urls
    for url in markup.urls:
        if url.startswith("/playground/"):
            asset = httpx.get(gw + url)
            assert asset.status_code == 200, url
            assert asset.headers["content-security-policy"] == r.headers["content-security-policy"]

    missing = httpx.get(f"{gw}/playground/..%2Fapp.py")
    assert missing.status_code == 404
    assert_openai_error(missing.json())
    # Linked from the front page.
    assert httpx.get(gw + "/").json()["playground"] == "/playground"


def test_every_control_and_region_has_an_accessible_name(stack, page, console):
    page.goto(stack["gw"] + "/playground")
    for role, name in [
        ("textbox", "Text"),
        ("combobox", "Voice"),
        ("combobox", "Format"),
        ("slider", "Speed"),
        ("button", "Speak"),
        ("button", "Audio file"),
        ("button", "Record from microphone"),
        ("textbox", "Hotwords and context"),
        ("button", "Transcribe"),
        ("button", "Start live transcription"),
        ("region", "Transcript"),
        ("region", "Live transcript"),
    ]:
        expect(page.get_by_role(role, name=name, exact=role != "slider")).to_have_count(1)
    # Keyboard and screen-reader users reach every control by a name (label, aria-label or text).
    unnamed = page.eval_on_selector_all(
        "button, input, select, textarea, audio, a[href]",
        """els => els.filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                 && !e.textContent.trim()).map(e => e.outerHTML)""",
    )
    assert unnamed == []
    assert console.errors == []


# ----------------------------------------------------------------------------- speak


def _decode(path: Path) -> tuple[int, float]:
    with av.open(str(path)) as f:
        stream = f.streams.audio[0]
        samples = sum(frame.samples for frame in f.decode(stream))
        return stream.rate, samples / stream.rate


def test_speak_mp3_plays_while_streaming_and_downloads(stack, page, console, tmp_path):
    page.goto(stack["gw"] + "/playground")
    voice = page.get_by_label("Voice")
    expect(voice.locator("option")).not_to_have_count(0)
    assert voice.input_value() == "en-Carter_man"  # an English voice first for an English page
    voice.select_option("en-Emma_woman")
    page.get_by_label("Format").select_option("mp3")
    page.get_by_label("Text", exact=True).fill("Hello from the playground.")
    page.get_by_role("button", name="Speak", exact=True).click()

    expect(page.get_by_role("status").filter(has_text="Done")).to_be_visible(timeout=LONG)
    expect(page.get_by_text(re.compile(r"First audio after \d+ ms"))).to_be_visible()
    # The audio element really played: its played ranges cover some of the speech.
    page.wait_for_function(
        "() => { const a = document.getElementById('tts-audio');"
        " return a.played.length > 0 && a.played.end(a.played.length - 1) > 0.2 }",
        timeout=LONG,
    )
    assert page.eval_on_selector("#tts-audio", "a => a.error") is None

    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile("Download mp3")).click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.name == "speech.mp3"
    rate, seconds = _decode(path)
    assert rate == 24000 and seconds > 0.5
    assert console.errors == []


def test_speak_pcm_plays_through_webaudio(stack, page, console, tmp_path):
    page.goto(stack["gw"] + "/playground")
    expect(page.get_by_label("Voice").locator("option")).not_to_have_count(0)
    page.get_by_label("Format").select_option("pcm")
    page.get_by_label("Text", exact=True).fill("Raw samples, played as they arrive.")
    page.get_by_role("button", name="Speak", exact=True).click()
    done = page.get_by_role("status").filter(has_text="Done")
    expect(done).to_be_visible(timeout=LONG)
    expect(page.get_by_text(re.compile(r"First audio after \d+ ms"))).to_be_visible()
    played = float(re.search(r"([\d.]+) s of audio", done.inner_text()).group(1))

    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile("Download pcm")).click()
    pcm = Path(info.value.path()).read_bytes()
    # What WebAudio scheduled is exactly what the server sent: s16le at 24 kHz, and not silence.
    assert len(pcm) % 2 == 0 and round(len(pcm) / 2 / 24000, 1) == pytest.approx(played, abs=0.06)
    samples = memoryview(pcm).cast("h")
    assert max(abs(s) for s in samples) > 100
    # The replay element got a WAV of the same audio.
    duration = page.eval_on_selector(
        "#tts-audio",
        "a => new Promise(r => a.readyState >= 1 ? r(a.duration)"
        " : a.addEventListener('loadedmetadata', () => r(a.duration)))",
    )
    assert duration == pytest.approx(len(pcm) / 2 / 24000, abs=0.01)
    assert console.errors == []


# ----------------------------------------------------------------------------- transcribe


def _ffmpeg_cues(path: Path) -> int:
    """ffmpeg's own subtitle demuxer reads the file: one packet per cue, or an error."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "packet=pts", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stderr == "", out.stderr
    return len([line for line in out.stdout.splitlines() if line.strip()])


SRT_BLOCK = re.compile(r"^(\d+)\n(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)\n(.+)$", re.S)


def test_transcribe_upload_streams_speakers_and_valid_subtitles(stack, page, console, speech_wav, tmp_path):
    gw = stack["gw"]
    # What any API client gets for this file, with the same hotwords.
    with open(speech_wav, "rb") as f:
        ref = httpx.post(
            f"{gw}/v1/audio/transcriptions",
            files={"file": ("hello.wav", f, "audio/wav")},
            data={"model": "vibevoice-asr", "response_format": "diarized_json", "prompt": "VibeVoice, playground"},
            timeout=300,
        ).json()
    assert ref["segments"], ref

    streamed: list[str] = []
    page.on(
        "response",
        lambda r: r.url.endswith("/v1/audio/transcriptions") and streamed.append(r.headers.get("content-type", "")),
    )
    page.goto(gw + "/playground")
    page.get_by_label("Audio file").set_input_files(str(speech_wav))
    page.get_by_label("Hotwords and context").fill("VibeVoice, playground")
    page.get_by_role("button", name="Transcribe", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="segment")).to_have_class(re.compile(r"\bok\b"), timeout=LONG)
    # The page read server-sent events (segments as they stream), and sent the hotwords: on this tiny model
    # the prompt changes the words, and the page shows exactly what the API answered with that prompt.
    assert streamed == ["text/event-stream; charset=utf-8"]

    region = page.get_by_role("region", name="Transcript", exact=True)
    rows = region.locator("li")
    expect(rows).to_have_count(len(ref["segments"]))
    for i, seg in enumerate(ref["segments"]):
        row = rows.nth(i)
        expect(row.locator(".who")).to_have_text(f"Speaker {seg['speaker']}")
        expect(row.locator(".text")).to_have_text(seg["text"].strip())
        start = f"{int(seg['start'] // 60):02d}:{seg['start'] % 60:04.1f}"
        expect(row.locator(".time")).to_contain_text(start)
    # Who spoke when: one lane per speaker, one block per segment.
    timeline = page.get_by_role("img", name="Timeline of who spoke when")
    expect(timeline.locator(".lane")).to_have_count(len({s["speaker"] for s in ref["segments"]}))
    expect(timeline.locator(".block")).to_have_count(len(ref["segments"]))

    files = {}
    for name in ("SRT", "VTT", "JSON"):
        with page.expect_download() as info:
            page.get_by_role("link", name=name, exact=True).click()
        files[name] = tmp_path / info.value.suggested_filename
        info.value.save_as(files[name])
    assert files["SRT"].name == "hello.srt"

    srt = files["SRT"].read_text()
    blocks = srt.strip("\n").split("\n\n")
    assert len(blocks) == len(ref["segments"])
    for i, (block, seg) in enumerate(zip(blocks, ref["segments"], strict=True), start=1):
        m = SRT_BLOCK.match(block)
        assert m, block
        assert int(m.group(1)) == i and m.group(2) <= m.group(3)
        assert m.group(4) == f"[Speaker {seg['speaker']}] {seg['text'].strip()}"
    assert _ffmpeg_cues(files["SRT"]) == len(ref["segments"])
    assert files["VTT"].read_text().startswith("WEBVTT\n\n")
    assert _ffmpeg_cues(files["VTT"]) == len(ref["segments"])
    data = json.loads(files["JSON"].read_text())
    assert [(s["speaker"], s["text"]) for s in data["segments"]] == [
        (s["speaker"], s["text"].strip()) for s in ref["segments"]
    ]
    assert console.errors == []


def held_asr(segments: list[dict], gate: threading.Event, hold_after: int) -> FastAPI:
    """An ASR service that streams a podcast's reference segments and holds the stream open after a few."""
    app = FastAPI()

    @app.get("/ready")
    async def ready() -> dict:
        return {"status": "ready"}

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": "vibevoice-asr", "object": "model", "created": 0, "owned_by": "t"}]}

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> StreamingResponse:
        await request.body()

        async def events():
            for i, seg in enumerate(segments):
                if i == hold_after:
                    while not gate.is_set():
                        await asyncio.sleep(0.05)
                event = {"type": "transcript.text.segment", "id": f"seg_{i}", **seg}
                yield f"data: {json.dumps(event)}\n\n".encode()
            done = {"type": "transcript.text.done", "text": " ".join(s["text"] for s in segments)}
            yield f"data: {json.dumps(done)}\n\n".encode()

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def test_segments_appear_while_the_transcript_streams(stack, page, console, speech_wav, tiny_models, tmp_path):
    """A three-speaker podcast's segments show up one by one, before the stream has ended."""
    reference = json.loads((REPO.parent / "shared" / "data" / "audio" / "toy0.json").read_text())
    segments = [
        {"start": s["start"], "end": s["end"], "speaker": "ABCDEFGH"[s["speaker"]], "text": s["text"]}
        for s in reference["segments"]
    ]
    gate = threading.Event()
    asr = ThreadServer(held_asr(segments, gate, hold_after=3)).start()
    port = free_port()
    env = {**service_env(tiny_models), "VIBEVOICE_ASR_URL": asr.url, "VIBEVOICE_TTS_URL": stack["tts"]}
    try:
        with running(
            [str(BIN / "vibevoice-gateway"), "--host", "127.0.0.1", "--port", str(port)],
            env,
            tmp_path / "gw.log",
            f"http://127.0.0.1:{port}/ready",
        ):
            page.goto(f"http://127.0.0.1:{port}/playground")
            page.get_by_label("Audio file").set_input_files(str(speech_wav))
            page.get_by_role("button", name="Transcribe", exact=True).click()
            rows = page.get_by_role("region", name="Transcript", exact=True).locator("li")
            expect(rows).to_have_count(3)
            # The stream is still open: three segments shown, still running, no downloads yet.
            status = page.locator("#asr-status")
            expect(status).to_have_text("3 segments…")
            expect(page.get_by_role("link", name="SRT", exact=True)).to_be_hidden()
            gate.set()
            expect(rows).to_have_count(len(segments))
            expect(status).to_have_class(re.compile(r"\bok\b"))
            expect(status).to_contain_text(f"{len(segments)} segments, 3 speakers")
            expect(page.get_by_role("img", name="Timeline of who spoke when").locator(".lane")).to_have_count(3)
            expect(rows.nth(0).locator(".text")).to_have_text(segments[0]["text"])
            expect(rows.nth(0).locator(".who")).to_have_text("Speaker A")
            page.get_by_role("region", name="Transcript", exact=True).scroll_into_view_if_needed()
    finally:
        gate.set()
        asr.stop()
    assert console.errors == []


def test_transcribe_a_microphone_recording(stack, page, console):
    """Record from the (fake) microphone, stop, transcribe: the browser's own recording format is accepted."""
    uploads: list[str] = []
    page.on("request", lambda r: r.url.endswith("/v1/audio/transcriptions") and uploads.append(r.url))
    page.goto(stack["gw"] + "/playground")
    page.get_by_role("button", name="Record from microphone").click()
    expect(page.locator("#asr-status")).to_have_text(re.compile("^Recording"))
    page.wait_for_timeout(2500)  # two and a half seconds of the fake microphone's speech
    page.get_by_role("button", name="Stop recording").click()
    expect(page.locator("#asr-status")).to_have_text("recording.webm ready.")
    page.get_by_role("button", name="Transcribe", exact=True).click()
    expect(page.locator("#asr-status")).to_have_class(re.compile(r"\bok\b"), timeout=LONG)
    rows = page.get_by_role("region", name="Transcript", exact=True).locator("li")
    expect(rows.first).to_be_visible()
    assert uploads and rows.count() >= 1
    assert console.errors == []


# ----------------------------------------------------------------------------- live


def test_live_transcription_from_the_microphone(stack, page, console):
    """Chromium's fake microphone (a file of speech and silence) streams into a realtime transcription session."""
    sent: list[dict] = []
    received: list[dict] = []
    sockets = []

    def watch(ws):
        if "/v1/realtime" in ws.url:
            sockets.append(ws)
            ws.on("framesent", lambda payload: sent.append(json.loads(payload)))
            ws.on("framereceived", lambda payload: received.append(json.loads(payload)))

    page.on("websocket", watch)
    page.goto(stack["gw"] + "/playground")
    page.get_by_role("button", name="Start live transcription").click()
    region = page.get_by_role("region", name="Live transcript", exact=True)
    done = region.locator(".utterance:not(.partial)")
    expect(done.first).to_be_visible(timeout=LONG)
    with sockets[0].expect_event("close", timeout=60_000):
        # Stopping sends the rest of the audio, commits it, and closes once its transcript is in.
        page.get_by_role("button", name="Stop live transcription").click()
    expect(page.get_by_role("button", name="Start live transcription")).to_be_visible()

    # The client spoke the GA Realtime protocol: a transcription session, then PCM16 at 24 kHz.
    assert sent[0]["type"] == "session.update" and sent[0]["session"]["type"] == "transcription"
    assert sent[0]["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    appends = [base64.b64decode(e["audio"]) for e in sent if e["type"] == "input_audio_buffer.append"]
    assert appends and all(len(a) % 2 == 0 for a in appends)
    audio = b"".join(appends)
    assert max(abs(v) for v in memoryview(audio).cast("h")) > 1000  # the microphone's speech, not silence
    # What the page shows is what the session said: partial deltas, then each item's completed transcript.
    completed = [e for e in received if e["type"] == "conversation.item.input_audio_transcription.completed"]
    deltas = [e for e in received if e["type"] == "conversation.item.input_audio_transcription.delta"]
    assert deltas and completed
    first = completed[0]
    assert "".join(d["delta"] for d in deltas if d["item_id"] == first["item_id"]) == first["transcript"]
    shown = [e["transcript"] for e in completed if e["transcript"].strip()]
    expect(done).to_have_text(shown)
    assert [e for e in received if e["type"] == "error"] == []
    assert console.errors == []


# ----------------------------------------------------------------------------- hostile content

HOSTILE = '<img src=x onerror="window.__pwned=1">'
HOSTILE_SPEAKER = "<script>window.__pwned=2</script>"


def test_hostile_voice_names_and_transcripts_render_as_text(stack, page, console, speech_wav, tmp_path):
    """Whatever a server (or a compromised upstream) sends is shown as text, never parsed as HTML."""
    voices = {"voices": [{"id": "x-evil", "name": HOSTILE, "language": "<b>en</b>", "gender": "&amp;"}]}
    page.route("**/v1/audio/voices", lambda route: route.fulfill(json=voices))
    events = [
        {"type": "transcript.text.delta", "delta": HOSTILE, "segment_id": "seg_0"},
        {
            "type": "transcript.text.segment",
            "id": "seg_0",
            "start": 0,
            "end": 1.5,
            "text": HOSTILE,
            "speaker": HOSTILE_SPEAKER,
        },
        {
            "type": "transcript.text.segment",
            "id": "seg_1",
            "start": 1.5,
            "end": 2.0,
            "text": "a --> b\n\nc & <i>",
            "speaker": "B",
        },
        {"type": "transcript.text.done", "text": HOSTILE, "usage": {"type": "duration", "seconds": 2.0}},
    ]
    sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    page.route(
        "**/v1/audio/transcriptions",
        lambda route: route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=sse),
    )

    def fake_session(ws):
        def on_message(message):
            if json.loads(message).get("type") == "session.update":
                ws.send(json.dumps({"type": "session.updated", "session": {}}))
                ws.send(
                    json.dumps(
                        {
                            "type": "conversation.item.input_audio_transcription.delta",
                            "item_id": HOSTILE,
                            "content_index": 0,
                            "delta": HOSTILE,
                        }
                    )
                )
                ws.send(
                    json.dumps(
                        {
                            "type": "conversation.item.input_audio_transcription.completed",
                            "item_id": "item_2",
                            "content_index": 0,
                            "transcript": HOSTILE_SPEAKER,
                        }
                    )
                )
                ws.send(json.dumps({"type": "error", "error": {"message": HOSTILE, "type": "x", "code": "x"}}))

        ws.on_message(on_message)

    page.route_web_socket(re.compile(r".*/v1/realtime.*"), fake_session)

    page.goto(stack["gw"] + "/playground")
    expect(page.get_by_label("Voice").locator("option")).to_have_text([f"{HOSTILE} (<b>en</b>, &amp;)"])

    page.get_by_label("Audio file").set_input_files(str(speech_wav))
    page.get_by_role("button", name="Transcribe", exact=True).click()
    region = page.get_by_role("region", name="Transcript", exact=True)
    expect(region.locator(".text")).to_have_text([HOSTILE, "a --> b\n\nc & <i>"])
    expect(region.locator(".who")).to_have_text([HOSTILE_SPEAKER, "Speaker B"])

    page.get_by_role("button", name="Start live transcription").click()
    live = page.get_by_role("region", name="Live transcript", exact=True)
    expect(live.locator(".utterance")).to_have_text([HOSTILE, HOSTILE_SPEAKER])
    expect(page.locator("#live-state")).to_have_text(HOSTILE)

    # Nothing became markup: no image, no script, nothing ran.
    assert page.locator("main img, main script, main b, main i").count() == 0
    assert page.evaluate("() => window.__pwned") is None
    with page.expect_download() as info:
        page.get_by_role("link", name="VTT", exact=True).click()
    vtt = Path(info.value.path()).read_text()
    assert "<img" not in vtt and "&lt;img src=x" in vtt and "<v &lt;script&gt;" in vtt
    with page.expect_download() as info:
        page.get_by_role("link", name="SRT", exact=True).click()
    srt = Path(info.value.path()).read_text()
    assert srt.count(" --> ") == 2  # a "-->" in a transcript cannot forge a cue
    page.get_by_role("button", name="Stop live transcription").click()
    assert console.errors == []


# ----------------------------------------------------------------------------- API keys


def test_key_field_appears_when_keys_are_on(stack, page, console):
    gw = stack["gw_key"]
    assert httpx.get(gw + "/playground").status_code == 200  # the page itself is public
    page.goto(gw + "/playground")
    key = page.get_by_label("API key")
    expect(key).to_be_visible()
    page.get_by_label("Text", exact=True).fill("Key check.")
    page.get_by_label("Format").select_option("wav")
    page.get_by_role("button", name="Speak", exact=True).click()
    expect(page.locator("#tts-status")).to_contain_text("API key", timeout=LONG)

    key.fill(KEY)
    key.press("Tab")
    page.get_by_role("button", name="Speak", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Done")).to_be_visible(timeout=LONG)
    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile("Download wav")).click()
    wav = Path(info.value.path()).read_bytes()
    # A streamed WAV has no sizes in its header; the page's copy has the real ones.
    assert wav[:4] == b"RIFF" and int.from_bytes(wav[4:8], "little") == len(wav) - 8
    rate, seconds = _decode(Path(info.value.path()))
    assert rate == 24000 and seconds > 0.3

    # Live sessions too: a browser cannot set WebSocket headers, so the key travels as a subprotocol.
    page.get_by_role("button", name="Start live transcription").click()
    expect(page.locator("#live-state")).to_have_text("Listening…", timeout=60_000)
    page.get_by_role("button", name="Stop live transcription").click()
    # Only the refused first attempt is logged by the browser.
    assert len(console.errors) == 1 and "401" in console.errors[0], console.errors


def test_websocket_key_as_subprotocol(stack):
    """What the page relies on: OpenAI's browser convention for keys, answered with the 'realtime' subprotocol."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = stack["gw_key"].replace("http", "ws", 1) + "/v1/realtime?intent=transcription"
    with connect(url, subprotocols=["realtime", f"openai-insecure-api-key.{KEY}"], open_timeout=30) as ws:
        assert ws.subprotocol == "realtime"
        assert json.loads(ws.recv(timeout=30))["type"] == "session.created"
    for wrong in (["realtime", "openai-insecure-api-key.nope"], ["realtime"]):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, subprotocols=wrong, open_timeout=30)
        assert refused.value.response.status_code == 403
    # Without keys on, a key a browser still sends does no harm; the handshake still answers 'realtime'.
    open_url = stack["gw"].replace("http", "ws", 1) + "/v1/realtime?intent=transcription"
    with connect(open_url, subprotocols=["realtime", "openai-insecure-api-key.stale"], open_timeout=30) as ws:
        assert ws.subprotocol == "realtime"
        assert json.loads(ws.recv(timeout=30))["type"] == "session.created"


def test_page_without_keys_has_no_key_field(stack, page):
    page.goto(stack["gw"] + "/playground")
    expect(page.get_by_role("button", name="Speak", exact=True)).to_be_visible()
    expect(page.get_by_label("API key")).to_be_hidden()


# ----------------------------------------------------------------------------- offline docs


@pytest.mark.parametrize("process", ["gw", "asr", "tts", "live"])
def test_docs_render_with_other_hosts_blocked(stack, page, console, process):
    base = stack[process]
    elsewhere: list[str] = []

    def only_here(route):
        if route.request.url.startswith(("http://127.0.0.1:", "blob:", "data:")):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_here)
    schema = httpx.get(base + "/openapi.json").json()
    operations = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}

    page.goto(base + "/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=60_000)
    rendered = page.eval_on_selector_all(
        ".opblock",
        "els => els.map(e => [e.querySelector('.opblock-summary-method').textContent,"
        " e.querySelector('.opblock-summary-path').dataset.path])",
    )
    assert {tuple(r) for r in rendered} == operations
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"swagger-{process}.png"))

    page.goto(base + "/redoc")
    summary = next(iter(next(iter(schema["paths"].values())).values()))["summary"]
    expect(page.get_by_role("heading", name=summary).first).to_be_visible(timeout=60_000)
    assert elsewhere == []

    for path in ("/docs", "/redoc"):
        markup = Markup()
        markup.feed(httpx.get(base + path).text)
        assert all(u.startswith("/") and not u.startswith("//") for u in markup.urls), markup.urls
    assert console.errors == []
