"""Gold validation, agreement maths (checked against hand computations), statistics, adjudication
and the gold build, all on temporary files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from classify.codebook import Codebook
from classify.errors import InputError
from classify.gold.adjudication import build_gold, disagreements
from classify.gold.agreement import agreement, agreement_markdown, binary_agreement, categorical_agreement
from classify.gold.files import label_matrix, load_gold, stance_vector
from classify.gold.stats import stats, stats_markdown, stats_text
from classify.gold.validate import validate
from classify.io.tables import write_table
from classify.labels import main


@pytest.fixture(scope="module")
def cb() -> Codebook:
    return Codebook.load()


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ a tiny corpus
POSTS = {  # post_id -> (paragraphs, lang)
    "p1": (["Russia and ASEAN discussed international information security.", "Both sides are reliable partners."], "en"),
    "p2": (["Саммит БРИКС прошёл в Казани.", "Формируется многополярный мир."], "ru"),
    "p3": (["The collective West imposes its rules.", "Illegal sanctions hurt the poor.", "Read the statement."], "en"),
    "p4": (["A quiet day at the embassy."], "en"),
}


def corpus_frame() -> pd.DataFrame:
    """What ``ingest`` returns for the four posts, plus a forwarded copy of p2 and a media-only post."""
    rows = []
    for pid, (paras, lang) in POSTS.items():
        rows.append({"post_id": pid, "source": "a.txt", "source_name": "dumps", "lang": lang, "text": "\n".join(paras),
                     "paragraphs": paras, "empty_text": False, "dup_group": pid, "channel": None, "date": None, "locator": f"line {len(rows) + 1}"})
    rows.append({**rows[1], "source": "b.txt"})
    rows.append({"post_id": "m1", "source": "b.txt", "source_name": "dumps", "lang": "und", "text": "", "paragraphs": [],
                 "empty_text": True, "dup_group": "m1", "channel": None, "date": None, "locator": "line 9"})
    return pd.DataFrame(rows)


LABELS = {  # post_id -> (topics, frames, stance, evidence)
    "p1": (["cyber"], ["reliable_partnership"], "none", {"reliable_partnership": [1]}),
    "p2": (["brics"], ["multipolar_order"], "none", {"multipolar_order": [1]}),
    "p3": ([], ["western_hegemony", "sanctions_illegitimate"], "against", {"western_hegemony": [0], "sanctions_illegitimate": [1]}),
    "p4": ([], [], "none", {}),
}


def gold_rows() -> list[dict]:
    out = []
    for pid, (paras, lang) in POSTS.items():
        topics, frames, stance, evidence = copy.deepcopy(LABELS[pid])  # tests mutate the rows
        out.append({"post_id": pid, "dup_group": pid, "text": "\n".join(paras), "paragraphs": paras, "lang": lang,
                    "topics": topics, "frames": frames, "stance_west": stance, "evidence": evidence,
                    "round": "r1", "split": "train", "annotator": "adjudicated", "notes": ""})
    return out


def make_round(root: Path, name: str = "r1", split: str = "train") -> Path:
    """A round folder with the four posts (no passes yet)."""
    from classify.gold.rounds import round_records, write_round

    posts = corpus_frame().drop_duplicates("post_id")
    posts = posts[~posts["empty_text"]]
    write_round(name, round_records(posts), {"split": split, "how": "all", "source": "dumps"}, root)
    return root / name


@pytest.fixture
def gold_path(tmp_path) -> Path:
    return write_jsonl(tmp_path / "gold.jsonl", gold_rows())


@pytest.fixture
def corpus_path(tmp_path) -> Path:
    path = tmp_path / "corpus.jsonl"
    write_table(corpus_frame(), path)
    return path


# ------------------------------------------------------------------------------ agreement maths
# Ten posts, one binary label:
#   A: 1 1 1 1 0 0 0 0 0 0
#   B: 1 1 1 0 1 0 0 0 0 0
# both yes 3, A only 1, B only 1, both no 5.
# Cohen: p_o = 8/10 = 0.8; p_e = 0.4*0.4 + 0.6*0.6 = 0.52; kappa = (0.8 - 0.52) / (1 - 0.52) = 0.28/0.48 = 0.583333.
# Krippendorff (nominal): 20 pairable values, n_1 = 8, n_0 = 12; coincidences o_10 = o_01 = 2 (one per
# disagreeing post and direction); alpha = 1 - (n - 1) * (o_10 + o_01) / (2 * n_0 * n_1)
#   = 1 - 19 * 4 / 192 = 0.604167.
A10 = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
B10 = [1, 1, 1, 0, 1, 0, 0, 0, 0, 0]


def test_binary_agreement_by_hand():
    r = binary_agreement(A10, B10)
    assert (r["n"], r["a"], r["b"], r["both"]) == (10, 4, 4, 3)
    assert r["observed"] == pytest.approx(0.8)
    assert r["kappa"] == pytest.approx(0.28 / 0.48)
    assert r["alpha"] == pytest.approx(1 - 19 * 4 / 192)
    assert r["undefined"] is None


# Ten posts, stance (3 classes):
#   A: against x4 (posts 1-4), favor x2 (5-6), none x4 (7-10)
#   B: against, against, against, none, favor, none, none, none, none, against
# agreements: posts 1, 2, 3, 5, 7, 8, 9 -> p_o = 0.7
# A marginals (4, 2, 4), B marginals (4, 1, 5): p_e = (16 + 2 + 20) / 100 = 0.38
# kappa = (0.7 - 0.38) / 0.62 = 0.516129
# Krippendorff: value totals n_c = (8, 3, 9), n = 20; 3 disagreeing posts give sum_{c!=k} o_ck = 6;
# sum_{c!=k} n_c n_k = 400 - (64 + 9 + 81) = 246; alpha = 1 - 19 * 6 / 246 = 0.536585
SA = ["against"] * 4 + ["favor"] * 2 + ["none"] * 4
SB = ["against", "against", "against", "none", "favor", "none", "none", "none", "none", "against"]


def test_stance_agreement_by_hand():
    r = categorical_agreement(SA, SB, ("against", "favor", "none"))
    assert r["observed"] == pytest.approx(0.7)
    assert r["kappa"] == pytest.approx(0.32 / 0.62)
    assert r["alpha"] == pytest.approx(1 - 19 * 6 / 246)
    assert r["a"] == {"against": 4, "favor": 2, "none": 4} and r["b"] == {"against": 4, "favor": 1, "none": 5}
    assert r["confusion"] == [[3, 0, 1], [0, 1, 1], [1, 0, 3]]


def _alpha_by_formula(a: list, b: list) -> float:
    """Krippendorff's nominal alpha from the coincidence matrix, written out independently."""
    values = sorted(set(a) | set(b))
    o = {(c, k): 0 for c in values for k in values}
    for x, y in zip(a, b):  # two coders per unit: each pair counts in both directions, weight 1/(m-1) = 1
        o[(x, y)] += 1
        o[(y, x)] += 1
    n_c = {c: sum(o[(c, k)] for k in values) for c in values}
    n = sum(n_c.values())
    disagree = sum(v for (c, k), v in o.items() if c != k)
    expected = sum(n_c[c] * n_c[k] for c in values for k in values if c != k)
    return 1 - (n - 1) * disagree / expected


