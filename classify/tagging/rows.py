"""The tagging-row contract shared by every engine: output columns, how a post's prediction becomes
its row, and how rows are written and read back.

A row holds ids, provenance, labels, probabilities, evidence and a ``status`` (``ok``, ``empty``,
``media_only``, ``too_long``). Identical posts are predicted once (first-copy cache) whichever engine runs.
Parquet keeps lists and maps as native Arrow types (``output_schema``), CSV as JSON text, JSON Lines
as JSON values with ``null`` for a missing one; ``read_tags`` reads each back to the same DataFrame.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..learners.base import Model

OUTPUT_COLUMNS = ("post_id", "message_id", "source", "locator", "date", "channel", "lang", "topics", "frames",
                  "stance_west", "scores", "stance_scores", "evidence", "status")


JSON_COLUMNS = ("topics", "frames", "scores", "stance_scores", "evidence")
"""The nested columns: native Arrow types in Parquet, JSON text in CSV."""

LAYOUT = 2
"""Version of the part files' layout (2: native Arrow types), part of a run's fingerprint for ``--resume``."""


CACHE_POSTS = 20000



def row_status(post: dict) -> str:
    """``ok`` (tagged), ``too_long`` (over ``--max-chars``, not read), ``media_only`` or ``empty``."""
    if post.get("too_long"):
        return "too_long"
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


def _finite(v) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def encode_prediction(pred: dict) -> dict:
    """A prediction as its output columns, in the Arrow layout of ``output_schema``.

    Lists stay lists; maps become ``(key, value)`` pairs; evidence becomes one
    ``{frame, paragraph, text}`` per paragraph. Why this form: it is made once per distinct post (in
    a worker process when ``--jobs`` > 1), Arrow takes it as it is, and the first-copy cache holds
    flat tuples, not nested dicts. A non-finite score becomes ``None`` (JSON has no NaN).
    ``labels`` (not an output column) keeps the predicted ids for the closing summary.
    """
    return {"topics": list(pred["topics"]), "frames": list(pred["frames"]),
            "stance_west": pred["stance_west"],
            "scores": [(k, _finite(v)) for k, v in pred["scores"].items()],
            "stance_scores": [(k, _finite(v)) for k, v in pred["stance_scores"].items()],
            "evidence": _evidence_items(pred["evidence"]),
            "labels": (*pred["topics"], *pred["frames"])}


def _evidence_items(evidence: dict) -> list[dict]:
    return [{"frame": f, "paragraph": e.get("paragraph"), "text": e.get("text")} for f, items in evidence.items() for e in items]


NO_PREDICTION = encode_prediction({"topics": [], "frames": [], "scores": {}, "stance_scores": {}, "evidence": {}, "stance_west": None})
"""The columns of a post that is not tagged (``empty`` or ``media_only``)."""


def tag_batch(model: Model | None, posts: list[dict], cache: OrderedDict, predicted: dict[str, dict] | None = None) -> list[dict]:
    """Rows for a batch; posts already seen (same ``post_id``) reuse the cached prediction.

    ``predicted``: predictions a worker made for this batch (``predict_first_copies`` over all of
    it); only those of posts not in ``cache`` are taken, so the rows equal the serial path's.
    Rows hold the output columns in ``encode_prediction``'s layout (``to_table``), plus ``labels``.
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


# --------------------------------------------------------------------------- the Arrow layout
def output_schema():
    """Native Arrow types, so Polars, DuckDB and Spark read the lists and maps without JSON decoding.

    ``topics``/``frames``: ``list<string>``; ``scores``/``stance_scores``: ``map<string, double>``;
    ``evidence``: ``list<struct<frame, paragraph, text>>``; every other column a (nullable) string.
    """
    import pyarrow as pa

    types = {"topics": pa.list_(pa.string()), "frames": pa.list_(pa.string()),
             "scores": pa.map_(pa.string(), pa.float64()), "stance_scores": pa.map_(pa.string(), pa.float64()),
             "evidence": pa.list_(pa.struct([("frame", pa.string()), ("paragraph", pa.int64()), ("text", pa.string())]))}
    return pa.schema([(c, types.get(c, pa.string())) for c in OUTPUT_COLUMNS])


