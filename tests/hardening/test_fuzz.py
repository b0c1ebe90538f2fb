"""schemathesis against the real OpenAPI schemas of the gateway and both services (tiny models).

Every generated request must get a non-5xx answer that matches the schema, and every error must have
the OpenAI shape. Case counts are printed (and bounded, for CI time).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

CASES: dict[str, int] = {}
# Generated cases per operation: a quick run in `make test`; `make fuzz` sets FUZZ_EXAMPLES so the four schemas
# get >= 10,000 cases in total.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    total = sum(CASES.values())
    print(f"\nschemathesis cases run: {CASES} (total {total})")
    if len(CASES) == 4:  # `make fuzz` asks for a floor (FUZZ_MIN_CASES); the quick run has none
        assert total >= int(os.environ.get("FUZZ_MIN_CASES", "0")), f"only {total} cases generated"


def _check(case, response) -> None:
    ctype = response.headers.get("content-type", [""])
    ctype = ctype[0] if isinstance(ctype, list) else ctype
    if response.status_code >= 400 and ctype.startswith("application/json"):
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body


@pytest.mark.parametrize("target", ["gw", "asr", "tts", "live"])
def test_fuzz_openapi(stack, target):
    schema = schemathesis.openapi.from_url(stack[target] + "/openapi.json")
    ran = 0
    for op in schema.get_all_operations():
        operation = op.ok()
        strategy = operation.as_strategy()

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            nonlocal ran
            ran += 1
            response = case.call(timeout=60)
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
            # Semantic 400s (an unknown voice, undecodable audio) are right although the schema allows any string.
            case.validate_response(response, excluded_checks=[positive_data_acceptance])
            _check(case, response)

        from hypothesis import given

        given(case=strategy)(run)()
    CASES[target] = ran
    assert ran > 0


@pytest.mark.parametrize("target", ["gw", "tts", "asr"])
def test_event_streams_match_their_documented_schema(stack, target, speech_wav):
    """A valid streamed request is rare among generated cases, so each event stream is checked on purpose: the
    schema must describe every SSE event the way OpenAPI tools read it (one event object whose ``data`` is JSON)."""
    schema = schemathesis.openapi.from_url(stack[target] + "/openapi.json")
    calls = []
    if target in ("gw", "tts"):
        op = schema["/v1/audio/speech"]["POST"]
        calls.append(op.Case(body={"input": "Hello there.", "voice": "alloy", "stream_format": "sse"}))
    if target in ("gw", "asr"):
        op = schema["/v1/audio/transcriptions"]["POST"]
        form = {"file": speech_wav.read_bytes(), "model": "whisper-1", "stream": "true", "include[]": "logprobs"}
        calls.append(op.Case(body=form, media_type="multipart/form-data"))
    for case in calls:
        response = case.call(timeout=120)
        assert response.status_code == 200, response.text[:300]
        assert response.headers["content-type"][0].startswith("text/event-stream")
        assert response.text.count("data: ") >= 2  # deltas and a done event
        case.validate_response(response, excluded_checks=[positive_data_acceptance])
