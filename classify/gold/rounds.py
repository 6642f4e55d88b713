"""Annotation rounds: which posts went to the annotators, how they were chosen, and what for.

Each round is a folder ``labels/rounds/<name>/``:

* ``round.json``: ``split`` (``test``: a random sample kept for the reported test, never used to
  train, tune, threshold or choose; ``train``: everything else), ``how`` the posts were chosen
  (``all``, ``random``, ``queue``), the source, seed and date;
* ``posts.jsonl``: the posts as the annotators saw them (``post_id``, ``lang``, numbered
  ``paragraphs``), with ``source_name`` and, for queue picks, the reason and scores;
* ``passes/<annotator>.jsonl``, ``adjudication.jsonl`` and ``AGREEMENT.md`` once labelled.

A post is in at most one round: sampling excludes every duplicate group already given out.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._cli import atomic_write_text
from ..errors import ConfigError, InputError
from .sources import representatives

ROUNDS = Path("labels/rounds")
SPLITS = ("train", "test")


def round_names(root: Path = ROUNDS) -> list[str]:
    """Rounds that have a ``round.json``, sorted by name."""
    return sorted(p.parent.name for p in root.glob("*/round.json"))


def read_meta(name: str, root: Path = ROUNDS) -> dict[str, Any]:
    """``round.json`` of a round, checked for a known split."""
    path = root / name / "round.json"
    if not path.exists():
        raise InputError(f"{path}: no such round; rounds are {', '.join(round_names(root)) or 'none yet'}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:line {exc.lineno}: invalid JSON ({exc.msg})") from None
    if meta.get("split") not in SPLITS:
        raise InputError(f"{path}: split must be one of {', '.join(SPLITS)}, got {meta.get('split')!r}")
    return meta


def read_posts(name: str, root: Path = ROUNDS) -> list[dict[str, Any]]:
    """The posts of a round as given to the annotators (paragraphs as a list)."""
    path = root / name / "posts.jsonl"
    if not path.exists():
        raise InputError(f"{path}: no such file; the round has no posts")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            paras = rec["paragraphs"]
            rec["paragraphs"] = [paras[str(k)] for k in range(len(paras))] if isinstance(paras, dict) else list(paras)
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"{path}:line {n}: not a round post ({type(exc).__name__}: {exc})") from None
        out.append(rec)
    return out


def given_groups(root: Path = ROUNDS) -> set[str]:
    """Duplicate groups of every post already in a round."""
    return {str(p.get("dup_group") or p["post_id"]) for name in round_names(root) for p in read_posts(name, root)}


def random_sample(corpus: pd.DataFrame, source: str, n: int, seed: int, exclude: set[str]) -> pd.DataFrame:
    """``n`` posts drawn uniformly, without replacement, from the unique posts with text of ``source``.

    One copy per duplicate group is a candidate; groups in ``exclude`` are not. The draw depends only
    on the candidates' order (input order) and ``seed``.
    """
    cand = representatives(corpus[corpus["source_name"] == source])
    cand = cand[~cand["dup_group"].astype(str).isin(exclude)]
    if len(cand) < n:
        raise ConfigError(f"source {source} has {len(cand)} unlabelled unique posts, fewer than the {n} asked for")
    pick = np.sort(np.random.default_rng(seed).choice(len(cand), size=n, replace=False))
    return cand.iloc[pick]


def round_records(posts: pd.DataFrame, extra: dict[str, list] | None = None) -> list[dict[str, Any]]:
    """``posts.jsonl`` records: what annotators see, plus where each post comes from."""
    recs = []
    for k, (_, p) in enumerate(posts.iterrows()):
        rec = {"post_id": str(p["post_id"]), "dup_group": str(p["dup_group"]), "source_name": p["source_name"],
               "source": p["source"], "locator": p["locator"], "channel": p.get("channel"), "date": p.get("date"),
               "lang": p["lang"], "paragraphs": {str(i): t for i, t in enumerate(p["paragraphs"])}}
        for key, values in (extra or {}).items():
            rec[key] = values[k]
        recs.append(rec)
    return recs


def write_round(name: str, records: list[dict[str, Any]], meta: dict[str, Any], root: Path = ROUNDS) -> Path:
    """Create ``labels/rounds/<name>/`` with ``round.json`` and ``posts.jsonl``; never overwrites a round."""
    folder = root / name
    if (folder / "round.json").exists():
        raise ConfigError(f"{folder}: round {name} exists already; choose another --round name")
    if meta.get("split") not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}")
    meta = {"name": name, **meta, "n_posts": len(records), "created": time.strftime("%Y-%m-%d")}
    atomic_write_text(folder / "posts.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    atomic_write_text(folder / "round.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return folder


def blind_records(records: list[dict[str, Any]], order_seed: int) -> list[dict[str, Any]]:
    """What an annotator gets: ``post_id``, ``lang`` and numbered paragraphs, in a shuffled order."""
    order = np.random.default_rng(order_seed).permutation(len(records))
    return [{"post_id": records[i]["post_id"], "lang": records[i]["lang"], "paragraphs": records[i]["paragraphs"]} for i in order]
