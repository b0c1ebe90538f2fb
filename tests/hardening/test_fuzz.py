"""schemathesis against the real OpenAPI schemas of the gateway and both services (tiny models).

Every generated request must get a non-5xx answer that matches the schema, and every error must have
the OpenAI shape. Case counts are printed (and bounded, for CI time).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import service_env
from tests.support import BIN, free_port, running

CASES: dict[str, int] = {}


@pytest.fixture(scope="module")
def stack(tiny_models, tmp_path_factory):
    logs = tmp_path_factory.mktemp("fuzz")
    p = {k: free_port() for k in ("asr", "tts", "gw")}
    env = service_env(tiny_models, VIBEVOICE_TTS_MIN_LATENTS="6", VIBEVOICE_TTS_LATENTS_PER_TOKEN="0.2")
    with (
        running(
            [str(BIN / "vibevoice-asr"), "--host", "127.0.0.1", "--port", str(p["asr"])],
            env,
            logs / "asr.log",
            f"http://127.0.0.1:{p['asr']}/ready",
            timeout=240,
        ),
        running(
            [str(BIN / "vibevoice-tts"), "--host", "127.0.0.1", "--port", str(p["tts"])],
            env,
            logs / "tts.log",
            f"http://127.0.0.1:{p['tts']}/ready",
            timeout=240,
        ),
        running(
            [str(BIN / "vibevoice-gateway"), "--host", "127.0.0.1", "--port", str(p["gw"])],
            {
                **env,
                "VIBEVOICE_ASR_URL": f"http://127.0.0.1:{p['asr']}",
                "VIBEVOICE_TTS_URL": f"http://127.0.0.1:{p['tts']}",
            },
            logs / "gw.log",
            f"http://127.0.0.1:{p['gw']}/ready",
        ),
    ):
        yield {k: f"http://127.0.0.1:{v}" for k, v in p.items()}
    print(f"\nschemathesis cases run: {CASES}")


def _check(case, response) -> None:
    ctype = response.headers.get("content-type", [""])
    ctype = ctype[0] if isinstance(ctype, list) else ctype
    if response.status_code >= 400 and ctype.startswith("application/json"):
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body


@pytest.mark.parametrize("target", ["gw", "asr", "tts"])
def test_fuzz_openapi(stack, target):
    schema = schemathesis.openapi.from_url(stack[target] + "/openapi.json")
    ran = 0
    for op in schema.get_all_operations():
        operation = op.ok()
        strategy = operation.as_strategy()

        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
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
