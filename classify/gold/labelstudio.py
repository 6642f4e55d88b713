"""Label Studio, the tool annotators use: a labelling config generated from the codebook, and tasks
with the model's pre-annotations.

Everything here is plain XML and JSON that a Label Studio server reads; nothing imports
``label_studio``, so the core package works without the ``annotate`` extra. The config is the
contract that ``classify.gold.lsimport`` reads back: the control names below, label ids as the
choice and label values, and one ``Paragraphs`` item per post paragraph, so a frame marked on
paragraph k carries evidence k.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

from ..codebook import Codebook, Label
from ..errors import ConfigError, InputError

OBJECT = "post"
"""The ``Paragraphs`` object: ``data.paragraphs``, a list of ``{"n": "[k]", "text": ...}``."""
TOPICS, FRAMES, STANCE, NOTES = "topics", "frames", "stance_west", "notes"
CONTROLS = (TOPICS, FRAMES, STANCE, NOTES)
TASK_KIND = "classify-post"
"""``data.classify.kind`` of every task we write; an export without it is from another project."""
PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
           "#469990", "#808000", "#000075", "#a9a9a9")


# ====================================================================================== config
def _hint(label: Label) -> str:
    """What an annotator sees on hover: name, definition and what the label excludes."""
    text = f"{label.name}: {' '.join(label.definition.split())}"
    if label.exclude:
        text += " Not: " + "; ".join(label.exclude)
    return text


def labelling_config(codebook: Codebook | None = None) -> str:
    """The Label Studio labelling config (XML) for the codebook's three tasks.

    Frames are ``ParagraphLabels`` on the post's numbered paragraphs: selecting text in a paragraph
    and a frame marks the frame with that paragraph as evidence. Topics are multiple choices, the
    stance a required single choice, notes a free text. Every label shows its codebook definition
    on hover, and a collapsible panel lists the definitions.
    """
    cb = codebook or Codebook.load()
    q = quoteattr
    lines = ["<View>",
             '  <Style>.lsf-paragraphs__phrase { font-size: 15px; }</Style>',
             '  <Header value="$title" size="5"/>',
             f'  <Paragraphs name="{OBJECT}" value="$paragraphs" nameKey="n" textKey="text"/>',
             '  <Header value="Frames: select text in a paragraph, then the frame (that paragraph is its evidence)" size="5"/>',
             f'  <ParagraphLabels name="{FRAMES}" toName="{OBJECT}" choice="multiple">']
    for k, lid in enumerate(cb.frames):
        lab = cb.label(lid)
        lines.append(f"    <Label value={q(lid)} hint={q(_hint(lab))} background={q(PALETTE[k % len(PALETTE)])}/>")
    lines += ["  </ParagraphLabels>",
              '  <Header value="Topics" size="5"/>',
              f'  <Choices name="{TOPICS}" toName="{OBJECT}" choice="multiple" showInline="true">']
    lines += [f"    <Choice value={q(lid)} hint={q(_hint(cb.label(lid)))}/>" for lid in cb.topics]
    lines += ["  </Choices>",
              '  <Header value="Stance toward the West" size="5"/>',
              f'  <Choices name="{STANCE}" toName="{OBJECT}" choice="single-radio" showInline="true" required="true">']
    lines += [f"    <Choice value={q(lid)} hint={q(_hint(cb.label(lid)))}/>" for lid in cb.stances]
    lines += ["  </Choices>",
              f'  <TextArea name="{NOTES}" toName="{OBJECT}" placeholder="Notes: borderline calls and why (Shift+Enter or Add to keep them)" '
              'rows="2" maxSubmissions="1" editable="true"/>',
              f"  <Collapse><Panel value={q(f'Codebook {cb.version}: definitions')}>"]
    for task in ("topics", "frames", "stance_west"):
        for lid in cb.labels(task):
            lines.append(f'    <Header value={q(f"{lid} — {_hint(cb.label(lid))}")} size="6" underline="false"/>')
    lines += ["  </Panel></Collapse>", "</View>", ""]
    return "\n".join(lines)


def check_config(xml: str) -> list[str]:
    """Problems the Label Studio SDK finds in a config (empty when it is valid or the SDK is absent)."""
    try:
        from label_studio_sdk.label_interface import LabelInterface
    except ImportError:
        return []
    try:
        LabelInterface(xml).validate()
    except Exception as exc:  # the SDK raises its own and lxml's errors
        return [f"{type(exc).__name__}: {exc}"]
    return []


# ====================================================================================== posts
def _paragraphs(value: Any) -> list[str] | None:
    """A post's paragraphs from a list, a ``{"0": ...}`` map (round files) or a JSON string."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    if isinstance(value, dict):
        try:
            return [str(value[str(k)]) for k in range(len(value))]
        except KeyError:
            return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(p) for p in value]
    return None


