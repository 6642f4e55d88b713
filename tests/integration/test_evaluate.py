"""The evaluation harness: copies of a post never straddle folds, and results are reproducible."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from classify.codebook import Codebook
from classify.evaluation.crossval import cross_validate, make_factory
from classify.evaluation.protocol import evaluate
from classify.evaluation.transfer import english_only, load_translations


def leaky_gold() -> pd.DataFrame:
    from conftest import make_gold

    g = make_gold()
    # Plant a leak: three copies of one post with a unique made-up cue word and a rare label.
    copies = []
    for k in range(3):
        copies.append({"post_id": f"copy{k}", "dup_group": "leak", "paragraphs": ["Zorblax protocol signed.", "Nothing else."],
                       "text": "Zorblax protocol signed.\nNothing else.", "lang": "en", "topics": ["cyber"],
                       "frames": ["civilisational_values"], "stance_west": "favor",
                       "evidence": {"civilisational_values": [0]}})
    return pd.concat([g, pd.DataFrame(copies)], ignore_index=True)


def test_copies_of_a_post_stay_in_one_fold():
    g = leaky_gold()
    g["group"] = g["dup_group"]
    cb = Codebook.load()
    oof = cross_validate(g, make_factory("baseline", {"baseline": {"threshold_folds": 0}}, cb, 0), cb, folds=4, repeats=3, seed=0)
    idx = np.flatnonzero(g["dup_group"] == "leak")
    for r in range(3):
        assert len(set(oof.fold[r, idx])) == 1, "copies of one post were split across folds"


def test_without_groups_the_leak_would_be_exploited():
    """Control: if each copy were its own group, a copy's twin sits in training and is recalled."""
    g = leaky_gold()
    g["group"] = g["post_id"]
    cb = Codebook.load()
    oof = cross_validate(g, make_factory("baseline", {"baseline": {"threshold_folds": 0, "use_cues": False}}, cb, 0), cb, folds=4, repeats=2, seed=0)
    idx = np.flatnonzero(g["dup_group"] == "leak")
    split = [len(set(oof.fold[r, idx])) > 1 for r in range(2)]
    assert any(split)


def test_parallel_fits_give_the_outputs_of_a_sequential_run(monkeypatch):
    """The baseline's folds run in worker processes; every output must equal the one-process run's."""
    from conftest import make_gold

    g = make_gold()
    cb = Codebook.load()
    factory = make_factory("baseline", {"baseline": {"threshold_folds": 2}}, cb, 0)
    assert factory().fits_on_one_core and not make_factory("cue_rule", None, cb, 0)().fits_on_one_core
    seen = []
    parallel = cross_validate(g, factory, cb, folds=3, repeats=1, seed=0, progress=seen.append)
    assert seen == [f"repeat 1/1 fold {k}/3 done" for k in (1, 2, 3)]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # one core: fits in this process
    sequential = cross_validate(g, factory, cb, folds=3, repeats=1, seed=0)
    for name in ("topics_p", "frames_p", "stance_p", "topics_y", "frames_y", "stance_y", "evidence", "fold"):
        np.testing.assert_array_equal(getattr(parallel, name), getattr(sequential, name), err_msg=name)
    assert parallel.fold_scores == sequential.fold_scores


@pytest.fixture
def gold_file(tmp_path):
    from conftest import make_gold

    g = make_gold()
    path = tmp_path / "gold.jsonl"
    g.to_json(path, orient="records", lines=True, force_ascii=False)
    return path


@pytest.mark.slow
def test_same_command_twice_gives_same_metrics(gold_file):
    kw = dict(models=["baseline", "cue_rule"], folds=3, repeats=2, seed=1, out_dir=None, n_boot=50,
              configs={"baseline": {"threshold_folds": 3}})
    a, b = evaluate(gold_file, **kw), evaluate(gold_file, **kw)
    for r in (a, b):
        r.pop("timings")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_metrics_structure_and_interval_covers_estimate(gold_file):
    res = evaluate(gold_file, models=["baseline", "cue_rule"], folds=3, repeats=1, out_dir=None, n_boot=200,
                   configs={"baseline": {"threshold_folds": 0}}, cross_lingual=True)
    for kind in ("baseline", "cue_rule"):
        for task in ("topics", "frames", "stance_west"):
            s = res["models"][kind]["summary"][task]
            assert s["ci"][0] - 1e-9 <= s["mean"] <= s["ci"][1] + 1e-9
    assert "baseline - cue_rule" in res["paired"]
    assert set(res["cross_lingual"]["baseline"]) == {"ru", "non_en"}
    assert res["ranking"] == ["baseline"]


def test_cross_lingual_checks_run_only_when_asked(gold_file, tmp_path, monkeypatch):
    """Off by default (no English-only fits at all, and the report says how to add them); on with the flag."""
    import classify.evaluation.protocol as P

    calls = []
    real = P.english_only
    monkeypatch.setattr(P, "english_only", lambda *a, **k: calls.append(1) or real(*a, **k))
    res = evaluate(gold_file, models=["cue_rule"], folds=3, repeats=1, out_dir=tmp_path, n_boot=10)
    assert calls == [] and res["cross_lingual"] == {} and "translated_transfer" not in res
    assert res["protocol"]["cross_lingual"] is False and "--cross-lingual" in (tmp_path / "latest" / "report.md").read_text()
    res = evaluate(gold_file, models=["cue_rule"], folds=3, repeats=1, out_dir=None, n_boot=10, cross_lingual=True)
    assert calls == [1] and set(res["cross_lingual"]["cue_rule"]) == {"ru", "non_en"}