def test_krippendorff_alpha_known_value():
    from classify.gold.agreement import _alpha

    # Five categories, 10 units: 8 agreements, 2 disagreements (a/b, d/b).
    # n_c: a 3, b 6, c 6, d 3, e 2 (n = 20); sum n_c^2 = 9 + 36 + 36 + 9 + 4 = 94;
    # alpha = 1 - 19 * 4 / (400 - 94) = 0.751634
    a = ["a", "a", "b", "b", "d", "c", "c", "c", "e", "d"]
    b = ["b", "a", "b", "b", "b", "c", "c", "c", "e", "d"]
    assert _alpha(a, b) == pytest.approx(1 - 19 * 4 / 306)
    assert _alpha_by_formula(a, b) == pytest.approx(1 - 19 * 4 / 306)
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = rng.integers(0, 3, 15).tolist(), rng.integers(0, 3, 15).tolist()
        if len(set(x) | set(y)) > 1:
            assert _alpha(x, y) == pytest.approx(_alpha_by_formula(x, y))


def test_undefined_agreement():
    r = binary_agreement([0] * 5, [0] * 5)
    assert r["kappa"] is None and r["alpha"] is None and r["undefined"] == "no positives"
    assert r["observed"] == 1.0
    r = binary_agreement([1] * 5, [1] * 5)
    assert r["kappa"] is None and r["undefined"] == "all positive"
    r = binary_agreement([0] * 5, [0, 0, 0, 0, 1])  # one annotator never used it: kappa is 0, defined
    assert r["kappa"] == pytest.approx(0.0) and r["undefined"] is None