def _plain(value: Any) -> Any:
    """JSON-friendly scalar: ``None`` for NaN/NaT, ISO text for timestamps."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_posts_file(path: str | Path) -> list[dict[str, Any]]:
    """Posts to label from a queue (``labels queue -o``, JSONL), a round's ``posts.jsonl`` or an
    ingested table (``classify.ingest -o``: .parquet, .csv or .jsonl).

    Each post comes back with ``post_id``, ``paragraphs`` (list), ``lang``, ``source``,
    ``channel``, ``date`` and, when the file has them, ``dup_group``, ``source_name``,
    ``locator``, ``reason`` and ``scores``. Posts without text (media only) are dropped, and so is
    every copy of a post after the first (same ``post_id`` or duplicate group).

    Raises
    ------
    InputError
        Naming the file and line (or row) of a record without ``post_id`` or paragraphs.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; pass a queue (labels queue -o queue.jsonl) or an ingested table")
    if path.suffix.lower() == ".jsonl":
        rows, place = [], "line"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:line {n}: invalid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(rec, dict):
                raise InputError(f"{path}:line {n}: expected a JSON object, got {type(rec).__name__}")
            rows.append((n, rec))
    else:
        from ..io.tables import read_table

        try:
            table = read_table(path)
        except ConfigError:
            raise InputError(f"{path}: expected a .jsonl queue or an ingested .parquet/.csv/.jsonl table") from None
        rows, place = [(k + 1, rec) for k, rec in enumerate(table.to_dict("records"))], "row"
    out, seen = [], set()
    for n, rec in rows:
        if "post_id" not in rec:
            raise InputError(f"{path}:{place} {n}: no post_id; not a queue, round or ingested posts file")
        paras = _paragraphs(rec.get("paragraphs"))
        if paras is None and isinstance(rec.get("text"), str):
            paras = [p.strip() for p in rec["text"].splitlines() if p.strip()]
        if paras is None:
            raise InputError(f"{path}:{place} {n}: post {rec['post_id']} has no paragraphs or text")
        pid, group = str(rec["post_id"]), str(_plain(rec.get("dup_group")) or rec["post_id"])
        if not paras or pid in seen or group in seen:
            continue
        seen |= {pid, group}
        post = {"post_id": pid, "paragraphs": paras, "lang": _plain(rec.get("lang")),
                "source": _plain(rec.get("source_name") or rec.get("source")), "channel": _plain(rec.get("channel")),
                "date": _plain(rec.get("date"))}
        for key in ("dup_group", "source_name", "locator", "reason", "scores"):
            if key in rec and _plain(rec[key]) is not None:
                post[key] = _plain(rec[key])
        if "source" in rec and "source_name" in rec:
            post["file"] = _plain(rec["source"])
        out.append(post)
    if not out:
        raise InputError(f"{path}: no post with text; nothing to label")
    return out


# ====================================================================================== pre-annotations
def preannotator(model_dir: str | Path | None, codebook: Codebook | None = None) -> tuple[Any, str]:
    """The model that pre-annotates, and its ``model_version`` as Label Studio shows it.

    ``model_dir``: a folder written by ``classify.train`` (any kind); ``None``: the codebook's cue
    rule, which needs no training.
    """
    cb = codebook or Codebook.load()
    if model_dir is None:
        from ..learners.cuerule import CueRuleModel

        return CueRuleModel(cb).fit(), f"cue_rule codebook-{cb.version}"
    from ..learners import load_model

    model = load_model(model_dir)
    card = model.card_
    stamp = str(card.get("date") or "")[:19]
    kind, name = str(card.get("kind", model.kind)), Path(model_dir).name
    return model, " ".join(x for x in (kind, name if name != kind else "", stamp, f"codebook-{cb.version}") if x)