def _write_translations(path, gold, make):
    with path.open("w", encoding="utf-8") as fh:
        for pid, paras, lang in zip(gold["post_id"], gold["paragraphs"], gold["lang"]):
            if lang == "en":
                fh.write(json.dumps({"post_id": pid, "paragraphs": [make(p) for p in paras]}, ensure_ascii=False) + "\n")


def test_translated_transfer_identity_and_garbage(gold_file, tmp_path):
    """Same models score the originals and their 'translations': identical text gives a zero gap,
    text without the cues loses what the cues found."""
    from conftest import make_gold

    g = make_gold()
    kw = dict(models=["baseline", "cue_rule"], folds=3, repeats=1, out_dir=None, n_boot=50, configs={"baseline": {"threshold_folds": 0}},
              cross_lingual=True)
    same = tmp_path / "same.jsonl"
    _write_translations(same, g, lambda p: p)
    res = evaluate(gold_file, translations_path=same, **kw)["translated_transfer"]
    assert res["n_posts"] == int((g["lang"] == "en").sum())
    for kind in ("baseline", "cue_rule"):
        for task in ("topics", "frames", "stance_west"):
            assert res["models"][kind][task]["ru_minus_en"]["diff"] == 0.0
    assert "baseline - cue_rule" in res["paired_ru"]
    junk = tmp_path / "junk.jsonl"
    _write_translations(junk, g, lambda p: "lorem ipsum dolor")
    res = evaluate(gold_file, translations_path=junk, **kw)["translated_transfer"]
    assert res["models"]["cue_rule"]["topics"]["ru"]["mean"] == 0.0 < res["models"]["cue_rule"]["topics"]["en"]["mean"]


def test_english_only_check_is_repeated_over_splits(gold_file, tmp_path):
    """``repeats`` English-only splits (split seeds seed + r): repeat 0 is the single-split check,
    every translated post is held out once per repeat, and the report says how many repeats."""
    from conftest import make_gold

    g = make_gold()
    path = tmp_path / "tr.jsonl"
    _write_translations(path, g, lambda p: p.upper())
    tr = load_translations(path)
    cb = Codebook.load()
    factory = make_factory("baseline", {"baseline": {"threshold_folds": 0}}, cb, 0)
    _, one = english_only(g, factory, cb, tr, seed=0, repeats=1)
    _, two = english_only(g, factory, cb, tr, seed=0, repeats=2)
    for lang in (0, 1):
        assert two[lang].topics_y.shape[0] == 2 and one[lang].topics_y.shape[0] == 1
        np.testing.assert_array_equal(two[lang].topics_p[0], one[lang].topics_p[0])
        np.testing.assert_array_equal(two[lang].stance_y[0], one[lang].stance_y[0])
    for r in range(2):
        assert sorted(set(two[1].fold[r].tolist())) == [0, 1]  # both halves held out, every post scored
    _, other = english_only(g, factory, cb, tr, seed=1, repeats=1)
    np.testing.assert_array_equal(two[1].fold[1], other[1].fold[0])  # repeat 1 is split seed 1
    res = evaluate(gold_file, models=["cue_rule"], folds=3, repeats=2, out_dir=None, n_boot=10, translations_path=path,
                   cross_lingual=True)
    assert res["translated_transfer"]["protocol"].startswith("2 repeat(s) of 2 folds") and "split seeds 0, 1" in res["translated_transfer"]["protocol"]


def test_bad_translations_file_is_one_line_error(gold_file, tmp_path):
    from classify.errors import InputError

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"post_id": "p00"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:1: not a translation record"):
        evaluate(gold_file, models=["cue_rule"], folds=3, repeats=1, out_dir=None, n_boot=10, translations_path=bad,
                 cross_lingual=True)


def test_train_ships_the_random_test_model_instead_of_fitting_it_again(tmp_path, monkeypatch):
    """The model fitted on the train split for the random test is the one saved: no further fit, and it
    predicts exactly as a fresh fit on the train split with the same seed."""
    from conftest import make_gold

    from classify.evaluation.crossval import post_groups
    from classify.gold.files import load_gold, split_of
    from classify.learners import load_model
    from classify.learners.baseline.model import BaselineModel
    from classify.train import train

    g = make_gold()
    g["source"] = np.where(np.arange(len(g)) % 2 == 0, "a", "b")
    g["split"] = np.where(np.arange(len(g)) % 5 == 4, "test", "train")
    path = tmp_path / "gold.jsonl"
    g.to_json(path, orient="records", lines=True, force_ascii=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # fits in this process, where they are counted
    fits = []
    real_fit = BaselineModel.fit
    monkeypatch.setattr(BaselineModel, "fit", lambda self, *a, **k: fits.append(1) or real_fit(self, *a, **k))
    cfg = {"baseline": {"threshold_folds": 2}}
    res = train(path, tmp_path / "models", models=["baseline"], configs=cfg, folds=3, eval_dir=None)
    assert len(fits) == 3 + 2 + 1  # cross-validation, one per left-out source, the random test's: none after
    assert res.train_seconds["baseline"] > 0
    train_split = split_of(load_gold(path), "train")
    fresh = make_factory("baseline", cfg, Codebook.load(), 0)().fit(train_split, train_split, groups=post_groups(train_split))
    shipped = load_model(tmp_path / "models" / "baseline")
    a, b = shipped.predict_proba(g), fresh.predict_proba(g)
    for task in ("topics", "frames", "stance"):
        np.testing.assert_array_equal(getattr(a, task), getattr(b, task))
    assert shipped.thresholds_ == fresh.thresholds_
