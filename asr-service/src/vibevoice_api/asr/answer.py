"""What a transcription request gets back: the whole answer in its format, or the stream of events.

Between the engine (segments, each with the generation steps that wrote it) and the wire: known-speaker
names, the transcript's languages, logprobs, verbose_json's measured scores, usage in the shape of the
model family the client named (``gpt-*``: tokens; others: seconds), and token-level stream deltas that
add up to the final text (:mod:`.deltas`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from vibevoice_api.shared import transcripts as tx
from vibevoice_api.shared.events import Event, TranscriptTextDelta, TranscriptTextDone, TranscriptTextSegment
from vibevoice_api.shared.schemas import InputTokenDetails, Language, Logprob, UsageDuration, UsageTokens

from .deltas import DeltaBuilder
from .engine.longform import FRAME_SECONDS, Silences
from .engine.runtime import Usage
from .engine.textstream import TextPiece
from .language_id import detect_languages
from .no_speech import RATE as VAD_RATE
from .no_speech import WINDOW, no_speech, speech_probabilities
from .speakers import KnownSpeaker, SpeakerMatcher

log = logging.getLogger("vibevoice_api.asr")
SPEAKER_FORMATS = ("diarized_json", "verbose_json", "srt", "vtt")


@dataclass(frozen=True)
class Answering:
    """What an answer is made of besides the engine's output: the parsed request, its decoded audio (mono
    float32 at ``rate`` Hz), the tokens the transcription used, and the known speakers with their match threshold."""

    req: Any
    audio: np.ndarray
    rate: int
    usage: Usage
    known: list[KnownSpeaker]
    threshold: float

    @property
    def duration(self) -> float:
        return self.audio.shape[0] / self.rate


def engine_prompt(prompt: str | None, keywords: Sequence[str]) -> str | None:
    """``prompt`` and ``keywords[]`` together: the model reads its context one item a line."""
    return "\n".join(p for p in [prompt or "", *keywords] if p.strip()) or None


def engine_language(language: str | None, languages: Sequence[str]) -> str | list[str] | None:
    """The language hint: ``languages[]`` candidates when given, else ``language``."""
    return list(languages) if languages else language


def usage_for(model: str, duration: float, usage: Usage) -> UsageDuration | UsageTokens:
    """OpenAI's usage shape for the family of the model name the client sent."""
    if model.strip().lower().startswith("gpt-"):
        inp = usage.audio_tokens + usage.text_tokens
        return UsageTokens(
            input_tokens=inp,
            output_tokens=usage.output_tokens,
            total_tokens=inp + usage.output_tokens,
            input_token_details=InputTokenDetails(audio_tokens=usage.audio_tokens, text_tokens=usage.text_tokens),
        )
    return tx.duration_usage(duration)


def logprob_entries(segs: Sequence[tx.Seg]) -> list[dict[str, Any]]:
    """The transcript's logprob entries: exactly what the stream would have sent, in one list."""
    builder = DeltaBuilder()
    out: list[dict[str, Any]] = []
    for s in segs:
        for d in builder.segment([(p.text, p.logprob, p.token_ids) for p in s.pieces], s.text):
            out.extend(e.wire() for e in d.logprobs)
    return out


async def whole(
    segments: list[Any],
    job: Answering,
    *,
    subtitle_speakers: bool,
    speech: asyncio.Future[np.ndarray] | None = None,
) -> Response:
    """The answer in ``req.response_format`` from the engine's segments (``speech``: the speech
    probabilities for verbose_json, started beside the transcription by :func:`start_speech_scores`)."""
    req, audio, rate, duration = job.req, job.audio, job.rate, job.duration
    segs = tx.normalize([tx.Seg(s.start, s.end, s.text, s.speaker, s.pieces) for s in segments], duration)
    fmt = req.response_format
    names: dict[Any, str] = {}
    if job.known and fmt in SPEAKER_FORMATS and segs:
        matcher = SpeakerMatcher(job.known, job.threshold)
        names = await asyncio.to_thread(matcher.name_all, audio, rate, [(s.start, s.end, s.speaker) for s in segs])
    used = usage_for(req.model, duration, job.usage)
    if fmt == "text":
        return PlainTextResponse(tx.to_text(segs))
    if fmt == "srt":
        return PlainTextResponse(tx.to_srt(segs, speakers=subtitle_speakers, names=names))
    if fmt == "vtt":
        return PlainTextResponse(tx.to_vtt(segs, speakers=subtitle_speakers, names=names), media_type="text/vtt")
    if fmt == "verbose_json":
        words = "word" in req.granularities
        probs = await (speech or start_speech_scores(audio, rate))
        language = req.language
        if language is None and req.task == "transcribe":
            found = await asyncio.to_thread(detect_languages, [s.text for s in segs], req.languages)
            language = found[0] if found else None
        body = tx.verbose_body(
            tx.to_verbose(
                segs,
                duration=duration,
                language=language,
                task=req.task,
                temperature=req.temperature,
                words=words,
                include_segments="segment" in req.granularities or not words,
                names=names,
                usage=used,
                no_speech=no_speech(probs, [(s.start, s.end) for s in segs]),
            )
        )
        headers = {"x-vibevoice-word-timestamps": "approximate"} if words else None
        return JSONResponse(body, headers=headers)
    if fmt == "diarized_json":
        return JSONResponse(
            tx.to_diarized(segs, duration=duration, names=names, usage=used).model_dump(exclude_none=True)
        )
    languages = await asyncio.to_thread(detect_languages, [s.text for s in segs], _candidates(req))
    body = tx.to_json(
        segs,
        duration,
        languages=languages,
        logprobs=logprob_entries(segs) if "logprobs" in req.include else None,
        usage=used,
    ).model_dump(exclude_none=True)
    return JSONResponse(body)