def as_str(v) -> str | None:
    return None if v is None or (isinstance(v, float) and v != v) else str(v)


def _arrow_value(col: str, v):
    """One cell in the Arrow layout, from ``tag_batch``'s layout or the decoded one of ``read_tags``."""
    if col not in JSON_COLUMNS:
        return v if v is None or isinstance(v, str) else as_str(v)
    if isinstance(v, str):
        v = json.loads(v)
    if col in ("scores", "stance_scores"):
        return [(k, _finite(x)) for k, x in (v.items() if isinstance(v, dict) else v or [])]
    if col == "evidence":
        return _evidence_items(v) if isinstance(v, dict) else list(v or [])
    return list(v or [])


def to_table(rows: list[dict]):
    """Rows (``tag_batch``'s, or decoded ones) as an Arrow table of ``output_schema``; extra keys are dropped."""
    import pyarrow as pa

    schema = output_schema()
    try:  # rows of ``tag_batch`` are in the Arrow layout already: no conversion cell by cell
        return pa.Table.from_pydict({c: [r.get(c) for r in rows] for c in OUTPUT_COLUMNS}, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, KeyError):
        return pa.Table.from_pydict({c: [_arrow_value(c, r.get(c)) for r in rows] for c in OUTPUT_COLUMNS}, schema=schema)


def _decoded(col: str, v):
    """A cell as ``read_tags`` gives it: lists, dicts (evidence: frame -> paragraphs), None when missing."""
    if col not in JSON_COLUMNS:
        return v if v != "" else None
    if isinstance(v, str):  # CSV, JSON Lines, or a Parquet file of an earlier version
        v = json.loads(v) if v else None
    if col in ("scores", "stance_scores"):
        return dict(v) if v is not None else {}
    if col == "evidence":
        return _evidence_dict(v) if isinstance(v, list) else dict(v or {})
    return list(v or [])


def _evidence_dict(items: list[dict]) -> dict:
    out: dict[str, list[dict]] = {}
    for e in items:
        out.setdefault(e["frame"], []).append({k: e[k] for k in ("paragraph", "text") if e.get(k) is not None})
    return out


def decode_records(records: list[dict]) -> list[dict]:
    """Records of any output format in the decoded form (see ``_decoded``), columns in output order."""
    return [{c: _decoded(c, r.get(c)) for c in OUTPUT_COLUMNS} for r in records]


def text_lines(table, fmt: str, header: bool) -> Iterator[str]:
    """An Arrow table of ``output_schema`` as CSV (lists and maps as JSON text) or JSON Lines lines.

    JSON Lines holds the decoded values, ``null`` for a missing one, never ``NaN`` (strict parsers
    such as ``jq`` and ``JSON.parse`` reject it).
    """
    records = decode_records(table.to_pylist())
    if fmt == ".jsonl":
        for rec in records:
            yield json.dumps(rec, ensure_ascii=False, allow_nan=False) + "\n"
        return
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(OUTPUT_COLUMNS)
    for rec in records:
        w.writerow(["" if rec[c] is None else _dumps(rec[c]) if c in JSON_COLUMNS else rec[c] for c in OUTPUT_COLUMNS])
    yield buf.getvalue()


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def read_tags(path: str | Path) -> pd.DataFrame:
    """Read a tag output back (.parquet, .csv, .jsonl, or a Ray engine's directory of Parquet files),
    with lists and maps decoded; every format gives the same DataFrame."""
    path = Path(path)
    fmt = path.suffix.lower()
    if path.is_dir() or fmt == ".parquet":
        import pyarrow.parquet as pq

        files = sorted(f for f in path.glob("part-*.parquet")) if path.is_dir() else [path]
        records = [r for f in files for r in pq.read_table(f).to_pylist()]
    elif fmt == ".csv":
        records = pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records")
    else:
        with path.open(encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh if line.strip()]
    missing = [c for c in ("post_id", "topics", "frames", "stance_west") if records and c not in records[0]]
    if missing:
        raise InputError(f"{path}: not a tag output (missing {', '.join(missing)}); give the -o of `python -m classify.tag`")
    return pd.DataFrame(decode_records(records), columns=list(OUTPUT_COLUMNS))
