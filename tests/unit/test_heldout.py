"""Held-out scoring: leave-one-source-out splits, every post scored once, and the heldout.parquet contract."""

import numpy as np
import pandas as pd
import pytest

from classify.codebook import Codebook
from classify.evaluation.crossval import make_factory
from classify.evaluation.heldout import heldout_frame, loso_splits, predict_splits, slice_metrics


@pytest.fixture
def sourced(gold):
    g = gold.copy()
    g["source"] = np.where(np.arange(len(g)) % 2 == 0, "a", "b")
    g["split"] = "train"
    return g


def test_loso_holds_out_each_source_once(sourced):
    splits = loso_splits(sourced)
    assert [s for s, _, _ in splits] == ["a", "b"]
    for s, tr, te in splits:
        assert set(sourced["source"].iloc[te]) == {s} and s not in set(sourced["source"].iloc[tr])
    assert loso_splits(sourced.assign(source="a")) == []


def test_every_held_out_post_is_scored_by_a_model_that_never_saw_it(sourced):
    cb = Codebook.load()
    splits = loso_splits(sourced)
    oof, _ = predict_splits(sourced, make_factory("cue_rule", None, cb, 0), cb, [(tr, te) for _, tr, te in splits])
    assert (oof.fold[0] >= 0).all()
    assert np.allclose(oof.stance_p[0].sum(1), 1)
    m = slice_metrics(sourced, oof, cb, n_boot=50, seed=0)
    assert m["n"] == len(sourced) and 0 <= m["summary"]["topics"]["mean"] <= 1


def test_predict_splits_returns_the_model_of_the_split_asked_for(sourced):
    cb = Codebook.load()
    splits = [(tr, te) for _, tr, te in loso_splits(sourced)]
    assert predict_splits(sourced, make_factory("cue_rule", None, cb, 0), cb, splits)[1] is None
    oof, kept = predict_splits(sourced, make_factory("cue_rule", None, cb, 0), cb, splits, keep_model=1)
    assert kept is not None and kept.fitted_ and (oof.fold[0] >= 0).all()


def test_heldout_frame_has_the_contract_columns(sourced):
    cb = Codebook.load()
    oof, _ = predict_splits(sourced, make_factory("cue_rule", None, cb, 0), cb, [(np.arange(0), np.arange(len(sourced)))])
    df = heldout_frame(sourced, oof, cb, "test")
    labels = list(cb.topics) + list(cb.frames)
    expected = (["post_id", "source", "lang", "split", "protocol"] + [f"{k}_{lab}" for lab in labels for k in ("gold", "p", "pred")]
                + ["gold_stance", "pred_stance"] + [f"p_stance_{s}" for s in cb.stances])
    assert list(df.columns) == expected and len(df) == len(sourced)
    assert df["protocol"].eq("test").all() and df["gold_stance"].isin(cb.stances).all()
    j = cb.topics[0]
    assert df[f"gold_{j}"].tolist() == [j in t for t in sourced["topics"]]
    assert pd.api.types.is_bool_dtype(df[f"pred_{j}"])


def test_selection_score_averages_left_out_sources_with_cv_and_ignores_the_test_split():
    from classify.evaluation.protocol import rank_models, selection_score

    def heads(t, f, s):
        return {"topics": {"mean": t}, "frames": {"mean": f}, "stance_west": {"mean": s}}

    result = {"models": {"a": {"summary": heads(0.9, 0.6, 0.6)}, "b": {"summary": heads(0.6, 0.6, 0.6)}, "cue_rule": {"summary": heads(1, 1, 1)}},
              "heldout": {"a": {"loso": {"x": heads(0.3, 0.3, 0.3), "y": heads(0.3, 0.3, 0.3)}, "test": {"all": heads(1, 1, 1)}},
                          "b": {"loso": {"x": heads(0.6, 0.6, 0.6), "y": heads(0.6, 0.6, 0.6)}, "test": {"all": heads(0, 0, 0)}}}}
    assert selection_score(result, "a") == pytest.approx((0.7 + 0.3) / 2)
    assert selection_score(result, "b") == pytest.approx(0.6)
    assert rank_models(result) == ["b", "a"]  # a wins on CV alone, b on CV and left-out sources; test ignored


def test_loso_pairs_give_each_left_out_source_the_paired_difference_of_its_scores(sourced):
    """The report's per-source learned-minus-cue-rule differences are those of the left-out scores themselves."""
    from classify.evaluation.protocol import loso_pairs, outside_scores

    cb = Codebook.load()
    empty = sourced.iloc[:0]
    held = {}
    for kind, cfg in (("baseline", {"baseline": {"threshold_folds": 0, "sentence_vectors": 0.0}}), ("cue_rule", None)):
        factory = make_factory(kind, cfg, cb, 0)
        cv, _ = predict_splits(sourced, factory, cb, [(tr, te) for _, tr, te in loso_splits(sourced)])  # any out-of-fold outputs
        held[kind] = outside_scores(sourced, empty, factory, cb, cv, n_boot=50, seed=0)
    pairs = loso_pairs(sourced, held, cb, n_boot=50, seed=0)
    assert sorted(pairs) == ["a", "b"] and all(list(p) == ["baseline - cue_rule"] for p in pairs.values())
    for s, p in pairs.items():
        for task in ("topics", "frames", "stance_west"):
            want = held["baseline"]["metrics"]["loso"][s][task]["mean"] - held["cue_rule"]["metrics"]["loso"][s][task]["mean"]
            assert p["baseline - cue_rule"][task]["diff"] == pytest.approx(want)
            lo, hi = p["baseline - cue_rule"][task]["ci"]
            assert lo <= hi
    assert loso_pairs(sourced, {"baseline": held["baseline"]}, cb, n_boot=50, seed=0) == {}
