"""Known speakers are recognised by voice (real recordings, the real GE2E encoder weights)."""

from __future__ import annotations

import numpy as np
import pytest
from vibevoice_api.asr import speakers as sp
from vibevoice_api.shared.errors import InvalidRequestError

from tests.audio_contract.voices import RATE, data_url, turn


def known(*pairs):
    names = [n for n, _ in pairs]
    return sp.parse_known_speakers(names, [data_url(clip) for _, clip in pairs])


def test_a_voice_is_named_after_its_reference_and_not_after_another_voice():
    refs = known(("Aidan", turn(0, 0, 6)), ("Sayid", turn(1, 0, 6)))
    for speaker, expected in ((0, "Aidan"), (1, "Sayid")):
        upload = turn(speaker, 2, 12)  # another turn of the same person, later in the recording
        names = sp.name_speakers(upload, RATE, [(0.0, 12.0, 7)], refs, threshold=0.8)
        assert names == {7: expected}


def test_a_voice_without_reference_keeps_its_letter():
    refs = known(("Aidan", turn(0, 0, 6)), ("Sayid", turn(1, 0, 6)))
    upload = turn(2, 1, 12)  # the third host: nobody's reference
    assert sp.name_speakers(upload, RATE, [(0.0, 12.0, 0)], refs, threshold=0.8) == {}


def test_two_diarized_speakers_get_one_name_each():
    refs = known(("Aidan", turn(0, 0, 6)), ("Sayid", turn(1, 0, 6)), ("Mia", turn(2, 0, 6)))
    a, b = turn(1, 1, 8), turn(2, 2, 8)
    upload = np.concatenate([a, b])
    turns = [(0.0, 8.0, 0), (8.0, 16.0, 1)]
    assert sp.name_speakers(upload, RATE, turns, refs, threshold=0.8) == {0: "Sayid", 1: "Mia"}


def test_similarity_separates_people():
    refs = known(("Aidan", turn(0, 0, 6)), ("Sayid", turn(1, 0, 6)))
    sims = sp.similarities({"x": turn(0, 3, 10)}, RATE, refs)
    assert sims[("x", "Aidan")] > sims[("x", "Sayid")] + 0.15
    assert -1.0 <= sims[("x", "Sayid")] <= 1.0


def test_silence_names_nobody():
    refs = known(("Aidan", turn(0, 0, 6)))
    silence = np.zeros(RATE * 5, np.float32)
    assert sp.name_speakers(silence, RATE, [(0.0, 5.0, 0)], refs, threshold=0.0) == {}


def test_speaker_audio_takes_each_speakers_turns():
    audio = np.arange(10 * RATE, dtype=np.float32)
    voices = sp.speaker_audio(audio, RATE, [(0, 1, "a"), (1, 3, "b"), (3, 4, "a")], max_seconds=1.5)
    assert voices["a"].shape[0] == int(1.5 * RATE)
    assert voices["a"][RATE] == 3 * RATE  # the second turn follows the first
    assert voices["b"].shape[0] == int(1.5 * RATE)


def test_assign_is_one_to_one_and_respects_the_threshold():
    sims = {(0, "x"): 0.9, (1, "x"): 0.95, (0, "y"): 0.85, (1, "y"): 0.5, (2, "y"): 0.7}
    assert sp.assign(sims, 0.8) == {1: "x", 0: "y"}
    assert sp.assign(sims, 0.99) == {}


def test_mel_filters_are_slaney_triangles():
    fb = sp.mel_filterbank()
    assert fb.shape == (40, 201)
    assert (fb >= 0).all()
    peaks = fb.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all()  # ascending centre frequencies
    # Area-normalised: each filter's weights, times its width in Hz, sum to about 1 (one per bin of 40 Hz).
    assert np.allclose((fb * 40.0).sum(axis=1)[5:], 1.0, atol=0.2)


@pytest.mark.parametrize(
    ("names", "refs", "param", "code"),
    [
        (["a", "b", "c", "d", "e"], ["x"] * 5, "known_speaker_names", "too_many_known_speakers"),
        (["a", "b"], ["x"], "known_speaker_references", "known_speakers_mismatch"),
        (["a"], ["https://example.com/a.wav"], "known_speaker_references[0]", "invalid_data_url"),
        (["a"], ["data:audio/wav;base64,@@@"], "known_speaker_references[0]", "invalid_data_url"),
        (["a"], ["data:text/plain;base64,aGVsbG8="], "known_speaker_references[0]", "invalid_data_url"),
        (["a"], ["data:audio/wav;base64,aGVsbG8="], "known_speaker_references[0]", "invalid_audio"),
        ([""], ["x"], "known_speaker_names[0]", "invalid_value"),
    ],
)
def test_bad_known_speakers(names, refs, param, code):
    with pytest.raises(InvalidRequestError) as err:
        sp.parse_known_speakers(names, refs)
    assert (err.value.param, err.value.code) == (param, code)


@pytest.mark.parametrize("seconds", [1.0, 11.0])
def test_clip_outside_2_to_10_seconds(seconds):
    with pytest.raises(InvalidRequestError) as err:
        sp.parse_known_speakers(["Aidan", "Sayid"], [data_url(turn(1, 0, 4)), data_url(turn(0, 0, seconds))])
    assert (err.value.param, err.value.code) == ("known_speaker_references[1]", "invalid_clip_duration")


def test_duplicate_names():
    clip = data_url(turn(0, 0, 3))
    with pytest.raises(InvalidRequestError) as err:
        sp.parse_known_speakers(["Aidan", "aidan"], [clip, clip])
    assert err.value.param == "known_speaker_names[1]"


def test_a_server_without_the_encoder_says_so(monkeypatch):
    monkeypatch.setattr(sp.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(sp.EncoderUnavailableError) as err:
        sp.parse_known_speakers(["Aidan"], [data_url(turn(0, 0, 3))])
    assert err.value.status_code == 501 and "resemblyzer" in err.value.message
