"""chunking_strategy server_vad decides where audio longer than one pass is cut."""

from __future__ import annotations

import numpy as np
from vibevoice_api.asr.answer import silences_for
from vibevoice_api.asr.engine.longform import FRAME_SECONDS, Silences, pieces, split_points

from tests.audio_contract.voices import RATE, turn


def test_cut_goes_into_the_longest_long_enough_silence_before_the_speech():
    quiet = np.zeros(200, bool)
    quiet[130:136] = True  # 300 ms: too short for 500 ms
    quiet[160:180] = True  # 1 s
    s = Silences(quiet, min_frames=10, padding_frames=6)
    assert s.cut(120, 200) == 180 - 6  # 300 ms before the speech resumes
    assert s.cut(120, 150) is None  # only the short silence in range
    assert Silences(quiet, min_frames=10, padding_frames=50).cut(120, 200) == 160  # never before the silence


def test_server_vad_moves_the_cut_from_the_quietest_frame_to_a_real_pause():
    rate = 1000
    t = np.arange(20 * rate) / rate
    audio = (0.5 * np.sin(2 * np.pi * 50 * t)).astype(np.float32)
    audio[7000:7300] = 0.0  # a 300 ms gap: the quietest place, but shorter than silence_duration_ms
    audio[9000:9600] = 0.001  # a 600 ms pause, not silent to an energy meter
    plain = split_points(audio, rate, 12.0)
    assert 7.0 <= plain[1] / rate <= 7.3
    quiet = np.zeros(int(20 / FRAME_SECONDS), bool)
    quiet[round(7.0 / FRAME_SECONDS) : round(7.3 / FRAME_SECONDS)] = True
    quiet[round(9.0 / FRAME_SECONDS) : round(9.6 / FRAME_SECONDS)] = True
    vad = Silences(quiet, min_frames=10, padding_frames=6)  # 500 ms, 300 ms
    cut = split_points(audio, rate, 12.0, silences=vad)[1] / rate
    assert abs(cut - 9.3) < 1e-9
    parts = pieces(audio, rate, 12.0, 0.0, silences=vad)
    assert [round(p.offset, 3) for p in parts] == [0.0, 9.3]


def test_silences_are_heard_by_the_voice_activity_detector():
    speech, gap = turn(0, 0, 3), np.zeros(RATE, np.float32)
    audio = np.concatenate([speech, gap, turn(0, 1, 3)])
    s = silences_for(audio, RATE, {"type": "server_vad", "silence_duration_ms": 500, "prefix_padding_ms": 200})
    assert s.min_frames == 10 and s.padding_frames == 4
    frames = s.quiet.shape[0]
    assert frames == int(7 / FRAME_SECONDS)
    assert s.quiet[int(3.3 / FRAME_SECONDS) : int(3.7 / FRAME_SECONDS)].all()  # inside the gap
    assert s.cut(int(2 / FRAME_SECONDS), int(5 / FRAME_SECONDS)) is not None
    assert not s.quiet[: int(3 / FRAME_SECONDS)].all()
