"""The transformer model with a tiny random encoder built in the test session (no real weights)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from classify.errors import ConfigError, ModelError
from classify.model import load_model
from classify.transformer import TransformerConfig, TransformerModel


def config(enc, **kw):
    return TransformerConfig(encoder=str(enc), epochs=2, threshold_folds=0, **kw)


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
    assert len(m._windows(m.tok_, long_text)) > 1
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
                                       ({"threshold_folds": 1}, "'threshold_folds'"), ({"post_pool": "sum"}, "'post_pool'")])
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


def test_mean_post_pool_averages_paragraph_logits_in_both_paths(tiny_encoder, tmp_path):
    """``post_pool="mean"``: a post's frame score is the sigmoid of the mean of its paragraphs'
    frame logits (not their max); topics and frames are the same in training's forward and the
    tagging path, and after a save/load round trip."""
    from conftest import make_gold
    from scipy.special import expit, logit

    g = make_gold()
    m = TransformerModel(config(tiny_encoder, post_pool="mean", stack_cues=False)).fit(g, g)
    paragraphs = [list(p) for p in g["paragraphs"]]
    _, _, _, frozen, cue = m._prepare(paragraphs)
    ref = m._predict_with(m.net_, paragraphs, frozen, cue)
    got = m.predict_proba(paragraphs)
    np.testing.assert_allclose(got.topics, ref.topics, atol=1e-5)
    np.testing.assert_allclose(got.frames, ref.frames, atol=1e-5)
    i = max(range(len(paragraphs)), key=lambda k: len(paragraphs[k]))
    assert len(paragraphs[i]) > 1
    para_logits = logit(np.clip(got.paragraph_frames[i], 1e-7, 1 - 1e-7))
    np.testing.assert_allclose(got.frames[i], expit(para_logits.mean(axis=0)), atol=1e-4)
    assert not np.allclose(got.frames[i], expit(para_logits.max(axis=0)), atol=1e-4)
    m.save(tmp_path / "mean")
    np.testing.assert_allclose(load_model(tmp_path / "mean").predict_proba(paragraphs).topics, got.topics, atol=1e-6)


def test_predict_empty_post_list(fitted):
    m, _ = fitted
    p = m.predict_proba([])
    assert p.topics.shape == (0, 4) and p.frames.shape == (0, 10)


def test_int8_quantisation_keeps_labels_and_leaves_shared_encoder_alone(fitted, tmp_path):
    m, g = fitted
    m.save(tmp_path / "model")
    fp32 = load_model(tmp_path / "model")
    ref = fp32.predict_proba(g)
    q = load_model(tmp_path / "model").quantize_int8()
    got = q.predict_proba(g)
    assert np.abs(got.frames - ref.frames).max() < 0.05 and np.abs(got.stance - ref.stance).max() < 0.05
    assert "int8" in q.card_["inference"]
    again = load_model(tmp_path / "model").predict_proba(g)  # the cached fp32 encoder was not quantised in place
    np.testing.assert_allclose(again.frames, ref.frames, atol=1e-7)


def test_bf16_runtime_keeps_labels_and_leaves_shared_encoder_alone(fitted, tmp_path):
    from classify.onnxrt import native_bf16

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
    import classify.onnxrt as rt

    m, _ = fitted
    m.save(tmp_path / "model")
    monkeypatch.setattr(rt, "native_bf16", lambda: False)
    with pytest.raises(ConfigError, match="bfloat16 instructions.*use --runtime onnx"):
        load_model(tmp_path / "model", runtime="bf16")


def test_cue_prior_starts_the_heads_from_the_codebook_cues(tiny_encoder):
    """With the heads barely trained, a paragraph carrying a topic's cue scores that topic higher."""
    from conftest import make_gold

    g = make_gold()
    cfg = TransformerConfig(encoder=str(tiny_encoder), epochs=1, threshold_folds=0, lr_heads=1e-9, lr_encoder=1e-9, cue_prior=6.0)
    m = TransformerModel(cfg).fit(g, g)
    p = m.predict_proba([["International information security and cybercrime were discussed."], ["The weather was fine."]])
    j = m.codebook.topics.index("cyber")
    assert p.topics[0, j] - p.topics[1, j] > 0.5


