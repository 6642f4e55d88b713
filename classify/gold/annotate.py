"""The ``labels labelstudio tasks|import`` jobs: files in, files out, one summary line back.

Kept apart from ``classify.labels`` so the command module stays thin, and apart from the format
modules (``labelstudio``, ``lsimport``) because these jobs also know about rounds.
"""

from __future__ import annotations

import json
from pathlib import Path

from .._cli import atomic_write_text
from ..codebook import Codebook
from ..errors import ConfigError, InputError
from .labelstudio import make_tasks, preannotator, read_posts_file, round_posts
from .lsimport import import_export
from .rounds import given_groups, read_posts, write_round


def _round_posts_for_tasks(posts: list[dict] | None, name: str, root: Path, split: str) -> tuple[list[dict], str]:
    """The posts of round ``name``: its own, or ``posts`` (checked against it, or made into it)."""
    if (root / name / "round.json").exists():
        given = {str(p["post_id"]): p for p in read_posts(name, root)}
        if posts is None:
            out = [{**p, "post_id": str(p["post_id"]), "source": p.get("source_name") or p.get("source")} for p in given.values()]
            return out, f"the {len(out)} posts of round {name}"
        missing = [p["post_id"] for p in posts if p["post_id"] not in given]
        if missing:
            raise InputError(f"{root / name}/posts.jsonl: post {missing[0]} (and {len(missing) - 1} more) is not in round "
                             f"{name}; choose a new --round name for new posts")
        changed = [p["post_id"] for p in posts if list(given[p["post_id"]]["paragraphs"]) != p["paragraphs"]]
        if changed:
            raise InputError(f"{root / name}/posts.jsonl: post {changed[0]} has other paragraphs in the round than in the "
                             "input; evidence numbers would not match; make the tasks from the round (--round alone)")
        return posts, f"{len(posts)} posts of round {name}"
    if posts is None:
        raise InputError(f"{root / name}: no such round; give the posts to label (a queue file) to create it")
    taken = given_groups(root) if root.is_dir() else set()
    clash = [p["post_id"] for p in posts if str(p.get("dup_group", p["post_id"])) in taken or p["post_id"] in taken]
    if clash:
        raise InputError(f"post {clash[0]} (and {len(clash) - 1} more) is already in a round; a post is labelled in one "
                         "round only: drop it from the input or use that round")
    how = "queue" if any("reason" in p for p in posts) else "given"
    write_round(name, round_posts(posts), {"split": split, "how": how, "source": "mixed",
                                           "seed": None, "note": "made by labels labelstudio tasks"}, root)
    return posts, f"{len(posts)} posts in new round {name} ({split}, {root / name})"


def tasks_command(input_path: Path | None, out: Path, round_name: str | None, rounds: Path, split: str,
                  model_dir: Path | None, no_predictions: bool) -> str:
    """Write the tasks file (and the round, when new); return the summary line."""
    if input_path is None and round_name is None:
        raise ConfigError("give the posts to label (a queue or posts file) or --round NAME")
    if no_predictions and model_dir is not None:
        raise ConfigError("--model and --no-predictions exclude each other")
    posts = read_posts_file(input_path) if input_path is not None else None
    what = f"{len(posts)} posts of {input_path}" if posts is not None else ""
    cb = Codebook.load()
    model, version = (None, "") if no_predictions else preannotator(model_dir, cb)  # fail before writing a round
    if round_name is not None:
        posts, what = _round_posts_for_tasks(posts, round_name, rounds, split)
    tasks = make_tasks(posts, model, version, cb, round_name)
    atomic_write_text(out, json.dumps(tasks, ensure_ascii=False, indent=1) + "\n")
    pre = "no pre-annotations" if model is None else f"pre-annotations by {version}"
    return f"wrote {len(tasks)} tasks to {out} ({what}; {pre}); import it in Label Studio (project > Import)"


def import_command(export: Path, annotator: str, round_name: str | None, rounds: Path, out: Path | None,
                   posts_path: Path | None, user: str | None) -> str:
    """Write the pass file of one annotator from an export; return the summary line."""
    if not annotator or not annotator.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"--annotator must be a plain name (letters, digits, - and _), got {annotator!r}")
    if round_name is not None:
        posts = {str(p["post_id"]): p["paragraphs"] for p in read_posts(round_name, rounds)}
        out = out or rounds / round_name / "passes" / f"{annotator}.jsonl"
    elif out is None:
        raise ConfigError("name the round (--round NAME) or the pass file to write (-o PATH)")
    else:
        posts = {p["post_id"]: p["paragraphs"] for p in read_posts_file(posts_path)} if posts_path else None
    records, open_tasks = import_export(export, annotator, posts, user)
    if not records:
        raise InputError(f"{export}: no submitted annotation{' by ' + user if user else ''}; nothing to import")
    replaced = " (replaced the previous file)" if out.exists() else ""
    atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    minutes = sum(r["lead_time"] for r in records) / 60
    missing = f"; {len(posts) - len(records)} posts of the round not labelled yet" if round_name and len(posts) > len(records) else ""
    return (f"wrote {len(records)} annotations of {annotator} to {out}{replaced}; {open_tasks} tasks without annotation"
            f"{missing}; {minutes:.1f} min spent in Label Studio")
