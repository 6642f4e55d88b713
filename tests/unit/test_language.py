"""The batched language identifier gives py3langid's answers, whatever the batch."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from classify.io.language import (
    UNKNOWN_LANG,
    detect_language,
    detect_languages,
    detect_post_language,
    detect_post_languages,
    identifier,
)
from classify.io.posts import ingest

SAMPLE_DUMPS = Path(__file__).resolve().parents[2] / "data" / "dumps"


@pytest.fixture(scope="module")
def reference() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)


@pytest.fixture(scope="module")
def sample_posts() -> list[list[str]]:
    return [p for p in ingest(sorted(SAMPLE_DUMPS.glob("*.txt")))["paragraphs"] if p]


def _random_texts(n: int, seed: int = 0) -> list[str]:
    """Random strings over Latin, Cyrillic, Greek, CJK and symbols, including empty ones."""
    rng = random.Random(seed)
    alphabet = [chr(c) for c in [*range(32, 127), *range(0x400, 0x450), *range(0x391, 0x3a9), *range(0x4e00, 0x4e40), 0x1f600]]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 120))) for _ in range(n)]


def test_same_codes_as_py3langid(reference, sample_posts):
    paragraphs = [p for post in sample_posts for p in post]
    texts = [*paragraphs, *_random_texts(500), "", "a", "ПРИВЕТ, МИР", "HELLO WORLD", "Привет, world! 123"]
    want = [reference.classify(t)[0] for t in texts]
    assert identifier().classify(texts) == want
    assert [identifier().classify([t])[0] for t in texts[:200]] == want[:200]  # alone or in a batch
    assert identifier().depth >= 1


def test_detect_languages_maps_codes_and_needs_letters():
    got = detect_languages(["The ministry said that the talks would continue next week.",
                            "Министр заявил, что переговоры продолжатся на следующей неделе.",
                            "12345 !!!", "", "Le ministre a déclaré que les négociations continueraient."])
    assert got == ["en", "ru", UNKNOWN_LANG, UNKNOWN_LANG, "fr"]
    assert detect_language("Министр заявил, что переговоры продолжатся.") == "ru"


def test_post_languages_batch_equals_one_by_one(sample_posts):
    bilingual = ["Министр иностранных дел заявил, что переговоры продолжатся на следующей неделе в Москве.",
                 "The foreign minister said that the talks would continue next week in Moscow, and more.",
                 "Министр также отметил важность сотрудничества между странами БРИКС и всего глобального Юга."]
    posts = [*sample_posts, bilingual, ["..."]]
    batch = detect_post_languages(posts)
    assert batch == [detect_post_language(p) for p in posts]
    assert batch[-2] == "ru"  # the vote of its paragraphs, weighted by letters
    assert batch[-1] == UNKNOWN_LANG
    assert {"en", "ru"} <= set(batch)


def test_other_py3langid_layout_falls_back_to_its_own_classify(reference, monkeypatch):
    """A py3langid whose automaton is laid out differently still answers, one text at a time."""
    import py3langid.langid as lid

    import classify.io.language as lang

    class Old:  # what an older py3langid exposes: classify(), not the arrays BatchIdentifier reads
        def __init__(self, real):
            self.real = real

        def classify(self, text):
            return self.real.classify(text)

    monkeypatch.setattr(lid.LanguageIdentifier, "from_model_file", classmethod(lambda cls, *a, **k: Old(reference)))
    lang.identifier.cache_clear()
    try:
        ident = lang.identifier()
        assert isinstance(ident, lang._OneByOne)
        assert ident.classify(["Министр заявил, что переговоры продолжатся.", "The talks will continue."]) == ["ru", "en"]
    finally:
        lang.identifier.cache_clear()
