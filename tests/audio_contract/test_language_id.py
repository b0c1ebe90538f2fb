"""The languages of a transcript are identified from its text."""

from __future__ import annotations

from vibevoice_api.asr.language_id import detect_languages

EN = "Hello everyone, welcome back to the show. Today we talk about renting rooms in shared houses."
DE = "Guten Tag und herzlich willkommen. Heute sprechen wir über Wohngemeinschaften in der Stadt."
FR = "Bonjour à tous et bienvenue. Aujourd'hui nous parlons des colocations en ville."


def test_one_language():
    assert detect_languages([EN]) == ["en"]
    assert detect_languages([DE, DE]) == ["de"]


def test_code_switching_most_text_first():
    assert detect_languages([EN, DE, EN]) == ["en", "de"]
    assert detect_languages([FR, FR, EN, "ok"]) == ["fr", "en"]


def test_candidates_restrict_the_answer():
    assert detect_languages([EN], candidates=["de", "en"]) == ["en"]
    assert detect_languages([DE], candidates=["fr", "de"]) == ["de"]
    assert detect_languages([EN], candidates=["de"]) == ["de"]  # the caller said it is German


def test_no_text_no_language():
    assert detect_languages([]) == []
    assert detect_languages(["", " ", "a"]) == []
