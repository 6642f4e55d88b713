"""labels check: cleanlab flags labels that out-of-fold probabilities confidently contradict, with the
given and suspected value and the evidence, as adjudication-sheet rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from classify.codebook import Codebook
from classify.gold.check import OOFProbas, find_issues, from_crossval, from_heldout, issues_text
from classify.gold.files import label_matrix, stance_vector
from classify.labels import main


@pytest.fixture(scope="module")
def cb() -> Codebook:
    return Codebook.load()


def big_gold(copies: int = 3) -> pd.DataFrame:
    """The conftest posts three times over (48 posts), so every label has enough positives."""
    from conftest import make_gold

    g = pd.concat([make_gold()] * copies, ignore_index=True)
    g["post_id"] = [f"q{i:02d}" for i in range(len(g))]
    g["dup_group"] = g["group"] = g["post_id"]
    g["round"], g["split"], g["notes"] = "r1", "train", ""
    return g


def faithful_probas(gold: pd.DataFrame, cb: Codebook) -> OOFProbas:
    """Probabilities that agree with the gold (0.9 / 0.1), to be contradicted on purpose."""
    T, F = (label_matrix(gold, cb, t).astype(float) for t in ("topics", "frames"))
    S = np.full((len(gold), len(cb.stances)), 0.05)
    S[np.arange(len(gold)), stance_vector(gold, cb)] = 0.9
    return OOFProbas(np.arange(len(gold)), T * 0.8 + 0.1, F * 0.8 + 0.1, S, np.ones((len(gold), len(cb.frames)), int), "test")


def test_flags_the_contradicted_labels_only(cb):
    gold = big_gold()
    P = faithful_probas(gold, cb)
    e, u, mp = cb.topics.index("energy"), cb.topics.index("ukraine"), cb.frames.index("multipolar_order")
    P.topics[3, e] = 0.02    # q03 is marked energy; the model is sure it is not
    P.frames[0, mp] = 0.97   # q00 (cyber) has no multipolar_order; the model is sure it has, in paragraph 1
    P.topics[20, u] = 0.45   # unsure: not a confident contradiction
    P.stance[6] = [0.03, 0.02, 0.95]  # q06 is "against"; the model says "none"
    issues = find_issues(gold, P, cb)
    got = {(r["post_id"], r["field"], r["label"], r["given"], r["suspected"]) for r in issues}
    assert got == {("q03", "topics", "energy", True, False), ("q00", "frames", "multipolar_order", False, True),
                   ("q06", "stance_west", None, "against", "none")}
    by = {r["post_id"]: r for r in issues}
    assert by["q03"]["p"] == pytest.approx(0.98) and by["q03"]["quality"] == pytest.approx(0.02)
    assert by["q00"]["evidence"] == [1] and by["q00"]["evidence_text"] == {"1": gold["paragraphs"][0][1]}
    assert by["q06"]["evidence"] == [0]  # the evidence of the post's frames (ukraine_delegitimised: [0])
    assert all(r["section"] == "check" and r["decision"] is None and r["text"].startswith("[0] ") for r in issues)
    assert [r["quality"] for r in issues] == sorted(r["quality"] for r in issues)  # least trustworthy first


def test_text_report_is_printable_alone(cb):
    gold = big_gold()
    P = faithful_probas(gold, cb)
    P.topics[3, cb.topics.index("energy")] = 0.02
    text = issues_text(find_issues(gold, P, cb), len(gold), Path("g.jsonl"), "test")
    assert text.splitlines()[0].startswith("1 likely label error(s) in g.jsonl (1 posts of 48)")
    assert "post q03 (round r1, train): topics energy: given yes, suspected no (p 0.98)" in text
    assert "    [0] Rosatom will build a nuclear power plant." in text


def test_crossval_probabilities_are_out_of_fold(cb, monkeypatch):
    import os

    from classify.learners.baseline.model import BaselineConfig, BaselineModel

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # fits in this process, where the spy records them
    gold = big_gold(2)
    seen = []

    def factory():
        m = BaselineModel(BaselineConfig(threshold_folds=0), codebook=cb)
        fit = m.fit

        def spy(posts, g, groups=None):
            seen.append(set(g["post_id"]))
            return fit(posts, g, groups=groups)
        m.fit = spy
        return m

    P = from_crossval(gold, cb, folds=2, seed=0, factory=factory)
    assert len(seen) == 2 and not (seen[0] & seen[1]) and seen[0] | seen[1] == set(gold["post_id"])
    assert P.topics.shape == (32, len(cb.topics)) and np.allclose(P.stance.sum(1), 1)


def write_gold(path: Path, gold: pd.DataFrame) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in gold.to_dict("records")), encoding="utf-8")
    return path


def heldout_table(gold: pd.DataFrame, P: OOFProbas, cb: Codebook) -> pd.DataFrame:
    cols = {"post_id": gold["post_id"], "protocol": "cv"}
    cols.update({f"p_{lid}": P.topics[:, j] for j, lid in enumerate(cb.topics)})
    cols.update({f"p_{lid}": P.frames[:, j] for j, lid in enumerate(cb.frames)})
    cols.update({f"p_stance_{s}": P.stance[:, j] for j, s in enumerate(cb.stances)})
    return pd.DataFrame(cols)


def test_cli_with_a_model_heldout_table_and_a_round_sheet(tmp_path, cb, capsys):
    gold = big_gold()
    P = faithful_probas(gold, cb)
    P.topics[3, cb.topics.index("energy")] = 0.02
    model = tmp_path / "model"
    model.mkdir()
    table = heldout_table(gold, P, cb)
    wrong = table.assign(protocol="loso", p_energy=0.5)  # other protocols are not out-of-fold for this gold
    pd.concat([table, wrong]).to_parquet(model / "heldout.parquet")
    assert from_heldout(model / "heldout.parquet", gold, cb).topics[3, 1] == pytest.approx(0.02)
    gold_path = write_gold(tmp_path / "gold.jsonl", gold)
    rounds = tmp_path / "rounds"
    (rounds / "r1").mkdir(parents=True)
    (rounds / "r1" / "round.json").write_text('{"name": "r1", "split": "train"}')
    sheet = rounds / "r1" / "disagreements.jsonl"
    sheet.write_text(json.dumps({"post_id": "q01", "field": "topics", "label": "cyber", "a": True, "b": False}) + "\n"
                     + json.dumps({"section": "check", "post_id": "old"}) + "\n")
    argv = ["check", "--gold", str(gold_path), "--model", str(model), "--round", "r1", "--rounds", str(rounds),
            "-o", str(tmp_path / "issues.jsonl")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "1 likely label error(s)" in out and "heldout.parquet (protocol cv)" in out
    rows = [json.loads(line) for line in sheet.read_text().splitlines()]
    assert [(r["post_id"], r.get("section")) for r in rows] == [("q01", None), ("q03", "check")]  # disagreements kept, check replaced
    assert [json.loads(line)["post_id"] for line in (tmp_path / "issues.jsonl").read_text().splitlines()] == ["q03"]


def test_cli_errors(tmp_path, capsys):
    gold_path = write_gold(tmp_path / "gold.jsonl", big_gold())
    assert main(["check", "--gold", str(gold_path), "--model", str(tmp_path)]) == 3
    assert "heldout.parquet: no such file" in capsys.readouterr().err
    pd.DataFrame({"post_id": ["x"], "p_cyber": [0.1]}).to_parquet(tmp_path / "heldout.parquet")
    assert main(["check", "--gold", str(gold_path), "--model", str(tmp_path)]) == 3
    assert "not a heldout table of this codebook" in capsys.readouterr().err
