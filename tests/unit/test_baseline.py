"""The baseline learns from a small fixture, is deterministic, and validates its parameters."""

import numpy as np
import pandas as pd
import pytest

from classify.errors import ConfigError
from classify.learners.baseline.model import BaselineConfig, BaselineModel


def test_learns_held_out_posts(gold):
    # the toy gold marks posts on the "Kiev regime" `against` without naming the West: no stance gate here
    m = BaselineModel(BaselineConfig(threshold_folds=3, use_cues=False, stance_needs_west=False)).fit(gold, gold)
    out = m.predict(["BRICS leaders met at the summit in Kazan and welcomed new BRICS partners.",
                     "Киевский режим снова применил террористические методы."])
    assert "brics" in out.loc[0, "topics"]
    assert "ukraine" in out.loc[1, "topics"]
    assert out.loc[1, "stance_west"] == "against"


def test_evidence_is_the_paragraph_with_the_frame():
    from conftest import make_gold

    g = make_gold()
    m = BaselineModel(BaselineConfig(threshold_folds=0)).fit(g, g)
    post = [["The weather in Moscow was sunny today.", "The Kiev regime shelled civilians with neo-Nazi units."]]
    out = m.predict(post)
    assert "ukraine_delegitimised" in out.loc[0, "frames"]
    assert out.loc[0, "evidence"]["ukraine_delegitimised"][0]["paragraph"] == 1


def test_deterministic_with_seed(gold):
    a = BaselineModel(BaselineConfig(seed=3)).fit(gold, gold).predict_proba(gold)
    b = BaselineModel(BaselineConfig(seed=3)).fit(gold, gold).predict_proba(gold)
    assert np.array_equal(a.topics, b.topics) and np.array_equal(a.stance, b.stance)


def test_thresholds_come_from_inner_folds(gold):
    m = BaselineModel(BaselineConfig(threshold_folds=4)).fit(gold, gold)
    assert "out-of-fold" in m.thresholds_["source"]
    assert 0.05 <= m.thresholds_["topics"] <= 0.95


@pytest.mark.parametrize("bad,match", [({"C": -1}, "'C' parameter of BaselineConfig must be a float in the range"),
                                       ({"threshold_folds": 1}, "'threshold_folds'"),
                                       ({"char_ngrams": (5, 2)}, "'char_ngrams'")])
def test_bad_config_messages(bad, match):
    with pytest.raises(ConfigError, match=match):
        BaselineConfig(**bad)


def test_unknown_config_key():
    with pytest.raises(ConfigError, match="unknown BaselineConfig parameter"):
        BaselineConfig.from_dict({"Cc": 1})


def test_length_mismatch(gold):
    with pytest.raises(ConfigError, match="same length"):
        BaselineModel().fit(gold.iloc[:5], gold)


def test_label_without_positives_backs_off_to_cues(gold):
    g = gold.copy()
    g["frames"] = g["frames"].map(lambda fs: [f for f in fs if f != "historical_memory"])
    g["evidence"] = [{f: e[f] for f in fs} for e, fs in zip(g["evidence"], g["frames"])]
    m = BaselineModel(BaselineConfig(threshold_folds=0)).fit(g, g)
    out = m.predict(pd.DataFrame({"paragraphs": [["The Great Patriotic War ended in Victory."]]}))
    assert out.loc[0, "scores"]["historical_memory"] >= 0.5


@pytest.mark.parametrize("per_topic", [False, True])
def test_topic_stacker_shared_or_per_topic_survives_save_and_load(gold, tmp_path, per_topic):
    """``stack_topics_per_label`` gives each topic its own stacker row; a folder saved before the
    option (no key in config.json) loads as the shared stacker it was trained with, and one saved
    before ``stack_cues`` defaulted to off (no key) loads with the stacker it holds."""
    import json

    from classify.learners import load_model

    m = BaselineModel(BaselineConfig(threshold_folds=3, stack_cues=True, stack_topics_per_label=per_topic)).fit(gold, gold)
    nt = len(m.codebook.topics)
    assert bool(np.allclose(m.stackers_[:nt], m.stackers_[0])) is not per_topic
    m.save(tmp_path / "m")
    got = load_model(tmp_path / "m")
    assert got.config.stack_topics_per_label is per_topic
    np.testing.assert_allclose(got.stackers_, m.stackers_)
    np.testing.assert_allclose(got.predict_proba(gold).topics, m.predict_proba(gold).topics, atol=1e-9)
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.pop("stack_topics_per_label")
    cfg.pop("stack_cues")
    cfg_path.write_text(json.dumps(cfg))
    old = load_model(tmp_path / "m")
    assert old.config.stack_topics_per_label is False
    assert old.config.stack_cues is True and old.stackers_ is not None


def test_default_baseline_fits_no_stacker(gold):
    """The default leaves the cue stacker out (eval/SELECTION.md): inner folds still choose thresholds."""
    m = BaselineModel(BaselineConfig(threshold_folds=3)).fit(gold, gold)
    assert m.stackers_ is None and m.thresholds_["source"].startswith("inner 3-fold")


def test_stance_needs_west_gives_none_where_no_western_actor_is_named(gold, tmp_path):
    from classify.learners import load_model

    posts = [["Sanctions imposed by the EU are illegal."], ["Москва и Пекин подписали соглашение."]]
    plain = BaselineModel(BaselineConfig(threshold_folds=0, stance_needs_west=False)).fit(gold, gold)
    gated = BaselineModel(BaselineConfig(threshold_folds=0)).fit(gold, gold)
    S, S0 = gated.predict_proba(posts).stance, plain.predict_proba(posts).stance
    np.testing.assert_allclose(S[0], S0[0])
    assert S0[1].max() < 1.0 and S[1].tolist() == np.eye(3)[gated.codebook.stances.index("none")].tolist()
    gated.save(tmp_path / "m")
    np.testing.assert_allclose(load_model(tmp_path / "m").predict_proba(posts).stance, S)