# ------------------------------------------------------------------------------ agreement of passes
def make_passes(tmp_path: Path) -> tuple[Path, Path]:
    a = [
        {"post_id": "p1", "topics": ["cyber"], "frames": ["reliable_partnership"], "stance_west": "none",
         "evidence": {"reliable_partnership": [1]}, "annotator": "A", "notes": ""},
        {"post_id": "p2", "topics": ["brics"], "frames": ["multipolar_order"], "stance_west": "none",
         "evidence": {"multipolar_order": [1]}, "annotator": "A", "notes": ""},
        {"post_id": "p3", "topics": [], "frames": ["western_hegemony", "sanctions_illegitimate"], "stance_west": "against",
         "evidence": {"western_hegemony": [0], "sanctions_illegitimate": [1]}, "annotator": "A", "notes": "hard"},
        {"post_id": "p4", "topics": [], "frames": [], "stance_west": "none", "evidence": {}, "annotator": "A", "notes": ""},
    ]
    b = [
        {"post_id": "p1", "topics": ["cyber"], "frames": [], "stance_west": "none", "evidence": {}, "annotator": "B", "notes": ""},
        {"post_id": "p2", "topics": ["brics"], "frames": ["multipolar_order"], "stance_west": "none",
         "evidence": {"multipolar_order": [0]}, "annotator": "B", "notes": ""},
        {"post_id": "p3", "topics": ["energy"], "frames": ["western_hegemony"], "stance_west": "none",
         "evidence": {"western_hegemony": [0, 1]}, "annotator": "B", "notes": ""},
        {"post_id": "p4", "topics": [], "frames": [], "stance_west": "none", "evidence": {}, "annotator": "B", "notes": ""},
    ]
    return write_jsonl(tmp_path / "a.jsonl", a), write_jsonl(tmp_path / "b.jsonl", b)


def test_agreement_of_two_passes(tmp_path, cb):
    a_path, b_path = make_passes(tmp_path)
    texts = {pid: paras for pid, (paras, _) in POSTS.items()}
    ag = agreement(a_path, b_path, codebook=cb, texts=texts)
    assert ag["n_posts"] == 4 and ag["only_a"] == [] and ag["only_b"] == []
    cyber = ag["labels"]["cyber"]
    assert (cyber["a"], cyber["b"], cyber["both"], cyber["observed"]) == (1, 1, 1, 1.0)
    assert cyber["kappa"] == pytest.approx(1.0)
    assert ag["labels"]["ukraine"]["undefined"] == "no positives"
    assert ag["labels"]["stance_west"]["observed"] == pytest.approx(0.75)
    # frames both marked: (p2, multipolar_order) evidence {1} vs {0}: no overlap; (p3, western_hegemony) {0} vs {0,1}
    assert ag["evidence"] == {"n_frames_both": 2, "overlap": 0.5, "exact": 0.0}
    # p3 has 3 disagreements (energy, sanctions_illegitimate, stance), p1 one
    assert [h["post_id"] for h in ag["hardest"]] == ["p3", "p1"]
    assert ag["hardest"][0]["opening"].startswith("The collective West")
    assert ag["macro"]["topics"]["n_defined"] == 3  # cyber, energy, brics; ukraine unused
    md = agreement_markdown(ag)
    assert "Generated by `python -m classify.labels agreement`" in md
    assert f"sha256 `{ag['sources'][str(a_path)]}`" in md
    assert "n/a (no positives)" in md
    assert "| frames | `western_hegemony` | 1 | 1 | 1 | 1.000 |" in md


