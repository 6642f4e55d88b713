"""The tagging-row contract shared by every engine: output columns, how a post's prediction becomes
its row, and how rows are written and read back.

A row holds ids, provenance, labels, probabilities, evidence and a ``status`` (``ok``, ``empty``,
``media_only``). Identical posts are predicted once (first-copy cache) whichever engine runs.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import pandas as pd

from ..learners.base import Model

OUTPUT_COLUMNS = ("post_id", "message_id", "source", "locator", "date", "channel", "lang", "topics", "frames",
                  "stance_west", "scores", "stance_scores", "evidence", "status")


JSON_COLUMNS = ("topics", "frames", "scores", "stance_scores", "evidence")


CACHE_POSTS = 20000



def row_status(post: dict) -> str:
    if not post["empty_text"]:
        return "ok"
    return "media_only" if post.get("media") else "empty"


def predict_first_copies(model: Model, posts: list[dict]) -> dict[str, dict]:
    """Encoded predictions (``encode_prediction``) of the first copy of each post id with text, by post id.

    Copies share a post_id but may differ in emoji or case: the first one is tagged, for all of
    them (as when the copies fall in different batches: see ``tag_batch``).
    """
    first: dict[str, dict] = {}
    for p in posts:
        if not p["empty_text"]:
            first.setdefault(p["post_id"], p)
    if not first:
        return {}
    pred = model.predict([p["paragraphs"] for p in first.values()])
    return dict(zip(first, map(encode_prediction, pred.to_dict("records"))))


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def encode_prediction(pred: dict) -> dict:
    """A prediction as its output columns, the lists and maps already JSON text.

    Why: the JSON is made once per distinct post (in a worker process when ``--jobs`` > 1) and the
    first-copy cache holds compact strings instead of nested dicts of floats, so neither the
    parent's writing nor its memory grows with the number of labels and paragraphs.
    ``labels`` (not an output column) keeps the predicted ids for the closing summary.
    """
    out = {c: _dumps(pred[c]) for c in JSON_COLUMNS}
    out["stance_west"] = pred["stance_west"]
    out["labels"] = (*pred["topics"], *pred["frames"])
    return out


NO_PREDICTION = encode_prediction({"topics": [], "frames": [], "scores": {}, "stance_scores": {}, "evidence": {}, "stance_west": None})
"""The columns of a post that is not tagged (``empty`` or ``media_only``)."""


def tag_batch(model: Model | None, posts: list[dict], cache: OrderedDict, predicted: dict[str, dict] | None = None) -> list[dict]:
    """Rows for a batch; posts already seen (same ``post_id``) reuse the cached prediction.

    ``predicted``: predictions a worker made for this batch (``predict_first_copies`` over all of
    it); only those of posts not in ``cache`` are taken, so the rows equal the serial path's.
    Rows hold the output columns as strings (``to_frame``), plus ``labels``.
    """
    todo = [p for p in posts if p["post_id"] not in cache]
    if predicted is None:
        predicted = predict_first_copies(model, todo)
    for pid in dict.fromkeys(p["post_id"] for p in todo if not p["empty_text"]):
        cache[pid] = predicted[pid]
        if len(cache) > CACHE_POSTS:
            cache.popitem(last=False)
    rows = []
    for p in posts:
        status = row_status(p)
        pred = cache[p["post_id"]] if status == "ok" else NO_PREDICTION
        rows.append({
            "post_id": p["post_id"], "message_id": p["message_id"], "source": p["source"], "locator": p["locator"],
            "date": p["date"], "channel": p["channel"], "lang": p["lang"], **pred, "status": status,
        })
    return rows


def as_str(v) -> str | None:
    return None if v is None or (isinstance(v, float) and v != v) else str(v)


def to_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a DataFrame of strings, maps/lists as JSON, so every format has the same columns.

    Rows from ``tag_batch`` are strings already; other values (lists, maps, numbers) are encoded
    here. ``read_tags`` decodes the JSON columns back into lists and dicts.
    """
    df = pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))
    for col in OUTPUT_COLUMNS:
        values = df[col].tolist()
        if col in JSON_COLUMNS:
            values = [v if isinstance(v, str) else _dumps(v) for v in values]
        else:
            values = [v if isinstance(v, str) else as_str(v) for v in values]
        df[col] = pd.Series(values, index=df.index, dtype=object)
    return df


def output_schema():
    import pyarrow as pa

    return pa.schema([(c, pa.string()) for c in OUTPUT_COLUMNS])


def read_tags(path: str | Path) -> pd.DataFrame:
    """Read a tag output file back, with lists and maps decoded."""
    path = Path(path)
    fmt = path.suffix.lower()
    if fmt == ".parquet":
        df = pd.read_parquet(path)
    elif fmt == ".csv":
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    else:
        df = pd.read_json(path, lines=True, dtype=False)
    for col in JSON_COLUMNS:
        df[col] = df[col].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    return df

