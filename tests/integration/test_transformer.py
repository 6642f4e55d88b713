"""The transformer model with a tiny random encoder built in the test session (no real weights)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from classify.errors import ConfigError, ModelError
from classify.learners import load_model
from classify.learners.transformer.config import TransformerConfig
from classify.learners.transformer.model import TransformerModel
from classify.learners.transformer.network import windows


def config(enc, **kw):
    """Learned topics, no TF-IDF blends and no stance gate here, so the network's heads are what these tests exercise."""
    return TransformerConfig(encoder=str(enc), epochs=2, **{"threshold_folds": 0, "topics_from_cues": False, "stance_tfidf": 0.0,
                                                            "frames_tfidf": 0.0, "stance_needs_west": False, **kw})


@pytest.fixture(scope="module")
def fitted(tiny_encoder):
    from conftest import make_gold

    g = make_gold()
    return TransformerModel(config(tiny_encoder)).fit(g, g), g


def test_fit_and_proba_shapes(fitted):
    m, g = fitted
    p = m.predict_proba(g)
    assert p.topics.shape == (len(g), 4) and p.frames.shape == (len(g), 10)
    assert np.allclose(p.stance.sum(1), 1, atol=1e-5)
    assert [len(pf) for pf in p.paragraph_frames] == [len(x) for x in g["paragraphs"]]


def test_long_paragraph_is_cut_into_windows(fitted):
    m, _ = fitted
    long_text = " ".join(["Rosatom builds a nuclear power plant for partners."] * 80)
    assert len(windows(m.tok_, [long_text], m.config.max_length)[0]) > 1
    out = m.predict([[long_text, "Short second paragraph."]])
    assert len(out) == 1
    assert m.predict_proba([[long_text]]).paragraph_frames[0].shape == (1, 10)


def test_save_load_round_trip_without_source_encoder(tiny_encoder, tmp_path):
    from conftest import make_gold

    g = make_gold()
    src = tmp_path / "enc"
    shutil.copytree(tiny_encoder, src)
    m = TransformerModel(config(src)).fit(g, g)
    expected = m.predict_proba(g)
    m.save(tmp_path / "model")
    shutil.rmtree(src)  # the saved folder must be self-contained
    got = load_model(tmp_path / "model").predict_proba(g)
    assert np.allclose(got.topics, expected.topics, atol=1e-6)
    assert np.allclose(got.frames, expected.frames, atol=1e-6)
    assert np.allclose(got.stance, expected.stance, atol=1e-6)


def test_deterministic_with_seed(tiny_encoder):
    from conftest import make_gold

    g = make_gold()
    a = TransformerModel(config(tiny_encoder, seed=5)).fit(g, g).predict_proba(g)
    b = TransformerModel(config(tiny_encoder, seed=5)).fit(g, g).predict_proba(g)
    assert np.array_equal(a.topics, b.topics) and np.array_equal(a.stance, b.stance)


def test_inner_fold_thresholds(tiny_encoder):
    from conftest import make_gold

    g = make_gold()
    m = TransformerModel(TransformerConfig(encoder=str(tiny_encoder), epochs=1, threshold_folds=2)).fit(g, g)
    assert "out-of-fold" in m.thresholds_["source"]