def test_agreement_cli_writes_markdown(tmp_path, capsys):
    a_path, b_path = make_passes(tmp_path)
    out = tmp_path / "AGREEMENT.md"
    code = main(["agreement", "--a", str(a_path), "--b", str(b_path), "--out", str(out)])
    assert code == 0 and out.exists()
    assert "# Inter-annotator agreement" in out.read_text(encoding="utf-8")
    assert f"wrote {out}" in capsys.readouterr().out


def test_agreement_rejects_unknown_ids(tmp_path, cb):
    a_path, b_path = make_passes(tmp_path)
    rows = [json.loads(line) for line in b_path.read_text(encoding="utf-8").splitlines()]
    rows[0]["frames"] = ["peace"]
    write_jsonl(b_path, rows)
    with pytest.raises(InputError, match=r"b.jsonl:line 1: unknown frames id 'peace'"):
        agreement(a_path, b_path, codebook=cb)


def test_adjudication_sheet(tmp_path, cb):
    a_path, b_path = make_passes(tmp_path)
    texts = {pid: paras for pid, (paras, _) in POSTS.items()}
    rows = disagreements(a_path, b_path, codebook=cb, texts=texts)
    got = [(r["post_id"], r["field"], r["label"], r["a"], r["b"]) for r in rows]
    assert got == [
        ("p1", "frames", "reliable_partnership", True, False),
        ("p2", "evidence", "multipolar_order", [1], [0]),
        ("p3", "topics", "energy", False, True),
        ("p3", "frames", "sanctions_illegitimate", True, False),
        ("p3", "stance_west", None, "against", "none"),
    ]
    assert rows[0]["text"] == "[0] " + POSTS["p1"][0][0] + "\n[1] " + POSTS["p1"][0][1]
    assert all(r["decision"] is None and r["reason"] == "" for r in rows)
    assert rows[3]["notes"] == {"a": "hard", "b": ""}


