"""Known speakers' names appear wherever speakers do; the others keep letters from A."""

from __future__ import annotations

from vibevoice_api.shared import transcripts as tx

SEGS = [tx.Seg(0, 1, "Hi.", 0), tx.Seg(1, 2, "Hello.", 1), tx.Seg(2, 3, "Bye.", 2), tx.Seg(3, 4, "Ok.", 0)]
NAMES = {1: "Sayid"}


def test_diarized_and_verbose():
    d = tx.to_diarized(SEGS, duration=4, names=NAMES)
    assert [s.speaker for s in d.segments] == ["A", "Sayid", "B", "A"]
    v = tx.verbose_body(tx.to_verbose(SEGS, duration=4, language="en", names=NAMES, no_speech=[0.0] * 4))
    assert [s["speaker"] for s in v["segments"]] == ["A", "Sayid", "B", "A"]


def test_subtitles_show_names_once_speakers_are_named():
    srt = tx.to_srt(SEGS, names=NAMES)
    assert "[Speaker A] Hi." in srt and "[Sayid] Hello." in srt and "[Speaker B] Bye." in srt
    vtt = tx.to_vtt(SEGS, names=NAMES)
    assert "<v Sayid>Hello.</v>" in vtt and "<v Speaker A>Hi.</v>" in vtt
    assert "Sayid" not in tx.to_srt(SEGS)  # no names: as before


def test_a_named_voice_without_model_speaker_ids():
    segs = [tx.Seg(0, 5, "All of it.", None)]
    assert tx.to_diarized(segs, duration=5, names={None: "Aidan"}).segments[0].speaker == "Aidan"
    assert tx.to_diarized(segs, duration=5).segments[0].speaker == "A"