def test_cue_hashtags_reach_the_cue_features_and_old_models_load_without(gold, tmp_path):
    import json

    from classify.learners import load_model

    post = [["Putin will chair the 12th #BRICS Summit."]]
    plain = BaselineModel(BaselineConfig(threshold_folds=0, cue_hashtags=False)).fit(gold, gold)
    read = BaselineModel(BaselineConfig(threshold_folds=0)).fit(gold, gold)
    brics = read.codebook.topics.index("brics")
    assert read.predict_proba(post).topics[0, brics] > plain.predict_proba(post).topics[0, brics]
    read.save(tmp_path / "m")
    assert load_model(tmp_path / "m").config.cue_hashtags is True
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    del cfg["cue_hashtags"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    assert load_model(tmp_path / "m").config.cue_hashtags is False


def test_sentence_vectors_carry_a_label_across_languages_and_survive_saving(gold, tmp_path):

    from classify.errors import ModelError
    from classify.learners import load_model
    from classify.learners.sentvec import DIM

    # English posts only: TF-IDF alone has no Russian word to go on, the multilingual vectors do
    en = gold[gold["lang"] == "en"].reset_index(drop=True)
    cfg = {"threshold_folds": 0, "use_cues": False, "stance_needs_west": False}
    plain = BaselineModel(BaselineConfig(**cfg, sentence_vectors=0.0)).fit(en, en)
    vec = BaselineModel(BaselineConfig(**cfg, sentence_vectors=1.0)).fit(en, en)
    assert vec.coef_.shape[1] == plain.coef_.shape[1] + DIM
    ru = ["Саммит БРИКС в Казани: лидеры стран БРИКС приветствовали новых партнёров объединения."]
    brics = vec.codebook.topics.index("brics")
    assert vec.predict_proba(ru).topics[0, brics] > plain.predict_proba(ru).topics[0, brics]
    vec.save(tmp_path / "m")
    np.testing.assert_allclose(load_model(tmp_path / "m").predict_proba(ru).topics, vec.predict_proba(ru).topics)
    _drop_saved_option(tmp_path / "m", "sentence_vectors")  # a model saved before the option: no block, so its weights no longer fit
    with pytest.raises(ModelError, match="weights"):
        load_model(tmp_path / "m")
    plain.save(tmp_path / "old")  # a model saved before the option, without vectors, loads and predicts as it did
    _drop_saved_option(tmp_path / "old", "sentence_vectors")
    np.testing.assert_allclose(load_model(tmp_path / "old").predict_proba(ru).topics, plain.predict_proba(ru).topics)
    with pytest.raises(ConfigError, match="sentence_vectors"):
        BaselineConfig(sentence_vectors=-1.0)


def test_label_similarity_reaches_frames_and_stance_not_topics_and_survives_saving(gold, tmp_path):

    from classify.learners import load_model
    from classify.learners.baseline.features import label_vectors

    assert BaselineConfig().label_similarity == 5.0  # the default, since it won its comparison
    cfg = {"threshold_folds": 0, "stance_needs_west": False}
    plain = BaselineModel(BaselineConfig(**cfg, label_similarity=0.0)).fit(gold, gold)
    sim = BaselineModel(BaselineConfig(**cfg, label_similarity=5.0)).fit(gold, gold)
    n_labels = len(sim.codebook.topics) + len(sim.codebook.frames)
    nt = len(sim.codebook.topics)
    assert sim.coef_.shape[1] == plain.coef_.shape[1] + n_labels
    # the last block: zero weight for every topic, learned weights for the frames and the stance
    assert not sim.coef_[:nt, -n_labels:].any()
    assert np.abs(sim.coef_[nt:, -n_labels:]).sum() > 0 and np.abs(sim.stance_coef_[:, -n_labels:]).sum() > 0
    posts = ["Западные санкции незаконны и нарушают международное право.", "Rosatom will build a nuclear power plant."]
    assert not np.allclose(sim.predict_proba(posts).frames, plain.predict_proba(posts).frames)
    V = label_vectors(sim.codebook, sim.matcher_.label_ids)
    np.testing.assert_allclose(np.linalg.norm(V, axis=1), 1.0)
    sim.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(posts).frames, sim.predict_proba(posts).frames)
    from safetensors.numpy import load_file

    saved = load_file(str(tmp_path / "m" / "weights.safetensors"))["label_vectors"]  # saved, not recomputed on load
    np.testing.assert_array_equal(saved, sim.feat_.prototypes)
    np.testing.assert_array_equal(loaded.feat_.prototypes, saved)
    plain.save(tmp_path / "old")  # a model saved before the option loads without the block
    _drop_saved_option(tmp_path / "old", "label_similarity")
    np.testing.assert_allclose(load_model(tmp_path / "old").predict_proba(posts).frames, plain.predict_proba(posts).frames)
    with pytest.raises(ConfigError, match="label_similarity"):
        BaselineConfig(label_similarity=-1.0)


def _drop_saved_option(model_dir, key):
    """Make a saved model look as if it was saved before the option ``key`` existed."""
    import json

    path = model_dir / "config.json"
    cfg = json.loads(path.read_text())
    del cfg[key]
    path.write_text(json.dumps(cfg))
