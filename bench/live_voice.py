"""Live voice latency: median over N turns, each beside the plain HTTP request doing the same work.

1. end of speech → transcript completed, in a transcription session with server VAD, audio streamed at
   real-time pace (100 ms appends). Includes the VAD's closing silence (``--silence-ms``). Beside it: the same
   turn's audio as one ``POST /v1/audio/transcriptions`` to the ASR service.
2. answer text → first audio, in a voice-call session (``response.create`` that speaks a text). Beside it:
   time to the first PCM byte of ``POST /v1/audio/speech`` for the same text on the TTS service.

Default: tiny random models written to a temp dir (CPU). ``--model-dir`` uses real weights (``--device cuda``
on a GPU): the same script. Prints JSON with medians and live/direct ratios.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import BIN, free_port, start, stop
from websockets.sync.client import connect

PHRASES = ["Good morning.", "What time is it?", "Please call me back later.", "The weather is nice today."]
ANSWERS = [
    "It is half past ten.",
    "Sure, I will remind you tomorrow morning.",
    "The closest pharmacy opens at nine.",
    "Yes, that works for me.",
]


def espeak_pcm(text: str, out: Path) -> bytes:
    wav = out / "p.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "170", "-w", str(wav), text], check=True)
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(wav), "-f", "s16le", "-ac", "1", "-ar", "24000", "-"],
        capture_output=True,
        check=True,
    ).stdout


def wav_of(pcm: bytes) -> bytes:
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(24000)
        w.writeframes(pcm)
    return buf.getvalue()


def transcription_turns(live: str, asr: str, phrases: list[bytes], turns: int, silence_ms: int) -> dict:
    live_lat, asr_part, direct = [], [], []
    step = 4800  # 100 ms
    with connect(live.replace("http", "ws") + "/v1/realtime?intent=transcription", max_size=None) as ws:
        json.loads(ws.recv())
        td = {"type": "server_vad", "silence_duration_ms": silence_ms, "prefix_padding_ms": 300}
        ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {"type": "transcription", "audio": {"input": {"turn_detection": td}}},
                }
            )
        )
        json.loads(ws.recv())
        for i in range(turns):
            speech = phrases[i % len(phrases)]
            audio = b"\0\0" * 7200 + speech + b"\0\0" * (24 * (silence_ms + 700))
            speech_end = 14400 + len(speech)
            t_end = None
            t0 = time.perf_counter()
            for k in range(0, len(audio), step * 2):
                target = t0 + k / 48000
                delay = target - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                ws.send(
                    json.dumps(
                        {
                            "type": "input_audio_buffer.append",
                            "audio": base64.b64encode(audio[k : k + step * 2]).decode(),
                        }
                    )
                )
                if t_end is None and k + step * 2 >= speech_end:
                    t_end = time.perf_counter()
            t_stopped = None
            while True:
                e = json.loads(ws.recv(timeout=600))
                if e["type"] == "input_audio_buffer.speech_stopped" and t_stopped is None:
                    t_stopped = time.perf_counter()
                if e["type"].startswith("conversation.item.input_audio_transcription.") and e["type"].endswith(
                    ("completed", "failed")
                ):
                    t_done = time.perf_counter()
                    break
            live_lat.append(t_done - t_end)
            asr_part.append(t_done - (t_stopped or t_end))
            t = time.perf_counter()
            r = httpx.post(
                asr + "/v1/audio/transcriptions",
                files={"file": ("t.wav", wav_of(b"\0\0" * 7200 + speech), "audio/wav")},
                data={"model": "vibevoice-asr"},
                timeout=600,
            )
            r.raise_for_status()
            direct.append(time.perf_counter() - t)
    med = statistics.median
    return {
        "turns": turns,
        "end_of_speech_to_completed_ms": round(med(live_lat) * 1000, 1),
        "speech_stopped_to_completed_ms": round(med(asr_part) * 1000, 1),
        "direct_asr_request_ms": round(med(direct) * 1000, 1),
        "vad_silence_ms": silence_ms,
        "ratio_live_minus_silence_vs_direct": round((med(live_lat) - silence_ms / 1000) / med(direct), 3),
    }


def answer_turns(live: str, tts: str, turns: int) -> dict:
    live_lat, direct = [], []
    with connect(live.replace("http", "ws") + "/v1/realtime?model=gpt-realtime", max_size=None) as ws:
        json.loads(ws.recv())
        for i in range(turns):
            text = ANSWERS[i % len(ANSWERS)]
            t = time.perf_counter()
            ws.send(
                json.dumps(
                    {
                        "type": "response.create",
                        "response": {"conversation": "none", "instructions": f"Say this: {text}"},
                    }
                )
            )
            first = None
            while True:
                e = json.loads(ws.recv(timeout=600))
                if e["type"] == "response.output_audio.delta" and first is None:
                    first = time.perf_counter() - t
                if e["type"] == "response.done":
                    break
            live_lat.append(first)
            t = time.perf_counter()
            with httpx.stream(
                "POST",
                tts + "/v1/audio/speech",
                json={"model": "vibevoice-realtime", "input": text, "voice": "marin", "response_format": "pcm"},
                timeout=600,
            ) as r:
                r.raise_for_status()
                chunks = r.iter_raw()
                for chunk in chunks:
                    if chunk:
                        direct.append(time.perf_counter() - t)
                        break
                for _ in chunks:
                    pass
    med = statistics.median
    return {
        "turns": turns,
        "answer_text_to_first_audio_ms": round(med(live_lat) * 1000, 1),
        "direct_tts_first_byte_ms": round(med(direct) * 1000, 1),
        "ratio_live_vs_direct": round(med(live_lat) / med(direct), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", type=Path, default=None, help="MODEL_DIR with real weights (default: tiny random)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--silence-ms", type=int, default=500, help="server VAD silence_duration_ms")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = args.model_dir
        env = {"VIBEVOICE_DEVICE": args.device, "VIBEVOICE_LOG_FORMAT": "text", "HF_HUB_OFFLINE": "1"}
        if models is None:
            models = root / "models"
            for module in ("vibevoice_api.asr.engine.tiny", "vibevoice_api.tts.engine.tiny"):
                subprocess.run([sys.executable, "-m", module, str(models)], check=True, capture_output=True)
            env.update(
                VIBEVOICE_AUTO_DOWNLOAD="false",
                VIBEVOICE_ASR_MIN_NEW_TOKENS="48",
                VIBEVOICE_ASR_TOKENS_PER_SECOND="4",
                VIBEVOICE_TTS_LATENTS_PER_TOKEN="1.5",
                VIBEVOICE_TTS_MIN_LATENTS="12",
            )
        env.update(VIBEVOICE_MODEL_DIR=str(models), VIBEVOICE_CONVERTED_DIR=str(root / "converted"))
        ports = {n: free_port() for n in ("asr", "tts", "live")}
        urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
        procs = []
        try:
            for name in ("asr", "tts"):
                procs.append(
                    start(
                        [str(BIN / f"vibevoice-{name}"), "--host", "127.0.0.1", "--port", str(ports[name])],
                        env,
                        urls[name] + "/ready",
                        timeout=1800,
                    )
                )
            live_env = {**env, "VIBEVOICE_ASR_URL": urls["asr"], "VIBEVOICE_TTS_URL": urls["tts"]}
            procs.append(
                start(
                    [str(BIN / "vibevoice-live"), "--host", "127.0.0.1", "--port", str(ports["live"])],
                    live_env,
                    urls["live"] + "/ready",
                )
            )
            phrases = [espeak_pcm(p, root) for p in PHRASES]
            result = {"models": "real" if args.model_dir else "tiny random", "device": args.device}
            result["transcription"] = transcription_turns(
                urls["live"], urls["asr"], phrases, args.turns, args.silence_ms
            )
            print(json.dumps(result["transcription"]), file=sys.stderr, flush=True)
            result["voice_call_answer"] = answer_turns(urls["live"], urls["tts"], args.turns)
        finally:
            for p in procs:
                stop(p)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