@pytest.mark.parametrize("per_topic", [False, True])
def test_cue_stacking_is_fitted_saved_and_loaded(tiny_encoder, tmp_path, per_topic):
    from conftest import make_gold

    g = make_gold()
    cfg = TransformerConfig(encoder=str(tiny_encoder), epochs=1, threshold_folds=2, stack_topics_per_label=per_topic)
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
    cfg.pop("stack_cues"), cfg.pop("cue_prior"), cfg.pop("stack_topics_per_label"), cfg.pop("average_last_epochs"), cfg.pop("cue_dropout")
    cfg_path.write_text(json.dumps(cfg))
    old = load_model(tmp_path / "model")
    assert old.config.stack_cues is False and old.stackers_ is None
    assert old.config.stack_topics_per_label is False and old.config.average_last_epochs == 0 and old.config.cue_dropout == 0
    np.testing.assert_allclose(old.predict_proba(g).frames, m.predict_proba(g).frames, atol=1e-6)


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
    import classify.onnxrt as ort_mod

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

    from classify.onnxrt import export_encoder, safetensors_word_table

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


def test_head_prior_keeps_the_label_head_near_its_cue_start(tiny_encoder):
    """L2-SP: with a penalty the label head ends closer to its cue-prior initialisation."""
    import torch
    from conftest import make_gold

    g = make_gold()

    def drift(head_prior: float) -> float:
        m = TransformerModel(config(tiny_encoder, head_prior=head_prior, stack_cues=False)).fit(g, g)
        W, b = m.net_.label_head.weight.detach(), m.net_.label_head.bias.detach()
        cue_block = W[:, W.shape[1] - W.shape[0]:]  # the cue columns start at cue_prior * identity
        return float((cue_block - torch.eye(W.shape[0]) * m.config.cue_prior).pow(2).sum()
                     + (b + m.config.cue_prior / 3).pow(2).sum())

    assert drift(10.0) < 0.5 * drift(0.0)
    with pytest.raises(ConfigError, match="head_prior"):
        TransformerConfig(head_prior=-1.0)


def test_weight_averaging_is_the_mean_of_the_last_epochs(tiny_encoder):
    """``average_last_epochs=K`` keeps the mean of the weights at the ends of the last K epochs:
    with two epochs, the mean of a one-epoch fit and a two-epoch fit (same seed, same batches);
    with K=1, the last epoch's weights themselves."""
    from conftest import make_gold

    g = make_gold()

    def head(epochs: int, k: int):
        m = TransformerModel(TransformerConfig(encoder=str(tiny_encoder), epochs=epochs, threshold_folds=0,
                                               stack_cues=False, average_last_epochs=k)).fit(g, g)
        return m.net_.label_head.weight.detach().numpy(), m

    w1, _ = head(1, 0)
    w2, plain = head(2, 0)
    w_avg, averaged = head(2, 2)
    assert not np.allclose(w1, w2, atol=1e-4)  # the second epoch moved the weights, so the test can fail
    np.testing.assert_allclose(w_avg, (w1 + w2) / 2, atol=1e-6)
    w_last, last = head(2, 1)
    np.testing.assert_allclose(w_last, w2, atol=1e-7)
    np.testing.assert_allclose(last.predict_proba(g).frames, plain.predict_proba(g).frames, atol=1e-6)
    assert not np.allclose(averaged.predict_proba(g).frames, plain.predict_proba(g).frames, atol=1e-4)
    with pytest.raises(ConfigError, match="average_last_epochs"):
        TransformerConfig(epochs=3, average_last_epochs=4)


