"""The active-learning queue: quotas, near-duplicate skipping, coreset diversity, and the command on real posts."""

import json

import numpy as np
import pytest

from classify.codebook import Codebook
from classify.errors import ConfigError
from classify.gold.queue import QueueScores, pick, strategy_quotas, strategy_scores, take_turns
from classify.learners.base import Probas


def unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_quotas_add_up_and_follow_weights():
    q = strategy_quotas(11, {"rare": 0.4, "disagreement": 0.2, "uncertainty": 0.2, "diversity": 0.2})
    assert sum(q.values()) == 11 and q["rare"] >= 4
    with pytest.raises(ConfigError):
        strategy_quotas(5, {"rare": -1.0})


def test_near_duplicates_of_a_pick_or_a_labelled_post_are_skipped():
    emb = unit([[1, 0, 0], [1, 0.01, 0], [0, 1, 0], [0, 0, 1]])
    labelled = unit([[0, 0.01, 1]])  # candidate 3 is a near-duplicate of a labelled post
    scores = QueueScores(rare=np.array([0.9, 0.8, 0.1, 0.95]), disagreement=np.zeros(4), uncertainty=np.zeros(4))
    picks = pick(scores, emb, labelled, 2, {"rare": 1.0})
    assert picks == [(0, "rare"), (2, "rare")]  # 3 is blocked (labelled twin), 1 is 0's twin


def test_diversity_picks_the_post_farthest_from_the_labelled_ones():
    emb = unit([[1, 0.1, 0], [0.9, 0.3, 0], [0, 0, 1]])
    scores = QueueScores(rare=np.zeros(3), disagreement=np.zeros(3), uncertainty=np.zeros(3))
    assert pick(scores, emb, unit([[1, 0, 0]]), 1, {"diversity": 1.0}) == [(2, "diversity")]


def test_scores_see_rare_labels_from_the_rule_and_disagreement():
    cb = Codebook.load()
    nt, nf, ns = len(cb.topics), len(cb.frames), len(cb.stances)
    model = Probas(np.zeros((2, nt)), np.zeros((2, nf)), np.tile(np.eye(ns)[0], (2, 1)))
    rule = Probas(np.zeros((2, nt)), np.zeros((2, nf)), np.tile(np.eye(ns)[0], (2, 1)))
    rule.topics[1, cb.topics.index("brics")] = 1.0
    th = {"topics": np.full(nt, 0.5), "frames": np.full(nf, 0.5)}
    s = strategy_scores(model, rule, cb, th)
    assert s.rare.tolist() == [0.0, 1.0] and s.rare_label[1] == "brics"
    assert s.disagreement[1] > s.disagreement[0] == 0
    with pytest.raises(ConfigError, match="not in the codebook"):
        strategy_scores(model, rule, cb, th, rare=("no_such_label",))


def test_rare_labels_take_turns_so_a_common_one_cannot_take_every_pick():
    # column 0 (say stance against) is likely on every candidate; column 1 (favor) only on 4 and 5
    M = np.array([[0.99, 0.0], [0.98, 0.1], [0.97, 0.0], [0.96, 0.0], [0.2, 0.6], [0.1, 0.7]])
    order, turn = take_turns(M)
    assert order[:4] == [0, 5, 1, 4] and turn[5] == 1 and turn[0] == 0
    scores = QueueScores(rare=M[np.arange(6), turn], disagreement=np.zeros(6), uncertainty=np.zeros(6),
                         rare_label=[["against", "favor"][j] for j in turn], rare_order=order)
    picks = pick(scores, np.eye(6), np.zeros((0, 6)), 4, {"rare": 1.0})
    assert sorted(i for i, _ in picks) == [0, 1, 4, 5]  # by the highest probability alone: 0, 1, 2, 3


def test_an_unknown_rare_label_is_refused_before_any_work(tmp_path, capsys):
    from classify.labels import main

    assert main(["queue", "-n", "3", "-o", str(tmp_path / "q.jsonl"), "--rare", "stance:favour"]) != 0
    err = capsys.readouterr().err
    assert "'stance:favour' is not in the codebook" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "q.jsonl").exists()


@pytest.mark.slow
def test_queue_command_on_real_pool_posts(tmp_path, tiny_encoder):
    """Picks from real RIA posts: n records, each with a reason and scores, none already in a round."""
    from conftest import make_gold

    from classify.gold.rounds import given_groups
    from classify.labels import main
    from classify.learners.baseline.model import BaselineConfig, BaselineModel

    g = make_gold()  # a small saved model: the default, a baseline fit on the whole train split, takes minutes
    BaselineModel(BaselineConfig(threshold_folds=0)).fit(g, g).save(tmp_path / "model")
    out = tmp_path / "q.jsonl"
    assert main(["queue", "-n", "8", "--source", "ria", "-o", str(out), "--encoder", str(tiny_encoder),
                 "--model", str(tmp_path / "model"),
                 "--near-duplicate", "1.01", "--rare", "stance:favor", "cyber"]) == 0  # tiny encoder: all posts alike
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(recs) == 8 and len({r["post_id"] for r in recs}) == 8
    assert all(r["reason"] and r["source_name"] == "ria" for r in recs)
    assert all(("stance:favor" in r["reason"] or "cyber" in r["reason"]) for r in recs if r["scores"]["strategy"] == "rare")
    assert {r["scores"]["strategy"] for r in recs} == {"rare", "disagreement", "uncertainty", "diversity"}
    assert not {r["dup_group"] for r in recs} & given_groups()


def test_the_queue_model_is_a_baseline_fit_on_the_train_split_unless_one_is_given(tmp_path):
    from conftest import make_gold

    from classify.labels import _queue_model
    from classify.learners.baseline.model import BaselineModel

    g = make_gold()
    fitted = _queue_model(None, g)
    assert isinstance(fitted, BaselineModel) and fitted.fitted_ and fitted.card_["n_posts"] == len(g)
    fitted.save(tmp_path / "m")
    loaded = _queue_model(tmp_path / "m", None)
    np.testing.assert_array_equal(loaded.predict_proba(g).stance, fitted.predict_proba(g).stance)