def _region(k: int, text: str, frame: str, score: float) -> dict[str, Any]:
    return {"id": f"{frame[:6]}{k}", "from_name": FRAMES, "to_name": OBJECT, "type": "paragraphlabels",
            "value": {"start": str(k), "end": str(k), "startOffset": 0, "endOffset": len(text), "text": text,
                      "paragraphlabels": [frame]}, "score": round(float(score), 4)}


def predictions(model: Any, paragraphs: list[list[str]], codebook: Codebook) -> list[dict[str, Any]]:
    """One Label Studio prediction per post: the model's topics, frames (on their top paragraph) and
    stance, each with its probability as ``score``.

    The prediction's own ``score`` is its least certain decision (a label's probability, or one
    minus it when the label is off; the stance's probability), so Label Studio's "prediction score"
    ordering shows the most uncertain posts first.
    """
    proba = model.predict_proba(paragraphs)
    t_th, f_th = model.threshold_vector("topics"), model.threshold_vector("frames")
    out = []
    for i, paras in enumerate(paragraphs):
        pt, pf, ps = proba.topics[i], proba.frames[i], proba.stance[i]
        result: list[dict[str, Any]] = []
        topics = [j for j in range(len(pt)) if pt[j] >= t_th[j]]
        if topics:
            result.append({"from_name": TOPICS, "to_name": OBJECT, "type": "choices",
                           "value": {"choices": [codebook.topics[j] for j in topics]},
                           "score": round(float(min(pt[j] for j in topics)), 4)})
        per_para = proba.paragraph_frames[i] if proba.paragraph_frames else None
        for j in (j for j in range(len(pf)) if pf[j] >= f_th[j]):
            k = int(per_para[:, j].argmax()) if per_para is not None and len(per_para) else 0
            k = min(k, len(paras) - 1)
            result.append(_region(k, paras[k], codebook.frames[j], pf[j]))
        s = int(ps.argmax())
        result.append({"from_name": STANCE, "to_name": OBJECT, "type": "choices",
                       "value": {"choices": [codebook.stances[s]]}, "score": round(float(ps[s]), 4)})
        conf = np.concatenate([np.where(pt >= t_th, pt, 1 - pt), np.where(pf >= f_th, pf, 1 - pf), [ps[s]]])
        out.append({"score": round(float(conf.min()), 4), "result": result})
    return out


def make_tasks(posts: Iterable[dict[str, Any]], model: Any = None, model_version: str = "",
               codebook: Codebook | None = None, round_name: str | None = None) -> list[dict[str, Any]]:
    """Label Studio tasks (the JSON import format), one per post, with pre-annotations when ``model``
    is given.

    ``data`` carries what the annotator sees (numbered paragraphs, language, source) and what the
    import needs to map the export back (``post_id``, the codebook version, the round).
    """
    cb = codebook or Codebook.load()
    posts = list(posts)
    tasks = []
    for p in posts:
        where = ", ".join(str(x) for x in (p.get("lang"), p.get("source"), p.get("channel"), p.get("date")) if x)
        data = {"post_id": p["post_id"], "title": f"Post {p['post_id']} ({where})",
                "lang": p.get("lang") or "und", "source": p.get("source") or "",
                "channel": p.get("channel"), "date": p.get("date"),
                "paragraphs": [{"n": f"[{k}]", "text": t} for k, t in enumerate(p["paragraphs"])],
                "classify": {"kind": TASK_KIND, "codebook_version": cb.version, "round": round_name}}
        for key in ("reason", "scores"):
            if key in p:
                data[key] = p[key]
        tasks.append({"data": data})
    if model is not None:
        for task, pred in zip(tasks, predictions(model, [p["paragraphs"] for p in posts], cb)):
            task["predictions"] = [{"model_version": model_version, **pred}]
    return tasks


def round_posts(posts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``posts.jsonl`` records of a new round made from posts to label (``classify.gold.rounds``)."""
    recs = []
    for p in posts:
        rec = {"post_id": p["post_id"], "dup_group": p.get("dup_group", p["post_id"]),
               "source_name": p.get("source_name") or p.get("source"), "source": p.get("file") or p.get("source"),
               "locator": p.get("locator"), "channel": p.get("channel"), "date": p.get("date"), "lang": p.get("lang"),
               "paragraphs": {str(k): t for k, t in enumerate(p["paragraphs"])}}
        for key in ("reason", "scores"):
            if key in p:
                rec[key] = p[key]
        recs.append(rec)
    return recs
