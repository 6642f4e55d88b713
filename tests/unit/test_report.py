"""The report renders the metrics dict only: files, reproducible metrics.json, self-contained HTML."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from classify.evaluation.report import write_report
from classify.evaluation.report_tables import summary_markdown

TOPICS = ["cyber", "energy", "ukraine", "brics"]
FRAMES = ["multipolar_order", "western_hegemony", "sanctions_illegitimate", "western_security_threat",
          "ukraine_delegitimised", "peace_and_dialogue", "international_law", "reliable_partnership",
          "historical_memory", "civilisational_values"]
STANCES = ["against", "favor", "none"]
KINDS = ("baseline", "transformer", "cue_rule")
HEADLINE = {"topics": "micro_f1", "frames": "macro_f1", "stance_west": "macro_f1"}
ABSENT = "civilisational_values"
T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def _interval(rng: np.random.Generator, centre: float) -> list[float]:
    return [max(0.0, centre - float(rng.uniform(0.03, 0.2))), min(1.0, centre + float(rng.uniform(0.03, 0.2)))]


def _score(rng: np.random.Generator, lo: float = 0.2, hi: float = 0.95) -> float:
    return float(rng.uniform(lo, hi))


def fake_result(seed: int = 0, kinds: tuple[str, ...] = KINDS) -> dict:
    """A metrics dict with the exact structure of ``classify.evaluate.evaluate``, random but valid numbers."""
    rng = np.random.default_rng(seed)
    n_posts, langs = 59, {"en": 40, "ru": 17, "fr": 2}
    models = {}
    for kind in kinds:
        summary = {}
        for task, metric in HEADLINE.items():
            mean = _score(rng)
            lo, hi = sorted([_score(rng, 0.1, mean), _score(rng, mean, 1.0)])
            summary[task] = {"metric": metric, "mean": mean, "ci": _interval(rng, mean), "boot_sd": _score(rng, 0.01, 0.08),
                             "fold_sd": _score(rng, 0.02, 0.15), "fold_min": lo, "fold_max": hi}
            summary[task]["averages"] = ({"macro_f1": _score(rng), "f_avg": _score(rng), "accuracy": _score(rng)}
                                         if task == "stance_west" else
                                         {"micro_f1": _score(rng), "macro_f1": _score(rng), "samples_f1": _score(rng)})
        per_label = {}
        for task, ids in (("topics", TOPICS), ("frames", FRAMES)):
            per_label[task] = {}
            for lid in ids:
                support = 0 if lid == ABSENT else int(rng.integers(2, 30))
                f1 = 0.0 if lid == ABSENT else _score(rng, 0.0, 1.0)
                per_label[task][lid] = {"precision": _score(rng, 0, 1), "recall": _score(rng, 0, 1), "f1": f1,
                                        "support": support, "predicted": int(rng.integers(0, 30)),
                                        "ci": [0.0, 0.0] if lid == ABSENT else _interval(rng, f1)}
        per_label["stance_west"] = {c: {"precision": _score(rng, 0, 1), "recall": _score(rng, 0, 1), "f1": _score(rng, 0, 1),
                                        "support": int(s), "predicted": int(rng.integers(0, 40))}
                                    for c, s in zip(STANCES, (25, 4, 30))}
        confusion = rng.multinomial(n_posts, np.ones(9) / 9).reshape(3, 3).tolist()
        cal_p = sorted(float(x) for x in rng.uniform(0, 1, 10))
        models[kind] = {
            "summary": summary, "per_label": per_label,
            "per_language": {lang: {"n": n, **{t: _score(rng) for t in HEADLINE}} for lang, n in langs.items()},
            "confusion": confusion,
            "evidence": ({"top_paragraph_in_gold": None, "n_frames_correct": 0.0} if kind == "cue_rule"
                         else {"top_paragraph_in_gold": _score(rng), "n_frames_correct": float(rng.integers(5, 40))}),
            "calibration": {"mean_predicted": cal_p, "fraction_positive": [min(1.0, p * _score(rng, 0.6, 1.2)) for p in cal_p],
                            "count": [int(c) for c in rng.integers(1, 500, 10)]},
        }
    paired = {f"{a} - {b}": {t: {"diff": float(rng.normal(0, 0.1)), "ci": sorted(float(x) for x in rng.normal(0, 0.1, 2)),
                                 "p_not_better": _score(rng, 0, 1)} for t in HEADLINE}
              for i, a in enumerate(kinds) for b in kinds[i + 1:]}
    openings = ["МИД России: западные санкции нелегитимны | незаконны; см. https://t.me/MID_Russia/1234 <script>alert(1)</script>",
                "The collective West *imposes* its so-called rules-based order on [the] Global South, said the Ambassador.",
                "Российско-китайские переговоры по вопросам международной информационной безопасности состоялись в Москве."]
    errors = []
    for kind in kinds:
        for j, opening in enumerate(openings):
            errors.append({"model": kind, "post_id": f"p{j:02d}_{kind[:2]}", "lang": "ru" if j != 1 else "en",
                           "n_errors": 5 - j, "opening": opening,
                           "gold": {"topics": ["ukraine"], "frames": ["sanctions_illegitimate", "western_hegemony"],
                                    "stance_west": "against"},
                           "predicted": {"topics": [] if j == 0 else ["ukraine", "energy"], "frames": ["western_hegemony"],
                                         "stance_west": "none" if j != 2 else "against"}})
    learned = [k for k in kinds if k != "cue_rule"]
    return {
        "protocol": {"folds": 5, "repeats": 3, "split_seeds": [0, 1, 2], "n_boot": 1000,
                     "splitter": "MultilabelStratifiedKFold over duplicate/translation groups", "zero_division": 0,
                     "macro_average": "over labels present in gold; absent labels listed in data.absent_labels"},
        "data": {"gold": "labels/gold.jsonl", "sha256": hashlib.sha256(b"gold").hexdigest(), "n_posts": n_posts,
                 "n_groups": 50, "languages": langs, "absent_labels": [ABSENT]},
        "codebook": {"version": "1.0", "topics": TOPICS, "frames": FRAMES, "stances": STANCES},
        "models": models, "paired": paired,
        "cross_lingual": {k: {"ru": {"n": 17, **{t: _score(rng) for t in HEADLINE}},
                              "non_en": {"n": 19, **{t: _score(rng) for t in HEADLINE}}} for k in kinds},
        "errors": errors,
        "ranking": sorted(learned, key=lambda k: -np.mean([models[k]["summary"][t]["mean"] for t in HEADLINE])),
        "timings": {k: {"cv_seconds": round(_score(rng, 1, 900), 1), "fit_seconds_mean": round(_score(rng, 0.1, 60), 2)}
                    for k in kinds},
    }


def fake_predictions(kinds: tuple[str, ...] = KINDS) -> pd.DataFrame:
    rows = []
    for kind in kinds:
        for i in range(4):
            rows.append({"model": kind, "repeat": 0, "fold": i % 2, "post_id": f"p{i:02d}", "lang": "en",
                         "gold_topics": ["cyber"] if i % 2 else [], "gold_frames": [], "gold_stance": "none",
                         "pred_topics": ["cyber", "energy"][: i % 3], "pred_frames": [], "pred_stance": "against",
                         "p_cyber": 0.1 * i, "p_stance_none": 0.5})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("eval")
    result = fake_result()
    return result, write_report(result, fake_predictions(), out, now=T0)


@pytest.fixture
def no_plots(monkeypatch):
    """Skip drawing (about 1 s per report) in tests about files rather than rendering."""
    import classify.evaluation.report as report

    for name in ("plot_per_label_f1", "plot_confusions", "plot_calibration"):
        monkeypatch.setattr(report, name, lambda result: None)


FILES = ("metrics.json", "timings.json", "predictions.parquet", "report.md", "report.html")


def test_files_are_written_with_a_latest_copy(written):
    _, run_dir = written
    assert re.fullmatch(r"20250102-030405-[0-9a-f]{8}", run_dir.name)
    latest = run_dir.parent / "latest"
    for name in FILES:
        assert (run_dir / name).stat().st_size > 0, name
        assert (latest / name).read_bytes() == (run_dir / name).read_bytes(), name
    assert sorted(p.name for p in (run_dir / "plots").iterdir()) == ["calibration.png", "per_label_f1.png",
                                                                     "stance_confusion.png"]
    assert not [p for p in run_dir.parent.iterdir() if p.name.startswith(".")], "temporary folders left behind"


def test_run_id_hashes_metrics_json(written):
    _, run_dir = written
    assert run_dir.name.endswith(hashlib.sha256((run_dir / "metrics.json").read_bytes()).hexdigest()[:8])


def test_metrics_json_is_the_dict_without_timings(written):
    result, run_dir = written
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert "timings" not in metrics and "run_dir" not in metrics
    assert metrics == json.loads(json.dumps({k: v for k, v in result.items() if k != "timings"}))
    assert json.loads((run_dir / "timings.json").read_text(encoding="utf-8")) == result["timings"]


def test_predictions_keep_lists(written):
    _, run_dir = written
    schema = pq.read_schema(run_dir / "predictions.parquet")
    for col in ("gold_topics", "pred_topics", "gold_frames"):
        assert str(schema.field(col).type).startswith("list"), col
    back = pd.read_parquet(run_dir / "predictions.parquet")
    assert list(back.loc[2, "pred_topics"]) == ["cyber", "energy"]


def test_html_shows_the_summary_table_before_any_plot(written):
    _, run_dir = written
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    summary, first_img = page.find('<table id="summary"'), page.find("<img")
    assert 0 < summary < first_img
    assert page.find("<table") == summary
    assert "cue rule (reference)" in page[summary:first_img]


def test_html_is_self_contained(written):
    _, run_dir = written
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href|action|data)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"url\(|@import|<script|<link|<iframe", page, re.I)
    srcs = re.findall(r'<img[^>]*\bsrc="([^"]*)"', page)
    assert len(srcs) == 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    # Post text is shown as text: the link and the markup in an opening are escaped, never live.
    assert "https://t.me/MID_Russia/1234 &lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_same_result_twice_gives_identical_metrics_json(tmp_path, no_plots):
    a = write_report(fake_result(), fake_predictions(), tmp_path, now=T0)
    b = write_report(fake_result(), fake_predictions(), tmp_path, now=datetime(2026, 6, 1, tzinfo=timezone.utc))
    assert a != b and a.exists()
    assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes()
    assert a.name.split("-")[-1] == b.name.split("-")[-1]


def test_latest_follows_the_newest_run_and_result_is_untouched(tmp_path, no_plots):
    first = write_report(fake_result(0), fake_predictions(), tmp_path, now=T0)
    result = fake_result(1)
    result["run_dir"] = "ignored"
    before = copy.deepcopy(result)
    second = write_report(result, fake_predictions(), tmp_path, now=T0)
    assert result == before
    assert first != second and first.exists()
    assert (tmp_path / "latest" / "metrics.json").read_bytes() == (second / "metrics.json").read_bytes()
    assert "run_dir" not in json.loads((second / "metrics.json").read_text(encoding="utf-8"))
    index = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert [r["run"] for r in index] == [first.name, second.name]  # one index line per run, in order
    assert set(index[1]["cv"]) == set(result["models"])


def test_markdown_report_orders_sections_and_links_existing_plots(written):
    _, run_dir = written
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    order = [md.index(s) for s in ("# classify evaluation report", "## Summary", "### Paired differences",
                                   "### Cross-lingual transfer", "### By language", "## Per-label results",
                                   "## Plots", "## Worst errors", "## Evidence quality", "## Timings")]
    assert order == sorted(order)
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (run_dir / link).is_file(), link
    assert "\\<script\\>" in md and "\\|" in md   # data text escaped in Markdown tables too


def test_summary_markdown_has_every_task_and_model():
    result = fake_result()
    md = summary_markdown(result)
    lines = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len(lines) == 2 + 3
    assert lines[0].count("|") == 2 + len(KINDS) and "cue rule (reference)" in lines[0]
    assert lines[0].index(result["ranking"][0]) < lines[0].index("cue rule (reference)")
    s = result["models"]["baseline"]["summary"]["frames"]
    assert f"{s['mean']:.3f} [{s['ci'][0]:.2f}, {s['ci'][1]:.2f}] · sd {s['fold_sd']:.2f}" in md


def test_a_single_model_without_pairs_or_errors_still_renders(tmp_path):
    result = fake_result(kinds=("cue_rule",))
    result["errors"], result["paired"], result["ranking"] = [], {}, []
    run_dir = write_report(result, fake_predictions(("cue_rule",)), tmp_path, now=T0)
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "No errors recorded." in page and "Paired differences" not in page


def test_left_out_source_differences_render_one_block_per_source(tmp_path):
    result = fake_result()
    d = {"diff": 0.042, "ci": [-0.01, 0.09], "p_not_better": 0.12}
    result["heldout_paired_loso"] = {"ria": {"baseline - cue_rule": {"topics": d, "frames": d, "stance_west": d}},
                                     "dipromats": {"baseline - cue_rule": {"topics": d}}}
    run_dir = write_report(result, fake_predictions(KINDS), tmp_path, now=T0)
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    block = md.split("### Learned models against the cue rule on each left-out source", 1)[1].split("###", 1)[0]
    rows = [ln for ln in block.splitlines() if ln.startswith("| **")]
    assert [r.split("|")[1].strip() for r in rows] == ["**baseline − cue rule (reference), left out: dipromats**",
                                                       "**baseline − cue rule (reference), left out: ria**"]
    assert block.count("+0.042") == 4 and "[-0.01, 0.09]" in block
    result.pop("heldout_paired_loso")
    run_dir = write_report(result, fake_predictions(KINDS), tmp_path / "none", now=T0)
    assert "each left-out source" not in (run_dir / "report.md").read_text(encoding="utf-8")