def test_adjudicate_sheet_cli(tmp_path, corpus_path):
    a_path, b_path = make_passes(tmp_path)
    out = tmp_path / "sheet.jsonl"
    assert main(["adjudicate-sheet", "--a", str(a_path), "--b", str(b_path), "--out", str(out),
                 "--corpus", str(corpus_path)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 5 and rows[0]["text"].startswith("[0] Russia and ASEAN")


# ------------------------------------------------------------------------------ gold build
def test_build_gold_then_validate(tmp_path, cb):
    rounds = tmp_path / "rounds"
    folder = make_round(rounds)
    (folder / "passes").mkdir()
    a_path, b_path = make_passes(folder / "passes")
    decisions = [
        {"post_id": "p1", "field": "frames", "label": "reliable_partnership", "decision": True, "reason": "explicit"},
        {"post_id": "p2", "field": "evidence", "label": "multipolar_order", "decision": [1], "reason": "para 1 says it"},
        {"post_id": "p3", "field": "topics", "label": "energy", "decision": False, "reason": "no energy"},
        {"post_id": "p3", "field": "frames", "label": "sanctions_illegitimate", "decision": True, "reason": "illegal"},
        {"post_id": "p3", "field": "stance_west", "label": None, "decision": "against", "reason": "accuses the West"},
    ]
    write_jsonl(folder / "adjudication.jsonl", decisions)
    corpus = corpus_frame()
    recs = build_gold(rounds, corpus, tmp_path / "no-translations.json", codebook=cb)
    by_id = {r["post_id"]: r for r in recs}
    assert sorted(by_id) == ["p1", "p2", "p3", "p4"]
    for pid, (topics, frames, stance, _) in LABELS.items():
        assert (by_id[pid]["topics"], by_id[pid]["frames"], by_id[pid]["stance_west"]) == (topics, frames, stance)
    assert by_id["p2"]["evidence"] == {"multipolar_order": [1]}
    assert by_id["p3"]["evidence"] == {"western_hegemony": [0, 1], "sanctions_illegitimate": [1]}  # union / A's
    assert by_id["p2"]["files"] == ["a.txt", "b.txt"]
    assert {(r["round"], r["split"], r["source"]) for r in recs} == {("r1", "train", "dumps")}
    gold = write_jsonl(tmp_path / "gold.jsonl", recs)
    assert validate(gold, corpus, rounds, codebook=cb).problems == []


def test_build_gold_needs_every_decision(tmp_path, cb):
    rounds = tmp_path / "rounds"
    folder = make_round(rounds)
    (folder / "passes").mkdir()
    make_passes(folder / "passes")
    write_jsonl(folder / "adjudication.jsonl", [
        {"post_id": "p1", "field": "frames", "label": "reliable_partnership", "decision": True, "reason": ""}])
    with pytest.raises(InputError, match="no decision for post p3, topics energy"):
        build_gold(rounds, corpus_frame(), tmp_path / "none.json", codebook=cb)


def test_check_decisions_override_labels_both_passes_gave(tmp_path, cb):
    """A `labels check` row decided in adjudication.jsonl changes a label A and B agreed on; an undecided one is ignored."""
    rounds = tmp_path / "rounds"
    folder = make_round(rounds)
    (folder / "passes").mkdir()
    make_passes(folder / "passes")
    decisions = [
        {"post_id": "p1", "field": "frames", "label": "reliable_partnership", "decision": True, "reason": ""},
        {"post_id": "p3", "field": "topics", "label": "energy", "decision": False, "reason": ""},
        {"post_id": "p3", "field": "frames", "label": "sanctions_illegitimate", "decision": True, "reason": ""},
        {"post_id": "p3", "field": "stance_west", "label": None, "decision": "against", "reason": ""},
        {"section": "check", "post_id": "p2", "field": "topics", "label": "brics", "decision": False, "reason": "a list"},
        {"section": "check", "post_id": "p4", "field": "frames", "label": "peace_and_dialogue", "decision": True,
         "evidence": [0], "reason": "calm"},
        {"section": "check", "post_id": "p4", "field": "stance_west", "label": None, "decision": "favor", "reason": ""},
        {"section": "check", "post_id": "p1", "field": "topics", "label": "cyber", "decision": None, "reason": ""},
    ]
    write_jsonl(folder / "adjudication.jsonl", decisions)
    by_id = {r["post_id"]: r for r in build_gold(rounds, corpus_frame(), tmp_path / "none.json", codebook=cb)}
    assert by_id["p2"]["topics"] == [] and by_id["p1"]["topics"] == ["cyber"]
    assert (by_id["p4"]["frames"], by_id["p4"]["evidence"], by_id["p4"]["stance_west"]) == (
        ["peace_and_dialogue"], {"peace_and_dialogue": [0]}, "favor")


def test_validate_checks_the_rounds(tmp_path, gold_path, cb):
    rounds = tmp_path / "rounds"
    make_round(rounds)
    assert validate(gold_path, corpus_frame(), rounds, codebook=cb).ok
    make_round(rounds, "r2", "test")  # the same posts claimed by a second round, as test posts
    problems = "\n".join(validate(gold_path, corpus_frame(), rounds, codebook=cb).problems)
    assert "post p1 is in round r2 (test) but the record says round 'r1', split 'train'" in problems
    rows = gold_rows()
    rows[0]["post_id"] = "p9"
    problems = "\n".join(validate(write_jsonl(tmp_path / "g.jsonl", rows), corpus_frame(), rounds, codebook=cb).problems)
    assert "post p1 has no gold record" in problems


def test_valid_gold(gold_path, cb):
    res = validate(gold_path, corpus_frame(), None, codebook=cb)
    assert res.ok, res.problems
    assert (res.n_gold, res.n_groups) == (4, 4)
    assert res.langs == {"en": 3, "ru": 1}


def test_validate_catches_frame_without_evidence(tmp_path, cb):
    rows = gold_rows()
    rows[0]["evidence"] = {}
    res = validate(write_jsonl(tmp_path / "g.jsonl", rows ), corpus_frame(), None, codebook=cb)
    assert res.problems == [f"{tmp_path / 'g.jsonl'}:line 1: frame reliable_partnership has no evidence paragraph; "
                            "add the paragraph number(s) that carry it"]


def test_validate_catches_unknown_id_and_bad_evidence(tmp_path, cb):
    rows = gold_rows()
    rows[1]["topics"] = ["brics", "bricks"]
    rows[2]["evidence"]["western_hegemony"] = [7]
    rows[3]["evidence"] = {"peace_and_dialogue": [0]}
    rows[3]["stance_west"] = "neutral"
    problems = validate(write_jsonl(tmp_path / "g.jsonl", rows ), corpus_frame(), None, codebook=cb).problems
    text = "\n".join(problems)
    assert "line 2: unknown topics id 'bricks'" in text
    assert "line 3: frame western_hegemony: evidence paragraph 7 does not exist (the post has paragraphs 0-2)" in text
    assert "line 4: evidence for unmarked frame peace_and_dialogue" in text
    assert "line 4: stance_west must be one of against, favor, none, got 'neutral'" in text


def test_validate_catches_split_duplicate_group(tmp_path, cb):
    rows = gold_rows()
    near_copy = {**rows[1], "post_id": "p2b", "frames": [], "evidence": {}}  # labelled differently
    rows.append(near_copy)
    corpus = pd.concat([corpus_frame(), pd.DataFrame([{**corpus_frame().iloc[1].to_dict(), "post_id": "p2b"}])])
    problems = validate(write_jsonl(tmp_path / "g.jsonl", rows ), corpus, None, codebook=cb).problems
    assert len(problems) == 1
    assert "line 5: duplicate group p2 is split: its labels differ from line 2" in problems[0]


def test_validate_checks_the_corpus(tmp_path, cb):
    rows = gold_rows()
    rows[0]["paragraphs"] = [rows[0]["paragraphs"][0] + "!", rows[0]["paragraphs"][1]]
    rows[0]["text"] = "\n".join(rows[0]["paragraphs"])
    rows[2]["post_id"] = rows[2]["dup_group"] = "zz"
    problems = validate(write_jsonl(tmp_path / "g.jsonl", rows ), corpus_frame(), None, codebook=cb).problems
    text = "\n".join(problems)
    assert "line 1: text or paragraphs of p1 differ from the corpus copy" in text
    assert "line 3: post zz is not in the ingested corpus" in text
    assert "m1" not in text  # a media-only post needs no labels


def test_validate_cli(tmp_path, gold_path, corpus_path, capsys):
    make_round(tmp_path / "rounds")
    assert main(["validate", "--gold", str(gold_path), "--corpus", str(corpus_path), "--rounds", str(tmp_path / "rounds")]) == 0
    assert capsys.readouterr().out.startswith(f"OK: {gold_path}: 4 posts in 4 groups from 1 rounds")
    rows = gold_rows()
    rows[0]["frames"] = ["reliable_partnership", "bad_frame"]
    bad = write_jsonl(tmp_path / "bad.jsonl", rows)
    assert main(["validate", "--gold", str(bad), "--corpus", str(corpus_path), "--rounds", str(tmp_path / "rounds")]) == 3
    captured = capsys.readouterr()
    assert "unknown frames id 'bad_frame'" in captured.out and "1 problem(s)" in captured.err
    assert main(["validate", "--gold", str(tmp_path / "missing.jsonl"), "--corpus", str(corpus_path)]) == 3
    assert "no such file" in capsys.readouterr().err


# ------------------------------------------------------------------------------ load_gold and matrices
def test_load_gold_and_matrices(gold_path, cb):
    df = load_gold(gold_path, cb)
    assert df["post_id"].tolist() == ["p1", "p2", "p3", "p4"]
    assert df["group"].tolist() == df["dup_group"].tolist()
    Y = label_matrix(df, cb, "frames")
    assert Y.shape == (4, len(cb.frames)) and Y.dtype == np.int64
    assert Y[2, cb.frames.index("western_hegemony")] == 1 and Y[2].sum() == 2
    T = label_matrix(df, cb, "topics")
    assert T[:, cb.topics.index("cyber")].tolist() == [1, 0, 0, 0]
    assert stance_vector(df, cb).tolist() == [cb.stances.index(s) for s in ("none", "none", "against", "none")]
    assert label_matrix(df, cb, "stance_west").sum(axis=1).tolist() == [1, 1, 1, 1]


def test_load_gold_rejects_bad_records(tmp_path, cb):
    rows = gold_rows()
    rows[1]["frames"] = ["multipolar_order", "ghost"]
    with pytest.raises(InputError, match=r"g.jsonl:line 2: unknown frames id 'ghost'"):
        load_gold(write_jsonl(tmp_path / "g.jsonl", rows), cb)
    (tmp_path / "broken.jsonl").write_text('{"post_id": "x"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"broken.jsonl:line 1: invalid JSON"):
        load_gold(tmp_path / "broken.jsonl", cb)
    rows = gold_rows()
    del rows[0]["dup_group"]
    with pytest.raises(InputError, match="line 1: missing field"):
        load_gold(write_jsonl(tmp_path / "g2.jsonl", rows), cb)


def test_label_matrix_rejects_unknown_id(cb):
    df = pd.DataFrame({"post_id": ["x"], "topics": [["oil"]]})
    with pytest.raises(InputError, match="post x: unknown topics id 'oil'"):
        label_matrix(df, cb, "topics")


# ------------------------------------------------------------------------------ stats
def test_stats(gold_path, cb, tmp_path, capsys):
    st = stats(gold_path, cb)
    assert st["n_posts"] == 4 and st["langs"] == {"en": 3, "ru": 1}
    assert st["counts"]["all"]["cyber"] == 1 and st["counts"]["ru"]["brics"] == 1 and st["counts"]["en"]["brics"] == 0
    k, j = st["labels"].index("western_hegemony"), st["labels"].index("sanctions_illegitimate")
    assert st["cooccurrence"]["all"][k][j] == 1 and st["cooccurrence"]["all"][k][k] == 1
    assert st["stance"]["all"] == {"against": 1, "favor": 0, "none": 3}
    assert "ukraine" in st["absent"] and "favor" in st["absent"] and "cyber" not in st["absent"]
    assert "absent from gold: energy, ukraine" in stats_text(st)
    assert "Codebook labels absent from gold: `energy`, `ukraine`" in stats_markdown(st, gold_path)
    out = tmp_path / "STATS.md"
    assert main(["stats", "--gold", str(gold_path), "--out", str(out)]) == 0
    assert out.exists() and "co-occurrence (ru" in capsys.readouterr().out


def test_export_hf_round_trip(tmp_path, gold_path, cb):
    """The gold as a Hugging Face dataset: class names from the codebook, splits kept, labels and
    evidence decoded back to the same ids, a card beside it; a non-empty folder is refused."""
    datasets = pytest.importorskip("datasets")
    rows = gold_rows()
    rows[3]["split"] = "test"
    gold = load_gold(write_jsonl(tmp_path / "g.jsonl", rows), cb)
    out = tmp_path / "hf"
    assert main(["export", str(out), "--gold", str(tmp_path / "g.jsonl")]) == 0
    dd = datasets.load_from_disk(str(out))
    assert {k: v.num_rows for k, v in dd.items()} == {"train": 3, "test": 1}
    train = dd["train"]
    frames = train.features["frames"].feature
    p3 = train[2]
    assert [frames.int2str(i) for i in p3["frames"]] == ["western_hegemony", "sanctions_illegitimate"]
    assert train.features["stance_west"].int2str(p3["stance_west"]) == "against"
    assert [frames.int2str(i) for i in p3["evidence"]["frame"]] == ["western_hegemony", "sanctions_illegitimate"]
    assert p3["evidence"]["paragraphs"] == [[0], [1]]
    assert "# classify gold" in (out / "README.md").read_text(encoding="utf-8")
    assert len(gold) == 4
    assert main(["export", str(out), "--gold", str(tmp_path / "g.jsonl")]) == 2  # exists, not empty