def test_cue_dropout_hides_the_cue_hits_from_training(tiny_encoder):
    """With ``cue_dropout=1`` no training post shows its cue hits, so the head's cue columns get no
    gradient and stay a multiple of their cue-prior identity (weight decay only); without it they
    move. Dropping cues never changes the batches, and the same seed gives the same model."""
    import torch
    from conftest import make_gold

    g = make_gold()

    def cue_block(p: float, on: str = "all") -> tuple[torch.Tensor, TransformerModel]:
        m = TransformerModel(config(tiny_encoder, stack_cues=False, cue_dropout=p, cue_dropout_on=on)).fit(g, g)
        W = m.net_.label_head.weight.detach()
        return W[:, W.shape[1] - W.shape[0]:], m

    hidden, m1 = cue_block(1.0)
    shown, _ = cue_block(0.0)
    eye = torch.eye(hidden.shape[0], dtype=torch.bool)
    assert float(hidden[~eye].abs().max()) == 0.0 and float(hidden[eye].std()) < 1e-6
    assert float(shown[~eye].abs().max()) > 1e-4
    again, m2 = cue_block(1.0)
    np.testing.assert_array_equal(again.numpy(), hidden.numpy())
    np.testing.assert_array_equal(m1.predict_proba(g).topics, m2.predict_proba(g).topics)
    topics_hidden, _ = cue_block(1.0, "topics")  # only the topic columns hidden: the frame columns move
    nt = len(m1.codebook.topics)
    np.testing.assert_array_equal(topics_hidden[:, :nt].numpy(), hidden[:, :nt].numpy())
    assert float(topics_hidden[nt:, nt:][~eye[nt:, nt:]].abs().max()) > 1e-4
    with pytest.raises(ConfigError, match="cue_dropout"):
        TransformerConfig(cue_dropout=1.5)
    with pytest.raises(ConfigError, match="cue_dropout_on"):
        TransformerConfig(cue_dropout_on="frames")


def test_contrastive_stage_pulls_post_cosines_towards_label_overlap(tiny_encoder):
    """The SetFit-style stage lowers the gap between two posts' embedding cosine and the Jaccard
    overlap of their labels; with ``contrastive_then="heads"`` the head phase leaves the tuned
    layers exactly as the stage left them, with ``"finetune"`` it moves them further."""
    import copy

    import torch
    from conftest import make_gold

    from classify.model import as_paragraphs, gold_targets
    from classify.transformer import _Net

    g = make_gold()
    base = TransformerModel(config(tiny_encoder, lr_contrastive=1e-2, contrastive_epochs=5))
    paragraphs = as_paragraphs(g)
    _, mdl, n_frozen, frozen, cue = base._prepare(paragraphs)
    pack = base._pack(paragraphs, frozen, cue)
    Yt, Yf, ys = gold_targets(g, base.codebook)
    labels = np.hstack([Yt, Yf, np.eye(len(base.codebook.stances))[ys]])
    inter = labels @ labels.T
    J = inter / np.maximum(labels.sum(1)[:, None] + labels.sum(1)[None, :] - inter, 1)
    upper = np.triu_indices(len(g), 1)

    def gap(net) -> float:
        net.eval()
        with torch.no_grad():
            e = base._embed_windows(net, pack)
            sums = torch.zeros((len(g), e.shape[1])).index_add(0, pack["para_post"][pack["win_para"]], e)
            E = torch.nn.functional.normalize(sums, dim=1).numpy()
        return float((((E @ E.T)[upper] - J[upper]) ** 2).mean())

    net = _Net.build([copy.deepcopy(mdl.encoder.layer[n_frozen])], mdl.config.hidden_size, 0, 1, 1)
    before = gap(net)
    base._contrastive(net, pack, labels)
    assert gap(net) < 0.5 * before  # a random encoder's cosines are all near 1; the labels' overlap is not

    def fitted_top(then: str, epochs: int = 2):
        m = TransformerModel(TransformerConfig(encoder=str(tiny_encoder), epochs=epochs, threshold_folds=0, stack_cues=False,
                                               lr_contrastive=1e-2, contrastive_epochs=5, contrastive_then=then)).fit(g, g)
        return [p.detach().clone() for p in m.net_.layers[0].parameters()], m

    heads_2, m1 = fitted_top("heads")
    heads_1, _ = fitted_top("heads", epochs=1)
    pretrained = [p.detach() for p in mdl.encoder.layer[n_frozen].parameters()]
    assert max(float((a - b).abs().max()) for a, b in zip(heads_2, pretrained)) > 1e-3  # the stage tuned them
    for a, b in zip(heads_2, heads_1):  # ... and the head epochs left them alone
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    finetuned, _ = fitted_top("finetune")
    assert max(float((a - b).abs().max()) for a, b in zip(finetuned, heads_2)) > 1e-5
    _, m2 = fitted_top("heads")  # deterministic with the seed
    np.testing.assert_array_equal(m1.predict_proba(g).topics, m2.predict_proba(g).topics)
    with pytest.raises(ConfigError, match="contrastive_then"):
        TransformerConfig(contrastive_then="setfit")
    with pytest.raises(ConfigError, match="contrastive_epochs"):
        TransformerConfig(contrastive_epochs=-1)
