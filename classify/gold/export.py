"""The gold as a Hugging Face dataset: typed features from the codebook, train and test splits, a card.

    python -m classify.labels export --format hf OUT     # then datasets.load_from_disk(OUT)

Topics and frames are sequences of class labels and the stance a class label, all named by the
codebook, so a reader of the dataset needs no other file to decode them; evidence is a list of
``{frame, paragraphs}``. The card (``README.md``) states where the posts come from, their licences
and how the labels were made.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from ..codebook import Codebook
from ..errors import ConfigError

TEXT_FIELDS = ("post_id", "text", "lang", "source", "round", "group", "channel", "date")


def features(cb: Codebook):
    """The dataset's ``datasets.Features``, class names from the codebook."""
    from datasets import ClassLabel, Features, Sequence, Value

    return Features({**{f: Value("string") for f in TEXT_FIELDS}, "paragraphs": Sequence(Value("string")),
                     "topics": Sequence(ClassLabel(names=list(cb.topics))),
                     "frames": Sequence(ClassLabel(names=list(cb.frames))),
                     "stance_west": ClassLabel(names=list(cb.stances)),
                     "evidence": Sequence({"frame": ClassLabel(names=list(cb.frames)), "paragraphs": Sequence(Value("int32"))})})


def _columns(part: pd.DataFrame) -> dict[str, list]:
    cols: dict[str, list[Any]] = {f: [None if pd.isna(v) else str(v) for v in part[f]] if f in part else [None] * len(part)
                                  for f in TEXT_FIELDS}
    cols["paragraphs"] = [list(p) for p in part["paragraphs"]]
    for task in ("topics", "frames", "stance_west"):
        cols[task] = list(part[task])
    cols["evidence"] = [{"frame": list(ev), "paragraphs": [list(map(int, ks)) for ks in ev.values()]} for ev in part["evidence"]]
    return cols


def export_hf(gold: pd.DataFrame, out: str | Path, cb: Codebook, gold_path: str = "labels/gold.jsonl") -> Path:
    """Write ``gold`` as a ``datasets.DatasetDict`` (one split per value of ``split``) with its card."""
    from datasets import Dataset, DatasetDict

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out}: exists and is not empty; choose a new folder for the dataset")
    feats = features(cb)
    dd = DatasetDict({split: Dataset.from_dict(_columns(part), features=feats)
                      for split, part in gold.groupby("split", sort=True)})
    dd.save_to_disk(str(out))
    (out / "README.md").write_text(card(gold, cb, gold_path), encoding="utf-8")
    return out


def card(gold: pd.DataFrame, cb: Codebook, gold_path: str) -> str:
    """The dataset card: what the posts are, their sources and licences, the labels and how they were made."""
    from .sources import load_sources

    sources = load_sources()
    langs = sorted({str(x) for x in gold["lang"]})
    counts = Counter((s, sp) for s, sp in zip(gold["source"], gold["split"]))
    rows = "\n".join(f"| {s} | {sp} | {n} | {sources[s].what if s in sources else ''} | {sources[s].attribution if s in sources else ''} |"
                     for (s, sp), n in sorted(counts.items()))
    return f"""---
language: [{", ".join(langs)}]
license: other
task_categories: [text-classification]
pretty_name: classify gold (topics, framing cues, stance toward the West)
---

# classify gold: Russian state diplomacy and state media posts, labelled by codebook {cb.version}

Exported by `python -m classify.labels export --format hf` from `{gold_path}`; load it with
`datasets.load_from_disk`. {len(gold)} posts.

## Labels

- `topics` (multi-label): {", ".join(cb.topics)}
- `frames` (multi-label, with `evidence`: the paragraphs that carry each frame): {", ".join(cb.frames)}
- `stance_west`: {", ".join(cb.stances)}

Each post was labelled in two independent passes by separate annotator sessions given only the
codebook and the posts; every disagreement was decided by an adjudicator with a written reason
(`labels/rounds/` in the repository holds the passes, the decisions and the agreement reports).
The annotators are instances of one language model, so their agreement is an upper bound of what
human coders would reach.

## Splits and sources

`test` holds random samples per source, labelled before any model was tuned and never used to
train, tune, threshold or choose a model; `train` holds everything else (the sample dumps and posts
picked by the active-learning queue, which over-represents rare labels).

| source | split | posts | what | attribution and licence |
|---|---|---:|---|---|
{rows}

Keep the attribution of each source with any copy; cite DIPROMATS 2023 (Moral et al., Procesamiento
del Lenguaje Natural 71, 2023) when you use its posts.
"""
