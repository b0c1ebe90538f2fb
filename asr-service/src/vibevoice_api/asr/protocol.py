"""Read a transcription/translation request (multipart form or Open WebUI's JSON form).

The fields parse into the one :class:`~vibevoice_api.shared.transcription_request.TranscriptionRequest`;
the audio itself stays on disk (spooled by the form parser, or written from base64) until the
decoder streams it.
"""

from __future__ import annotations

import base64
import binascii
import json
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from vibevoice_api.shared.audio import RawPCM, raw_pcm_from_content_type
from vibevoice_api.shared.errors import InvalidRequestError, PayloadTooLargeError, UnsupportedMediaError
from vibevoice_api.shared.identity import ModelIdentity
from vibevoice_api.shared.transcription_request import Task, TranscriptionRequest

RAW_SUFFIXES = (".pcm", ".raw", ".s16le")
RAW_FORMAT_HINTS = ("pcm", "pcm16", "s16le", "raw")


@dataclass
class ParsedRequest:
    """A request's fields, and its audio still on disk (close it when decoded)."""

    params: TranscriptionRequest
    audio: IO[bytes]
    raw: RawPCM | None = None
    filename: str | None = None
    _owned: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for f in self._owned:
            try:
                f.close()
            except Exception:  # noqa: BLE001 - best-effort cleanup of temp files
                pass


async def parse_request(
    request: Request, task: Task, identity: ModelIdentity, *, word_mode: str, max_json_bytes: int
) -> ParsedRequest:
    ctype = request.headers.get("content-type", "").lower()
    if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        parsed = await _from_form(request, task, word_mode, max_json_bytes)
    elif ctype.startswith("application/json"):
        parsed = await _from_json(request, task, word_mode, max_json_bytes)
    else:
        raise UnsupportedMediaError(
            f"Unsupported Content-Type {ctype or '(none)'!r}: send multipart/form-data with a 'file' field, "
            "or application/json with 'input_audio'.",
        )
    try:
        parsed.params.model = identity.check(parsed.params.model)
    except BaseException:
        parsed.close()
        raise
    return parsed


async def _from_form(request: Request, task: Task, word_mode: str, max_part: int) -> ParsedRequest:
    try:
        # A text field may be as large as an upload (a known speaker's reference clip is a data URL of
        # several MB); Starlette's default is 1 MiB. Fields: up to 100 keywords and 4 speakers, with room.
        form: FormData = await request.form(max_files=4, max_fields=256, max_part_size=max_part)
    except OSError:
        raise
    except Exception as exc:
        raise InvalidRequestError(f"Could not parse the multipart form: {exc}.", code="invalid_form") from exc
    try:
        params = TranscriptionRequest.from_form_fields(
            task, lambda k: _plain(form, k), lambda k: list(form.getlist(k)), word_timestamps=word_mode
        )
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidRequestError(
                "Missing required parameter: 'file' (the audio to transcribe).",
                param="file",
                code="missing_required_parameter",
            )
    except BaseException:
        await form.close()
        raise
    raw = raw_pcm_from_content_type(upload.content_type)
    if raw is None and upload.filename and upload.filename.lower().endswith(RAW_SUFFIXES):
        raw = RawPCM()
    return ParsedRequest(params, upload.file, raw, upload.filename, [upload.file])


async def _from_json(request: Request, task: Task, word_mode: str, max_bytes: int) -> ParsedRequest:
    body = await request.body()
    if len(body) > max_bytes:
        raise PayloadTooLargeError(f"JSON body exceeds {max_bytes} bytes.")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestError("We could not parse the JSON body of your request.", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise InvalidRequestError("The request body must be a JSON object.", code="invalid_json")
    params = TranscriptionRequest.from_json(task, data, word_timestamps=word_mode)
    assert params.input_audio is not None  # from_json requires it
    try:
        audio = base64.b64decode(params.input_audio.data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestError(
            "'input_audio.data' is not valid base64.", param="input_audio.data", code="invalid_base64"
        ) from exc
    spool = tempfile.SpooledTemporaryFile(max_size=1 << 20)  # noqa: SIM115 - closed by ParsedRequest.close()
    spool.write(audio)
    spool.seek(0)
    raw = RawPCM() if (params.input_audio.format or "").lower() in RAW_FORMAT_HINTS else None
    params.input_audio = None  # the base64 text is not needed any more
    return ParsedRequest(params, spool, raw, None, [spool])


def _plain(form: FormData, key: str) -> Any:
    value = form.get(key)
    if isinstance(value, UploadFile):
        raise InvalidRequestError(f"'{key}' must be a plain form field, not a file.", param=key, code="invalid_type")
    return value
