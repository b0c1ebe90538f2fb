"""no_speech_prob is measured: low where someone speaks, high over silence and noise."""

from __future__ import annotations

import numpy as np
from vibevoice_api.asr.no_speech import no_speech, speech_probabilities

from tests.audio_contract.voices import RATE, turn


def test_speech_then_silence_then_hum():
    speech = turn(1, 0, 4)
    silence = np.zeros(RATE * 3, np.float32)
    t = np.arange(RATE * 3) / RATE
    hum = (0.1 * np.sin(2 * np.pi * 50 * t)).astype(np.float32)
    audio = np.concatenate([speech, silence, hum])
    probs = speech_probabilities(audio, RATE)
    speech_ns, silence_ns, hum_ns = no_speech(probs, [(0.0, 4.0), (4.2, 6.8), (7.2, 9.8)])
    assert speech_ns < 0.1
    assert silence_ns > 0.8
    assert hum_ns > 0.8


def test_spans_outside_the_audio_are_bounded():
    probs = np.array([0.2, 0.9, 0.1], np.float32)
    assert no_speech(probs, [(0.0, 0.01), (0.0, 100.0), (50.0, 60.0)]) == [0.8, 0.1, 0.9]
