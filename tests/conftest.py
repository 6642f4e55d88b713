"""Shared fixtures: a small hand-made labelled set in English and Russian (seconds to train on)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

POSTS = [
    # (paragraphs, topics, frames, stance)
    (["Russia and ASEAN discussed cybersecurity.", "The UN Convention against Cybercrime was welcomed."], ["cyber"], [], "none"),
    (["International information security talks in the OEWG continued.", "Both sides support norms in cyberspace."], ["cyber"], [], "none"),
    (["Россия и АСЕАН обсудили международную информационную безопасность.", "Стороны осудили киберпреступность."], ["cyber"], [], "none"),
    (["Rosatom will build a nuclear power plant.", "Gas and oil supplies will grow."], ["energy"], ["reliable_partnership"], "none"),
    (["Russia remains a reliable supplier of oil and gas.", "Energy security of partners matters."], ["energy"], ["reliable_partnership"], "none"),
    (["Росатом построит атомную электростанцию.", "Поставки газа и нефти вырастут."], ["energy"], ["reliable_partnership"], "none"),
    (["The Kiev regime shelled civilians again.", "Neo-Nazi units committed crimes in Kursk."], ["ukraine"], ["ukraine_delegitimised"], "against"),
    (["Kiev regime resorts to terrorist methods.", "Western weapons supplies to Ukraine prolong the war."], ["ukraine"], ["ukraine_delegitimised"], "against"),
    (["Киевский режим обстрелял мирных жителей.", "Неонацисты совершают преступления."], ["ukraine"], ["ukraine_delegitimised"], "against"),
    (["The BRICS summit in Kazan welcomed new partner countries.", "The world is becoming multipolar."], ["brics"], ["multipolar_order"], "none"),
    (["BRICS countries account for a third of global GDP.", "A multipolar world order is emerging."], ["brics"], ["multipolar_order"], "none"),
    (["Саммит БРИКС приветствовал новых партнеров.", "Формируется многополярный мир."], ["brics"], ["multipolar_order"], "none"),
    (["The collective West imposes its rules-based order.", "Illegal unilateral sanctions hurt the poor."], [], ["western_hegemony", "sanctions_illegitimate"], "against"),
    (["Western hegemony and double standards must end.", "Sanctions are illegitimate and futile."], [], ["western_hegemony", "sanctions_illegitimate"], "against"),
    (["We celebrate the Victory in the Great Patriotic War.", "We honour the heroes who defeated Nazism."], [], ["historical_memory"], "none"),
    (["The anniversary of Victory reminds us of the lessons of WWII.", "Falsification of history is unacceptable."], [], ["historical_memory"], "none"),
]


def make_gold(rows=POSTS) -> pd.DataFrame:
    recs = []
    for i, (paras, topics, frames, stance) in enumerate(rows):
        recs.append({"post_id": f"p{i:02d}", "dup_group": f"p{i:02d}", "paragraphs": paras, "text": "\n".join(paras),
                     "lang": "ru" if any("\u0400" <= ch <= "\u04ff" for ch in paras[0]) else "en",
                     "topics": topics, "frames": frames, "stance_west": stance,
                     "evidence": {f: [1 if k else 0] for k, f in enumerate(frames)}})
    return pd.DataFrame(recs)


def pytest_collection_modifyitems(items) -> None:
    """Tests under tests/integration/ carry the ``integration`` marker (``-m "not integration"``: unit tests only)."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def gold() -> pd.DataFrame:
    return make_gold()


# --- transformer tests: never reach a model hub; one tiny random encoder per session (~0.1 s) ---
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Exported ONNX graphs of the tests' tiny models go to a throw-away folder, never the user's cache.
os.environ["CLASSIFY_ONNX_CACHE"] = tempfile.mkdtemp(prefix="classify-onnx-test-")
atexit.register(shutil.rmtree, os.environ["CLASSIFY_ONNX_CACHE"], ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    """A tiny random BERT encoder with a real EN+RU tokenizer (see ``classify.encoder``)."""
    from classify.learners.transformer.tiny import build_tiny_encoder

    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A baseline fitted on ``make_gold()`` and saved (seconds); tests that alter a model copy it first."""
    from classify.learners.baseline.model import BaselineConfig, BaselineModel

    g = make_gold()
    out = tmp_path_factory.mktemp("model") / "baseline"
    BaselineModel(BaselineConfig(threshold_folds=0)).fit(g, g).save(out)
    return out
