"""Parse and validate transcription/translation requests (multipart form or Open WebUI's JSON form).

Every wrong field becomes an OpenAI 400 naming the parameter; the audio itself stays on disk
(spooled by the form parser, or written from base64) until the decoder streams it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from vibevoice_api.shared.audio import RawPCM, raw_pcm_from_content_type
from vibevoice_api.shared.errors import InvalidRequestError, UnsupportedMediaError
from vibevoice_api.shared.identity import ModelIdentity
from vibevoice_api.shared.languages import normalize_language
from vibevoice_api.shared.schemas import TRANSCRIPTION_FORMATS, TRANSLATION_FORMATS, TranscriptionJSONRequest

MAX_PROMPT_CHARS = 4096
GRANULARITIES = ("segment", "word")
RAW_SUFFIXES = (".pcm", ".raw", ".s16le")


@dataclass
class TranscriptionParams:
    task: str  # "transcribe" | "translate"
    model: str
    response_format: str = "json"
    language: str | None = None
    prompt: str | None = None
    temperature: float = 0.0
    granularities: list[str] = field(default_factory=lambda: ["segment"])
    stream: bool = False
    audio: IO[bytes] | None = None
    raw: RawPCM | None = None
    filename: str | None = None
    _owned: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for f in self._owned:
            try:
                f.close()
            except Exception:  # noqa: BLE001 - best-effort cleanup of temp files
                pass


def _bool(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    v = str(value).strip().lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off", ""):
        return False
    raise InvalidRequestError(
        f"Invalid value for '{param}': expected true or false.", param=param, code="invalid_value"
    )


def _temperature(value: Any) -> float:
    if value is None or value == "":
        return 0.0
    try:
        t = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(
            "'temperature' must be a number between 0 and 1.", param="temperature", code="invalid_value"
        ) from exc
    if not math.isfinite(t) or not 0.0 <= t <= 1.0:
        raise InvalidRequestError(
            f"'temperature' must be between 0 and 1 (got {value}).", param="temperature", code="invalid_value"
        )
    return t


def _text(value: Any, param: str, max_chars: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"'{param}' must be a string.", param=param, code="invalid_type")
    if len(value) > max_chars:
        raise InvalidRequestError(
            f"'{param}' is longer than {max_chars} characters.", param=param, code="string_above_max_length"
        )
    value = value.replace("\x00", "").strip()
    return value or None


def _common(get: Any, getlist: Any, task: str, identity: ModelIdentity, word_mode: str) -> TranscriptionParams:
    formats = TRANSCRIPTION_FORMATS if task == "transcribe" else TRANSLATION_FORMATS
    fmt = get("response_format") or "json"
    if not isinstance(fmt, str) or fmt.strip().lower() not in formats:
        raise InvalidRequestError(
            f"Invalid 'response_format' {fmt!r}: use one of {', '.join(formats)}.",
            param="response_format",
            code="invalid_value",
        )
    fmt = fmt.strip().lower()
    language_raw = get("language") if task == "transcribe" else None
    language = None
    if language_raw not in (None, ""):
        if not isinstance(language_raw, str):
            raise InvalidRequestError("'language' must be a string.", param="language", code="invalid_type")
        language = normalize_language(language_raw)
        if language is None:
            raise InvalidRequestError(
                f"Unsupported language {language_raw!r}: use an ISO-639-1 code such as en, de, ko.",
                param="language",
                code="unsupported_language",
            )
    grans = [
        g for g in getlist("timestamp_granularities[]") + getlist("timestamp_granularities") if g not in (None, "")
    ]
    flat: list[str] = []
    for g in grans:
        flat.extend(g if isinstance(g, list) else [g])
    for g in flat:
        if g not in GRANULARITIES:
            raise InvalidRequestError(
                f"Invalid timestamp granularity {g!r}: use segment or word.",
                param="timestamp_granularities",
                code="invalid_value",
            )
    if flat and fmt != "verbose_json":
        raise InvalidRequestError(
            "timestamp_granularities requires response_format=verbose_json.",
            param="timestamp_granularities",
            code="invalid_value",
        )
    if "word" in flat and word_mode == "error":
        raise InvalidRequestError(
            "Word timestamps are not available: VibeVoice-ASR times segments, not words.",
            param="timestamp_granularities",
            code="unsupported_value",
        )
    chunking = get("chunking_strategy")
    if chunking not in (None, "", "auto"):
        try:
            obj = json.loads(chunking) if isinstance(chunking, str) else chunking
        except ValueError as exc:
            raise InvalidRequestError(
                "'chunking_strategy' must be 'auto' or a JSON object.", param="chunking_strategy"
            ) from exc
        if not isinstance(obj, dict) or obj.get("type") not in ("server_vad", "auto", None):
            raise InvalidRequestError(
                "'chunking_strategy' must be 'auto' or {\"type\": \"server_vad\", ...}.", param="chunking_strategy"
            )
    return TranscriptionParams(
        task=task,
        model=identity.check(get("model")),
        response_format=fmt,
        language=language,
        prompt=_text(get("prompt"), "prompt", MAX_PROMPT_CHARS),
        temperature=_temperature(get("temperature")),
        granularities=flat or ["segment"],
        stream=_bool(get("stream") or False, "stream"),
    )


def _raw_for(upload: UploadFile) -> RawPCM | None:
    raw = raw_pcm_from_content_type(upload.content_type)
    if raw is None and upload.filename and upload.filename.lower().endswith(RAW_SUFFIXES):
        raw = RawPCM()
    return raw


async def parse_request(
    request: Request, task: str, identity: ModelIdentity, *, word_mode: str, max_json_bytes: int
) -> TranscriptionParams:
    ctype = request.headers.get("content-type", "").lower()
    if ctype.startswith("multipart/form-data") or ctype.startswith("application/x-www-form-urlencoded"):
        try:
            form: FormData = await request.form(max_files=4, max_fields=64)
        except OSError:
            raise
        except Exception as exc:
            raise InvalidRequestError(f"Could not parse the multipart form: {exc}.", code="invalid_form") from exc
        get = lambda k: _field(form, k)  # noqa: E731
        params = _common(get, lambda k: list(form.getlist(k)), task, identity, word_mode)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            await form.close()
            raise InvalidRequestError(
                "Missing required parameter: 'file' (the audio to transcribe).",
                param="file",
                code="missing_required_parameter",
            )
        params.audio = upload.file
        params.raw = _raw_for(upload)
        params.filename = upload.filename
        params._owned.append(upload.file)
        return params
    if ctype.startswith("application/json"):
        body = await request.body()
        if len(body) > max_json_bytes:
            from vibevoice_api.shared.errors import PayloadTooLargeError

            raise PayloadTooLargeError(f"JSON body exceeds {max_json_bytes} bytes.")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequestError("We could not parse the JSON body of your request.", code="invalid_json") from exc
        if not isinstance(data, dict):
            raise InvalidRequestError("The request body must be a JSON object.", code="invalid_json")
        try:
            req = TranscriptionJSONRequest.model_validate(data)
        except Exception as exc:  # pydantic ValidationError
            from vibevoice_api.shared.errors import validation_error_to_api_error

            errors = getattr(exc, "errors", lambda: [])()
            raise validation_error_to_api_error(errors) from exc
        get = lambda k: data.get(k)  # noqa: E731

        def getlist(k: str) -> list[Any]:
            v = data.get(k.rstrip("[]"))
            return v if isinstance(v, list) else ([] if v is None else [v])

        params = _common(get, getlist, task, identity, word_mode)
        try:
            raw_bytes = base64.b64decode(req.input_audio.data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequestError(
                "'input_audio.data' is not valid base64.", param="input_audio.data", code="invalid_base64"
            ) from exc
        spool = tempfile.SpooledTemporaryFile(max_size=1 << 20)  # noqa: SIM115 - closed by params.close()
        spool.write(raw_bytes)
        spool.seek(0)
        del raw_bytes
        params.audio = spool
        params._owned.append(spool)
        fmt = (req.input_audio.format or "").lower()
        if fmt in ("pcm", "pcm16", "s16le", "raw"):
            params.raw = RawPCM()
        return params
    raise UnsupportedMediaError(
        f"Unsupported Content-Type {ctype or '(none)'!r}: send multipart/form-data with a 'file' field, "
        "or application/json with 'input_audio'.",
    )


def _field(form: FormData, key: str) -> Any:
    value = form.get(key)
    if isinstance(value, UploadFile):
        raise InvalidRequestError(f"'{key}' must be a plain form field, not a file.", param=key, code="invalid_type")
    return value
