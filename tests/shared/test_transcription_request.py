"""The transcription request: the multipart form and the JSON body mean the same thing, and every wrong
field is a 400 naming it (the service tests drive the same model through real processes)."""

from __future__ import annotations

import pytest
from vibevoice_api.shared.errors import InvalidRequestError
from vibevoice_api.shared.transcription_request import TranscriptionRequest, form_schema


def from_form(fields: dict[str, list[str]], task: str = "transcribe", **context) -> TranscriptionRequest:
    return TranscriptionRequest.from_form_fields(
        task, lambda k: (fields.get(k) or [None])[0], lambda k: list(fields.get(k, [])), **context
    )


def test_form_and_json_parse_alike():
    form = from_form(
        {
            "model": ["whisper-1"],
            "response_format": [" Verbose_JSON "],
            "timestamp_granularities[]": ["segment", "word"],
            "language": ["English"],
            "temperature": ["0.2"],
            "stream": ["true"],
            "prompt": ["  Names: Ada\x00 "],
        }
    )
    body = TranscriptionRequest.from_json(
        "transcribe",
        {
            "model": "whisper-1",
            "response_format": "verbose_json",
            "timestamp_granularities": ["segment", "word"],
            "language": "en",
            "temperature": 0.2,
            "stream": True,
            "prompt": "Names: Ada",
            "input_audio": {"data": "AAAA", "format": "wav"},
        },
    )
    assert form.model_dump(exclude={"input_audio"}) == body.model_dump(exclude={"input_audio"})
    assert form.language == "en" and form.prompt == "Names: Ada" and form.granularities == ["segment", "word"]


def test_array_fields_take_both_spellings_and_json_scalars():
    assert from_form({"timestamp_granularities": ["word"], "response_format": ["verbose_json"]}).granularities == [
        "word"
    ]
    one = TranscriptionRequest.from_json(
        "transcribe",
        {"timestamp_granularities": "word", "response_format": "verbose_json", "input_audio": {"data": ""}},
    )
    assert one.timestamp_granularities == ["word"]
    assert from_form({}).granularities == ["segment"]  # the default when none is asked for


@pytest.mark.parametrize(
    ("fields", "task", "param", "code"),
    [
        ({"response_format": ["docx"]}, "transcribe", "response_format", "invalid_value"),
        ({"response_format": ["diarized_json"]}, "translate", "response_format", "invalid_value"),
        ({"temperature": ["warm"]}, "transcribe", "temperature", "invalid_value"),
        ({"temperature": ["1.5"]}, "transcribe", "temperature", "invalid_value"),
        ({"stream": ["maybe"]}, "transcribe", "stream", "invalid_value"),
        ({"language": ["xx-klingon"]}, "transcribe", "language", "unsupported_language"),
        ({"prompt": ["x" * 5000]}, "transcribe", "prompt", "string_above_max_length"),
        ({"timestamp_granularities[]": ["word"]}, "transcribe", "timestamp_granularities", "invalid_value"),
        ({"chunking_strategy": ["{bad"]}, "transcribe", "chunking_strategy", "invalid_value"),
    ],
)
def test_wrong_fields_name_the_parameter(fields, task, param, code):
    with pytest.raises(InvalidRequestError) as e:
        from_form(fields, task)
    assert (e.value.status_code, e.value.param, e.value.code) == (400, param, code)
    assert param in e.value.message


def test_translation_formats_listed_in_the_error():
    with pytest.raises(InvalidRequestError) as e:
        from_form({"response_format": ["diarized_json"]}, "translate")
    assert "diarized_json" not in e.value.message.split(":", 1)[1]


def test_word_timestamps_can_be_refused_by_the_server():
    fields = {"timestamp_granularities[]": ["word"], "response_format": ["verbose_json"]}
    assert from_form(fields, word_timestamps="approximate").granularities == ["word"]
    with pytest.raises(InvalidRequestError) as e:
        from_form(fields, word_timestamps="error")
    assert e.value.code == "unsupported_value"


def test_json_needs_its_audio():
    with pytest.raises(InvalidRequestError) as e:
        TranscriptionRequest.from_json("transcribe", {"model": "whisper-1"})
    assert (e.value.param, e.value.code) == ("input_audio", "missing_required_parameter")


def test_openapi_form_comes_from_the_model():
    form = form_schema()["multipart/form-data"]["schema"]["properties"]
    assert form["file"]["format"] == "binary"
    assert form["timestamp_granularities[]"]["type"] == "array"
    assert form["response_format"]["enum"][-1] == "diarized_json"
    assert "task" not in form and "input_audio" not in form
    translation = form_schema(translation=True)["multipart/form-data"]["schema"]["properties"]
    assert "language" not in translation and "diarized_json" not in translation["response_format"]["enum"]
    body = form_schema()["application/json"]["schema"]
    assert body["required"] == ["input_audio"]