SERVER_VAD_DEFAULTS = {"threshold": 0.5, "silence_duration_ms": 500, "prefix_padding_ms": 300}  # OpenAI's


def silences_for(audio: np.ndarray, rate: int, server_vad: dict[str, Any]) -> Silences:
    """``chunking_strategy`` ``server_vad`` as cut places for long audio: 50 ms frames where the voice activity
    detector's speech probability stays under ``threshold``; cuts need ``silence_duration_ms`` of them and lie
    ``prefix_padding_ms`` before the speech after them."""
    vad = {**SERVER_VAD_DEFAULTS, **{k: v for k, v in server_vad.items() if k != "type"}}
    probs = speech_probabilities(audio, rate)
    frame = FRAME_SECONDS
    n = int(audio.shape[0] / rate / frame)
    first = np.minimum((np.arange(n) * frame / (WINDOW / VAD_RATE)).astype(np.int64), probs.shape[0] - 1)
    loudest = np.maximum.reduceat(probs, first) if n else np.zeros(0, np.float32)
    return Silences(
        quiet=loudest < float(vad["threshold"]),
        min_frames=max(1, int(np.ceil(int(vad["silence_duration_ms"]) / 1000 / frame))),
        padding_frames=int(int(vad["prefix_padding_ms"]) / 1000 / frame),
    )


def start_speech_scores(audio: np.ndarray, rate: int) -> asyncio.Future[np.ndarray]:
    """Voice activity over the whole upload, in a thread, while the model transcribes (verbose_json)."""
    return asyncio.ensure_future(asyncio.to_thread(speech_probabilities, audio, rate))


def _candidates(req: Any) -> list[str]:
    if req.languages:
        return list(req.languages)
    return [req.language] if req.language else []


async def stream(items: AsyncIterator[Any], job: Answering) -> AsyncIterator[Event]:
    """``transcript.text.delta`` per generation step's text, ``transcript.text.segment`` per completed
    segment (diarized_json), then ``transcript.text.done`` (see :func:`~vibevoice_api.shared.events.sse_stream`
    for the ``error`` event that ends a failed stream)."""
    req, audio, rate, duration = job.req, job.audio, job.rate, job.duration
    want_logprobs = "logprobs" in req.include
    diarized = req.response_format == "diarized_json"
    matcher = SpeakerMatcher(job.known, job.threshold) if job.known and diarized else None
    builder = DeltaBuilder()
    kept: list[tx.Seg] = []
    logprobs: list[Logprob] = []
    letters: dict[Any, str] = {}
    live = False  # text of the current segment already streamed step by step

    def delta_event(text: str, entries: list[Any]) -> TranscriptTextDelta:
        wire = [Logprob(**e.wire()) for e in entries] if want_logprobs else None
        if wire:
            logprobs.extend(wire)
        return TranscriptTextDelta(delta=text, segment_id=f"seg_{len(kept)}", logprobs=wire)

    async for item in items:
        if isinstance(item, TextPiece):
            live = True
            d = builder.piece(item.text, item.logprob, item.token_ids)
            if d.text:
                yield delta_event(d.text, d.logprobs)
            continue
        if not live:  # a segment whose text was not streamed (long audio): its steps now
            for p in item.pieces:
                d = builder.piece(p.text, p.logprob, p.token_ids)
                if d.text:
                    yield delta_event(d.text, d.logprobs)
        live = False
        end = builder.end_segment(item.text)
        if end.text:
            yield delta_event(end.text, end.logprobs)
        clean = tx.normalize([tx.Seg(item.start, item.end, item.text, item.speaker, item.pieces)], duration)
        if not clean:
            continue
        s = clean[0]
        if diarized:
            yield TranscriptTextSegment(
                id=f"seg_{len(kept)}",
                start=round(s.start, 3),
                end=round(s.end, 3),
                text=s.text,
                speaker=await _label(s, letters, matcher, audio, rate),
            )
        kept.append(s)
    text = tx.full_text(kept)
    if text != builder.text:
        log.warning("streamed deltas differ from the final text (a repetition loop was recovered)")
    languages = await asyncio.to_thread(detect_languages, [s.text for s in kept], _candidates(req))
    yield TranscriptTextDone(
        text=text,
        languages=[Language(code=c) for c in languages],
        logprobs=logprobs if want_logprobs else None,
        usage=usage_for(req.model, duration, job.usage),
    )


async def _label(
    s: tx.Seg, letters: dict[Any, str], matcher: SpeakerMatcher | None, audio: np.ndarray, rate: int
) -> str:
    """The speaker label of a streamed segment: a known name (decided at the speaker's first turn) or a letter."""
    if matcher is not None and s.speaker not in letters and s.speaker not in matcher.taken:
        name = await asyncio.to_thread(matcher.name_new, audio, rate, s.speaker, [(s.start, s.end)])
        if name is None:
            tx.speaker_label(s.speaker, letters)
    if matcher is not None and s.speaker in matcher.taken:
        return matcher.taken[s.speaker]
    return tx.speaker_label(s.speaker, letters)
