"""The model contract, for every model kind (scikit-learn's parametrize_with_checks habit).

The transformer's own contract tests live in test_transformer.py (they need the tiny encoder).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from classify.codebook import Codebook
from classify.errors import ConfigError, ModelError, NotFittedError
from classify.learners import load_model
from classify.learners.baseline.model import BaselineConfig, BaselineModel
from classify.learners.cuerule import CueRuleModel

FACTORIES = {
    "baseline": lambda: BaselineModel(BaselineConfig(threshold_folds=3)),
    "cue_rule": lambda: CueRuleModel(),
}


@pytest.fixture(params=sorted(FACTORIES))
def kind(request):
    return request.param


def test_fit_returns_self_and_proba_shapes(kind, gold):
    cb = Codebook.load()
    m = FACTORIES[kind]()
    assert m.fit(gold, gold) is m
    pr = m.predict_proba(gold)
    assert pr.topics.shape == (len(gold), len(cb.topics))
    assert pr.frames.shape == (len(gold), len(cb.frames))
    assert np.allclose(pr.stance.sum(1), 1)
    assert len(pr.paragraph_frames) == len(gold)
    assert pr.paragraph_frames[0].shape == (len(gold.iloc[0]["paragraphs"]), len(cb.frames))


def test_unfitted_predict_raises(kind):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        FACTORIES[kind]().predict(["text"])


def test_bare_string_rejected(kind, gold):
    m = FACTORIES[kind]().fit(gold, gold)
    with pytest.raises(ConfigError, match="string object received"):
        m.predict("one post")


def test_save_load_round_trip_in_fresh_process(kind, gold, tmp_path):
    m = FACTORIES[kind]().fit(gold, gold)
    m.save(tmp_path / "m")
    expected = m.predict_proba(gold)
    code = (
        "import json,sys,numpy as np,pandas as pd\n"
        "from classify import load_model\n"
        f"m=load_model({str(tmp_path / 'm')!r})\n"
        f"g=pd.read_json({str(tmp_path / 'g.jsonl')!r},lines=True)\n"
        "p=m.predict_proba(g)\n"
        "print(json.dumps([p.topics.tolist(),p.frames.tolist(),p.stance.tolist()]))\n"
    )
    gold.to_json(tmp_path / "g.jsonl", orient="records", lines=True, force_ascii=False)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    t, f, s = json.loads(out.stdout)
    assert np.array_equal(np.array(t), expected.topics)
    assert np.array_equal(np.array(f), expected.frames)
    assert np.array_equal(np.array(s), expected.stance)
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert card["kind"] == kind and card["codebook_version"] == Codebook.load().version
    assert (tmp_path / "m" / "MODEL_CARD.md").read_text().startswith(f"# Model card: classify `{kind}`")


def test_predict_frame_columns(kind, gold):
    m = FACTORIES[kind]().fit(gold, gold)
    out = m.predict(gold)
    assert list(out.columns) == ["topics", "frames", "stance_west", "scores", "stance_scores", "evidence"]
    for frames, ev in zip(out["frames"], out["evidence"]):
        assert set(ev) == set(frames)


def test_missing_and_foreign_dirs_fail_clearly(tmp_path):
    with pytest.raises(ModelError, match="no such model directory"):
        load_model(tmp_path / "nope")
    (tmp_path / "x").mkdir()
    with pytest.raises(ModelError, match="no card.json"):
        load_model(tmp_path / "x")
    (tmp_path / "x" / "card.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable model card"):
        load_model(tmp_path / "x")
    (tmp_path / "x" / "card.json").write_text(json.dumps({"kind": "evil"}))
    with pytest.raises(ModelError, match="unknown model kind"):
        load_model(tmp_path / "x")


def test_tampered_weights_raise_model_error_without_executing(gold, tmp_path):
    m = BaselineModel(BaselineConfig(threshold_folds=0)).fit(gold, gold)
    m.save(tmp_path / "m")
    # A pickle payload in place of the weights must not run: the loader only reads safetensors.
    (tmp_path / "m" / "weights.safetensors").write_bytes(b"\x80\x04cos\nsystem\n(S'touch /tmp/pwned'\ntR.")
    with pytest.raises(ModelError, match="not a valid safetensors file"):
        load_model(tmp_path / "m")


def test_codebook_mismatch_refused(gold, tmp_path):
    m = BaselineModel(BaselineConfig(threshold_folds=0)).fit(gold, gold)
    m.save(tmp_path / "m")
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    card["codebook_version"] = "0.9"
    (tmp_path / "m" / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="codebook 0.9"):
        load_model(tmp_path / "m")


def test_default_models_include_the_transformer_when_torch_is_installed():
    """The train command's default kinds find the transformer module where the package keeps it."""
    pytest.importorskip("torch")
    from classify.train import DEFAULT_MODELS

    assert DEFAULT_MODELS == ("baseline", "transformer")
