"""How much of the labelled posts one encoder window sees: why the transformer reads paragraphs.

A post read as one sequence and truncated (what a plain fine-tuning pipeline does) loses what lies
beyond its first window; the gold evidence paragraphs say where the frames are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..gold.files import read_jsonl
from ..learners.transformer.encoder import ENCODER_PREFIX, load_tokenizer


def window_coverage(gold_path: Path, folder: Path, max_length: int = 128) -> dict[str, Any]:
    """How much of the labelled posts a model reading ``max_length`` tokens would see.

    Counts use the tokenizer of ``folder`` with the e5 prefix, once per post as one sequence, once
    per paragraph as the transformer reads them.
    """
    tok = load_tokenizer(folder)
    content = max_length - 2  # [CLS] and [SEP]
    prefix = len(tok(ENCODER_PREFIX, add_special_tokens=False)["input_ids"])
    post_len, para_len, evidence_start = [], [], []
    for rec in read_jsonl(gold_path, ("paragraphs",)):
        paras = [str(p) for p in rec.get("paragraphs") or []]
        bare = [len(ids) for ids in tok(paras, add_special_tokens=False)["input_ids"]] if paras else []
        para_len += [n + prefix for n in bare]
        starts = prefix + np.cumsum([0, *bare[:-1]]) if paras else []
        post_len.append(prefix + sum(bare))
        for ks in (rec.get("evidence") or {}).values():
            evidence_start += [int(starts[k]) for k in ks if k < len(paras)]
    post_len, para_len, evidence_start = (np.array(x, dtype=int) for x in (post_len, para_len, evidence_start))

    def share(x: np.ndarray, limit: int) -> float:
        return round(float((x >= limit).mean()), 3) if len(x) else 0.0

    return {"max_length": max_length, "posts": len(post_len), "post_tokens_median": float(np.median(post_len)) if len(post_len) else 0.0,
            "post_tokens_max": int(post_len.max()) if len(post_len) else 0,
            "posts_beyond_window": share(post_len, content + 1), "posts_beyond_512": share(post_len, 511),
            "paragraphs": len(para_len), "paragraph_tokens_median": float(np.median(para_len)) if len(para_len) else 0.0,
            "paragraphs_beyond_window": share(para_len, content + 1),
            "evidence_paragraphs": len(evidence_start), "evidence_beyond_window": share(evidence_start, content),
            "evidence_beyond_512": share(evidence_start, 510)}


def coverage_text(c: dict[str, Any]) -> str:
    """``window_coverage`` as the lines the CLI prints."""
    w = c["max_length"]
    return (f"posts: {c['posts']}, tokens as one sequence median {c['post_tokens_median']:.0f}, max {c['post_tokens_max']}; "
            f"not fitting one {w}-token window {c['posts_beyond_window']:.0%}, not fitting 512 tokens {c['posts_beyond_512']:.0%}\n"
            f"paragraphs: {c['paragraphs']}, median {c['paragraph_tokens_median']:.0f} tokens; "
            f"not fitting one {w}-token window {c['paragraphs_beyond_window']:.1%}\n"
            f"gold evidence paragraphs: {c['evidence_paragraphs']}; starting beyond the post's first {w}-token window "
            f"{c['evidence_beyond_window']:.0%}, beyond its first 512 tokens {c['evidence_beyond_512']:.0%}")