def test_tampered_heads_raise_model_error(fitted, tmp_path):
    m, _ = fitted
    m.save(tmp_path / "model")
    (tmp_path / "model" / "heads.safetensors").write_bytes(b"\x80\x04cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(ModelError, match="not a valid safetensors file"):
        load_model(tmp_path / "model")


def test_pickle_weights_refused(fitted, tmp_path):
    m, _ = fitted
    m.save(tmp_path / "model")
    (tmp_path / "model" / "encoder" / "model.safetensors").unlink()
    with pytest.raises(ModelError):
        load_model(tmp_path / "model")


@pytest.mark.parametrize("bad,match", [({"epochs": 0}, "'epochs'"), ({"lr_heads": -1}, "'lr_heads'"),
                                       ({"threshold_folds": 1}, "'threshold_folds'"), ({"cue_dropout": 1.5}, "'cue_dropout'")])
def test_bad_config(bad, match):
    with pytest.raises(ConfigError, match=match):
        TransformerConfig(**bad)


def test_tagging_path_equals_training_path(fitted):
    """predict_proba (no cache, all layers, length-sorted batches) = the training-time forward."""
    m, g = fitted
    paragraphs = [list(p) for p in g["paragraphs"]] + [["Rosatom builds plants.", "Rosatom builds plants."]]
    _, _, n_frozen, frozen, cue = m._prepare(paragraphs)
    ref = m._predict_with(m.net_, paragraphs, frozen, cue)
    got = m.predict_proba(paragraphs)
    for a, b in ((got.topics, ref.topics), (got.frames, ref.frames), (got.stance, ref.stance)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for a, b in zip(got.paragraph_frames, ref.paragraph_frames):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert m.last_tokens_[0] <= m.last_tokens_[1]


def test_predict_empty_post_list(fitted):
    m, _ = fitted
    p = m.predict_proba([])
    assert p.topics.shape == (0, 4) and p.frames.shape == (0, 10)


def test_bf16_runtime_keeps_labels_and_leaves_shared_encoder_alone(fitted, tmp_path):
    from classify.learners.transformer.onnxrt import native_bf16

    if not native_bf16():
        pytest.skip("this CPU has no bfloat16 instructions (--runtime bf16 is refused there)")
    m, g = fitted
    m.save(tmp_path / "model")
    ref = load_model(tmp_path / "model").predict_proba(g)
    fast = load_model(tmp_path / "model", runtime="bf16")
    long_post = [[" ".join(["Rosatom builds a plant."] * 80)]]  # several windows
    got = fast.predict_proba(list(g["paragraphs"]) + long_post)
    for a, b in ((got.topics[: len(g)], ref.topics), (got.frames[: len(g)], ref.frames), (got.stance[: len(g)], ref.stance)):
        assert np.abs(a - b).max() < 0.02 and a.dtype == np.float64
    assert not np.allclose(got.frames[: len(g)], ref.frames, atol=1e-7, rtol=0)  # it did run in bfloat16
    assert "bfloat16" in fast.card_["inference"]
    again = load_model(tmp_path / "model").predict_proba(g)  # the shared cached encoder still runs fp32
    np.testing.assert_allclose(again.frames, ref.frames, atol=1e-7)


def test_bf16_runtime_refused_without_bfloat16_instructions(fitted, tmp_path, monkeypatch):
    import classify.learners.transformer.onnxrt as rt

    m, _ = fitted
    m.save(tmp_path / "model")
    monkeypatch.setattr(rt, "native_bf16", lambda: False)
    with pytest.raises(ConfigError, match="bfloat16 instructions.*use --runtime onnx"):
        load_model(tmp_path / "model", runtime="bf16")


def test_bf16_counts_as_absent_when_onednn_is_held_below_it(monkeypatch):
    """The budget runs hold oneDNN to AVX2 (``ONEDNN_MAX_CPU_ISA``); bfloat16 is then emulated, so neither
    ``--runtime bf16`` nor the bench's bf16 rows should run, whatever the CPU has."""
    import classify.learners.transformer.onnxrt as rt

    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    hardware = rt.native_bf16()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert rt.native_bf16() is False
    for isa in ("ALL", "AVX512_CORE_AMX", "avx512_core_bf16"):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
        assert rt.native_bf16() is hardware


def test_cue_prior_starts_the_heads_from_the_codebook_cues(tiny_encoder):
    """With the heads barely trained, a paragraph carrying a topic's cue scores that topic higher."""
    from conftest import make_gold

    g = make_gold()
    cfg = TransformerConfig(encoder=str(tiny_encoder), epochs=1, threshold_folds=0, lr_heads=1e-9, lr_encoder=1e-9, cue_prior=6.0,
                            topics_from_cues=False)
    m = TransformerModel(cfg).fit(g, g)
    p = m.predict_proba([["International information security and cybercrime were discussed."], ["The weather was fine."]])
    j = m.codebook.topics.index("cyber")
    assert p.topics[0, j] - p.topics[1, j] > 0.5


@pytest.mark.parametrize("per_topic", [False, True])
def test_cue_stacking_is_fitted_saved_and_loaded(tiny_encoder, tmp_path, per_topic):
    from conftest import make_gold

    g = make_gold()
    cfg = TransformerConfig(encoder=str(tiny_encoder), epochs=1, threshold_folds=2, stack_cues=True, stack_topics_per_label=per_topic)
    m = TransformerModel(cfg).fit(g, g)
    nt, nf = len(m.codebook.topics), len(m.codebook.frames)
    assert m.stackers_.shape == (nt + nf, 3)
    assert bool(np.allclose(m.stackers_[:nt], m.stackers_[0])) is not per_topic  # one shared topic stacker, or one per topic
    expected = m.predict_proba(g)
    m.save(tmp_path / "model")
    got = load_model(tmp_path / "model")
    np.testing.assert_allclose(got.stackers_, m.stackers_)
    np.testing.assert_allclose(got.predict_proba(g).frames, expected.frames, atol=1e-6)


def test_model_saved_before_stacking_still_loads(fitted, tmp_path):
    """Older model folders have neither ``stack_cues`` nor ``cue_prior`` in config.json."""
    import json

    m, g = fitted
    m.save(tmp_path / "model")
    cfg_path = tmp_path / "model" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.pop("stack_cues"), cfg.pop("cue_prior"), cfg.pop("stack_topics_per_label"), cfg.pop("cue_dropout")
    cfg.update(average_last_epochs=0, post_pool="max")  # options of older versions, at their neutral values
    cfg_path.write_text(json.dumps(cfg))
    old = load_model(tmp_path / "model")
    assert old.config.stack_cues is False and old.stackers_ is None
    assert old.config.stack_topics_per_label is False and old.config.cue_dropout == 0
    np.testing.assert_allclose(old.predict_proba(g).frames, m.predict_proba(g).frames, atol=1e-6)
    cfg["post_pool"] = "mean"  # a removed option switched on: this version cannot reproduce that model
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="post_pool='mean'.*retrain"):
        load_model(tmp_path / "model")


def test_onnx_runtime_path_equals_torch_path(fitted, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    m, g = fitted
    m.save(tmp_path / "model")
    ref = load_model(tmp_path / "model").predict_proba(g)
    fast = load_model(tmp_path / "model").use_onnx()
    got = fast.predict_proba(list(g["paragraphs"]) + [[" ".join(["Rosatom builds a plant."] * 80)]])
    for a, b in ((got.topics[: len(g)], ref.topics), (got.frames[: len(g)], ref.frames), (got.stance[: len(g)], ref.stance)):
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert "ONNX" in fast.card_["inference"]


def test_onnx_graph_is_cached_per_model_directory(fitted, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    import classify.learners.transformer.onnxrt as ort_mod

    monkeypatch.setenv("CLASSIFY_ONNX_CACHE", str(tmp_path / "cache"))
    m, g = fitted
    m.save(tmp_path / "model")
    first = load_model(tmp_path / "model").use_onnx()
    assert len(list((tmp_path / "cache").glob("*.onnx"))) == 1

    def no_export(*a, **k):
        raise AssertionError("the cached graph should have been used")

    monkeypatch.setattr(ort_mod, "export_encoder", no_export)
    again = load_model(tmp_path / "model").use_onnx()  # from the cache: no export
    np.testing.assert_array_equal(again.predict_proba(g).frames, first.predict_proba(g).frames)
    light = load_model(tmp_path / "model", runtime="onnx")  # cached graph: the torch encoder is not read
    assert light.base_ is None and light.use_onnx() is light
    pl, pf = light.predict_proba(g), first.predict_proba(g)
    for task in ("topics", "frames", "stance"):
        np.testing.assert_array_equal(getattr(pl, task), getattr(pf, task))
    assert light.predict(list(g["paragraphs"]))["frames"].tolist() == first.predict(list(g["paragraphs"]))["frames"].tolist()
    with pytest.raises(ModelError, match="ONNX Runtime tagging only"):
        light.save(tmp_path / "copy")
    with pytest.raises(AssertionError, match="cached graph"):
        TransformerModel(config(m.config.encoder)).fit(g, g).use_onnx()  # fitted here: never a cached graph
    monkeypatch.undo()
    monkeypatch.setenv("CLASSIFY_ONNX_CACHE", str(tmp_path / "cache"))
    heads = tmp_path / "model" / "heads.safetensors"
    heads.write_bytes(heads.read_bytes())  # rewritten (as by retraining): a new key, a second graph
    load_model(tmp_path / "model").use_onnx()
    m.save(tmp_path / "other")
    load_model(tmp_path / "other").use_onnx()
    assert len(list((tmp_path / "cache").glob("*.onnx"))) == ort_mod.KEEP_GRAPHS  # the oldest is dropped


def test_onnx_graph_cache_not_writable_tags_from_memory(fitted, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CLASSIFY_ONNX_CACHE", str(blocker / "cache"))
    m, g = fitted
    m.save(tmp_path / "model")
    got = load_model(tmp_path / "model").use_onnx().predict_proba(g)
    np.testing.assert_allclose(got.topics, m.predict_proba(g).topics, atol=1e-4)


def test_onnx_graph_leaves_the_vocabulary_matrix_in_the_memory_mapped_weights(fitted, tmp_path):
    """The graph starts after the token lookup; the lookup reads the saved matrix through a memory map."""
    pytest.importorskip("onnxruntime")
    import onnx
    import torch
    from safetensors.torch import save_file

    from classify.learners.transformer.onnxrt import export_encoder, safetensors_word_table

    m, g = fitted
    m.save(tmp_path / "model")
    weights = tmp_path / "model" / "encoder" / "model.safetensors"
    table = safetensors_word_table(weights)
    expected = m.base_.embeddings.word_embeddings.weight.detach().numpy()
    assert isinstance(table, np.memmap)
    np.testing.assert_array_equal(table, expected)
    graph = onnx.load_from_string(export_encoder(m.base_.embeddings, list(m.base_.encoder.layer[: m.n_frozen_]), m.net_))
    assert [i.name for i in graph.graph.input] == ["embeds", "mask"]
    assert expected.shape not in [tuple(t.dims) for t in graph.graph.initializer]
    half = tmp_path / "half.safetensors"  # another dtype: read and widened to float32, not mapped
    save_file({"embeddings.word_embeddings.weight": torch.from_numpy(expected).half()}, str(half))
    np.testing.assert_allclose(safetensors_word_table(half), expected, atol=1e-2)
    none = tmp_path / "none.safetensors"
    save_file({"embeddings.position_embeddings.weight": torch.zeros(4, 2)}, str(none))
    with pytest.raises(ModelError, match="word_embeddings.weight.*--runtime torch"):
        safetensors_word_table(none)
    (tmp_path / "cut.safetensors").write_bytes(weights.read_bytes()[:20])
    with pytest.raises(ModelError, match="cut.safetensors"):
        safetensors_word_table(tmp_path / "cut.safetensors")


def test_cue_dropout_hides_the_topic_cue_hits_from_training(tiny_encoder):
    """With ``cue_dropout=1`` no training post shows its topic cue hits, so the head's topic cue
    columns get no gradient and stay a multiple of their cue-prior identity (weight decay only),
    while the frame cue columns move; without dropout the topic columns move too. Dropping cues
    never changes the batches, and the same seed gives the same model."""
    import torch
    from conftest import make_gold

    g = make_gold()

    def cue_block(p: float) -> tuple[torch.Tensor, TransformerModel]:
        m = TransformerModel(config(tiny_encoder, stack_cues=False, cue_dropout=p)).fit(g, g)
        W = m.net_.label_head.weight.detach()
        return W[:, W.shape[1] - W.shape[0]:], m

    hidden, m1 = cue_block(1.0)
    shown, _ = cue_block(0.0)
    nt = len(m1.codebook.topics)
    eye = torch.eye(hidden.shape[0], dtype=torch.bool)
    topic_cols, topic_eye = hidden[:, :nt], eye[:, :nt]
    assert float(topic_cols[~topic_eye].abs().max()) == 0.0 and float(topic_cols[topic_eye].std()) < 1e-6
    assert float(hidden[:, nt:][~eye[:, nt:]].abs().max()) > 1e-4  # the frame cue columns still learn
    assert float(shown[:, :nt][~topic_eye].abs().max()) > 1e-4
    again, m2 = cue_block(1.0)
    np.testing.assert_array_equal(again.numpy(), hidden.numpy())
    np.testing.assert_array_equal(m1.predict_proba(g).topics, m2.predict_proba(g).topics)
    with pytest.raises(ConfigError, match="cue_dropout"):
        TransformerConfig(cue_dropout=1.5)


def test_topics_from_cues_are_the_cue_rules_topics_and_survive_saving(tiny_encoder, tmp_path):
    from conftest import make_gold

    from classify.learners.cuerule import CueRuleModel

    g = make_gold()
    m = TransformerModel(TransformerConfig(encoder=str(tiny_encoder), epochs=1, threshold_folds=2, topics_from_cues=True,
                                           topics_cue_hashtags=False)).fit(g, g)
    rule = CueRuleModel().fit().predict(g)
    assert m.predict(g)["topics"].tolist() == rule["topics"].tolist()
    assert m.thresholds_["topics"] == 0.5
    m.save(tmp_path / "model")
    assert load_model(tmp_path / "model").predict(g)["topics"].tolist() == rule["topics"].tolist()


def test_topics_cue_hashtags_reads_hashtags_for_the_topics_only(tiny_encoder, tmp_path):
    from conftest import make_gold

    g = make_gold()
    m = TransformerModel(TransformerConfig(encoder=str(tiny_encoder), epochs=1, threshold_folds=2,
                                           topics_cue_hashtags=True)).fit(g, g)
    posts = [["Putin will chair the 12th #BRICS Summit"], ["The BRICS summit opens today."], ["Sanctions are illegal."]]
    brics = m.codebook.topics.index("brics")
    on = m.predict_proba(posts)
    m.config.topics_cue_hashtags = False
    off = m.predict_proba(posts)
    assert on.topics[:, brics].tolist() == [1, 1, 0]
    assert off.topics[:, brics].tolist() == [0, 1, 0]  # the codebook's cue skips a bare hashtag
    np.testing.assert_array_equal(on.frames, off.frames)  # the heads and stackers see the cues as written
    np.testing.assert_array_equal(on.stance, off.stance)
    m.config.topics_cue_hashtags = True
    m.save(tmp_path / "model")
    assert load_model(tmp_path / "model").predict_proba(posts).topics[:, brics].tolist() == [1, 1, 0]
    saved = json.loads((tmp_path / "model" / "config.json").read_text(encoding="utf-8"))
    del saved["topics_cue_hashtags"]  # a model saved before the option keeps the cues as written
    (tmp_path / "model" / "config.json").write_text(json.dumps(saved), encoding="utf-8")
    assert load_model(tmp_path / "model").predict_proba(posts).topics[:, brics].tolist() == [0, 1, 0]


@pytest.mark.parametrize("option, task, other, bad", [("stance_tfidf", "stance", "frames", 1.5),
                                                      ("frames_tfidf", "frames", "stance", -0.1)])
def test_tfidf_blend_mixes_its_task_only_and_survives_saving(tiny_encoder, tmp_path, option, task, other, bad):
    from conftest import make_gold

    from classify.learners.baseline.model import BaselineConfig, BaselineModel

    g = make_gold()
    plain = TransformerModel(config(tiny_encoder)).fit(g, g)
    blended = TransformerModel(config(tiny_encoder, **{option: 0.25})).fit(g, g)
    tfidf = BaselineModel(BaselineConfig(threshold_folds=0, stance_needs_west=False, cue_hashtags=False,
                                         sentence_vectors=blended.config.tfidf_sentence_vectors,
                                         label_similarity=0.0)).fit(g, g)
    want = 0.75 * getattr(plain.predict_proba(g), task) + 0.25 * getattr(tfidf.predict_proba(g), task)
    np.testing.assert_allclose(getattr(blended.predict_proba(g), task), want, atol=1e-6)
    np.testing.assert_allclose(getattr(blended.predict_proba(g), other), getattr(plain.predict_proba(g), other), atol=1e-6)
    blended.save(tmp_path / "model")
    np.testing.assert_allclose(getattr(load_model(tmp_path / "model").predict_proba(g), task), want, atol=1e-6)
    shutil.rmtree(tmp_path / "model" / "tfidf")
    with pytest.raises(ModelError, match="tfidf"):
        load_model(tmp_path / "model")
    with pytest.raises(ConfigError, match=option):
        TransformerConfig(**{option: bad})


def test_models_saved_before_the_stance_blend_load_unblended(tiny_encoder, tmp_path):
    from conftest import make_gold

    g = make_gold()
    plain = TransformerModel(config(tiny_encoder)).fit(g, g)
    plain.save(tmp_path / "old")  # a model saved before the option existed has no key and no tfidf/ folder
    cfg = json.loads((tmp_path / "old" / "config.json").read_text())
    del cfg["stance_tfidf"]
    (tmp_path / "old" / "config.json").write_text(json.dumps(cfg))
    np.testing.assert_allclose(load_model(tmp_path / "old").predict_proba(g).stance, plain.predict_proba(g).stance, atol=1e-6)


def test_frames_blend_reaches_the_stackers_fitted_on_inner_folds(tiny_encoder):
    from conftest import make_gold

    g = make_gold()
    a = TransformerModel(config(tiny_encoder, threshold_folds=2, stack_cues=True)).fit(g, g)
    b = TransformerModel(config(tiny_encoder, threshold_folds=2, stack_cues=True, frames_tfidf=1.0)).fit(g, g)
    assert not np.allclose(a.stackers_, b.stackers_)


def test_stance_needs_west_gives_none_to_posts_naming_no_western_actor(tiny_encoder, tmp_path):
    from conftest import make_gold

    from classify.learners.west import names_west

    g = make_gold()
    plain = TransformerModel(config(tiny_encoder)).fit(g, g)
    gated = TransformerModel(config(tiny_encoder, stance_needs_west=True)).fit(g, g)
    posts = [["Talks with NATO on security guarantees."], ["Переговоры с Вашингтоном."], ["A concert in Kazan; us and our west wing."]]
    assert [names_west(p) for p in posts] == [True, True, False]
    none = gated.codebook.stances.index("none")
    S, S0 = gated.predict_proba(posts).stance, plain.predict_proba(posts).stance
    np.testing.assert_allclose(S[:2], S0[:2], atol=1e-6)
    np.testing.assert_array_equal(S[2], np.eye(len(S[2]))[none])
    gated.save(tmp_path / "model")
    np.testing.assert_allclose(load_model(tmp_path / "model").predict_proba(posts).stance, S, atol=1e-6)


def test_select_keeps_the_windows_of_the_batch_posts_renumbered():
    import torch

    from classify.learners.transformer.network import pack_windows, select

    paragraphs = [["a", "b"], ["c"], ["d", "e"]]
    frozen = {t: [(torch.full((1, 2), float(k)), 1)] for k, t in enumerate("acde")}
    frozen["b"] = [(torch.full((2, 2), 1.0), 2), (torch.full((1, 2), 1.5), 1)]  # a paragraph of two windows
    cue = {t: np.array([float(k)]) for k, t in enumerate("abcde")}
    pack = pack_windows(paragraphs, frozen, cue)
    sub = select(pack, np.array([0, 2]))
    assert sub["win_para"].tolist() == [0, 1, 1, 2, 3]
    assert sub["para_post"].tolist() == [0, 0, 1, 1]
    assert sub["para_index"].tolist() == [0, 1, 3, 4]
    assert sub["cues"][:, 0].tolist() == [0.0, 1.0, 1.0, 3.0, 4.0]
    assert sub["H"][:, 0, 0].tolist() == [0.0, 1.0, 1.5, 2.0, 3.0]  # "d" is frozen's third text: value 2.0
    assert sub["M"].sum(1).tolist() == [1, 2, 1, 1, 1] and sub["n_posts"] == 2


def test_tfidf_sentence_vectors_reach_the_blended_tfidf_model_and_survive_saving(tiny_encoder, tmp_path):
    from conftest import make_gold

    g = make_gold()
    plain = TransformerModel(config(tiny_encoder, frames_tfidf=0.5, tfidf_sentence_vectors=0.0)).fit(g, g)
    vec = TransformerModel(config(tiny_encoder, frames_tfidf=0.5, tfidf_sentence_vectors=1.0)).fit(g, g)
    assert vec.tfidf_.config.sentence_vectors == 1.0 and plain.tfidf_.config.sentence_vectors == 0.0
    assert not np.allclose(vec.predict_proba(g).frames, plain.predict_proba(g).frames)
    vec.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert loaded.tfidf_.config.sentence_vectors == 1.0
    np.testing.assert_allclose(loaded.predict_proba(g).frames, vec.predict_proba(g).frames, atol=1e-6)


def test_a_model_saved_with_the_removed_tfidf_label_similarity_loads_only_when_it_was_off(tiny_encoder, tmp_path):
    """The option tied its comparison and was deleted: a model saved with it at 0 loads and predicts as
    before; one saved with it on cannot be reproduced by this version, which says so."""
    import json

    from conftest import make_gold

    g = make_gold()
    m = TransformerModel(config(tiny_encoder, frames_tfidf=0.5)).fit(g, g)
    assert m.tfidf_.config.label_similarity == 0.0
    m.save(tmp_path / "model")
    cfg_path = tmp_path / "model" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg_path.write_text(json.dumps({**cfg, "tfidf_label_similarity": 0.0}))
    np.testing.assert_allclose(load_model(tmp_path / "model").predict_proba(g).frames, m.predict_proba(g).frames, atol=1e-6)
    cfg_path.write_text(json.dumps({**cfg, "tfidf_label_similarity": 5.0}))
    with pytest.raises(ModelError, match="tfidf_label_similarity=5.0.*retrain"):
        load_model(tmp_path / "model")
