"""Label Studio config, tasks and export import on real sample posts (the committed rounds), without a
server: exports are built the way Label Studio writes them (tests/integration has the real server)."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from classify.codebook import Codebook
from classify.errors import InputError
from classify.gold.agreement import load_pass
from classify.gold.labelstudio import labelling_config, make_tasks, preannotator, read_posts_file
from classify.gold.lsimport import import_export
from classify.gold.rounds import read_posts
from classify.io.tables import write_table
from classify.labels import main

REPO = Path(__file__).resolve().parents[2]
ROUNDS = REPO / "labels" / "rounds"


@pytest.fixture(scope="module")
def cb() -> Codebook:
    return Codebook.load()


@pytest.fixture(scope="module")
def sample() -> list[dict]:
    """Eight real posts of the dumps round (English and Russian), as a queue lists them."""
    posts = read_posts("dumps", ROUNDS)[:8]
    return [{"post_id": p["post_id"], "text": "\n".join(p["paragraphs"]), "paragraphs": p["paragraphs"], "lang": p["lang"],
             "source": p["source_name"], "channel": p.get("channel"), "date": p.get("date"), "dup_group": p["dup_group"],
             "reason": "rare label", "scores": {"rare": 0.8}} for p in posts]


def write_queue(path: Path, posts: list[dict]) -> Path:
    path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in posts), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ config
def test_config_has_every_codebook_label_with_its_definition(cb):
    root = ET.fromstring(labelling_config(cb))
    controls = {el.get("name"): el for el in root.iter() if el.tag in ("Choices", "ParagraphLabels", "TextArea")}
    assert set(controls) == {"topics", "frames", "stance_west", "notes"}
    assert [c.get("value") for c in controls["topics"]] == list(cb.topics)
    assert [c.get("value") for c in controls["frames"]] == list(cb.frames)
    assert [c.get("value") for c in controls["stance_west"]] == list(cb.stances)
    assert controls["stance_west"].get("required") == "true" and controls["topics"].get("choice") == "multiple"
    for el in (*controls["topics"], *controls["frames"], *controls["stance_west"]):
        label = cb.label(el.get("value"))
        assert el.get("hint").startswith(f"{label.name}: {label.definition.split()[0]}")
    para = next(el for el in root.iter("Paragraphs"))
    assert (para.get("name"), para.get("value"), para.get("textKey")) == ("post", "$paragraphs", "text")


def test_config_is_valid_for_the_label_studio_sdk(cb, tmp_path, capsys):
    sdk = pytest.importorskip("label_studio_sdk.label_interface")
    xml = labelling_config(cb)
    sdk.LabelInterface(xml).validate()
    assert main(["labelstudio", "config", "-o", str(tmp_path / "c.xml")]) == 0
    assert (tmp_path / "c.xml").read_text(encoding="utf-8") == xml


# ------------------------------------------------------------------------------ tasks
def test_tasks_from_a_queue_with_cue_rule_preannotations(tmp_path, sample, cb):
    queue = write_queue(tmp_path / "queue.jsonl", sample)
    assert main(["labelstudio", "tasks", str(queue), "-o", str(tmp_path / "t.json")]) == 0
    tasks = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    assert [t["data"]["post_id"] for t in tasks] == [p["post_id"] for p in sample]
    model, version = preannotator(None, cb)
    proba = model.predict_proba([p["paragraphs"] for p in sample])
    for t, p, pt, pf in zip(tasks, sample, proba.topics, proba.frames):
        assert [x["text"] for x in t["data"]["paragraphs"]] == p["paragraphs"]
        assert t["data"]["reason"] == "rare label" and t["data"]["classify"]["codebook_version"] == cb.version
        (pred,) = t["predictions"]
        assert pred["model_version"] == version == f"cue_rule codebook-{cb.version}"
        by = {}
        for r in pred["result"]:
            by.setdefault(r["from_name"], []).append(r)
        assert by.get("topics", [{"value": {"choices": []}}])[0]["value"]["choices"] == [cb.topics[j] for j in range(len(pt)) if pt[j]]
        frames = [r["value"]["paragraphlabels"][0] for r in by.get("frames", [])]
        assert frames == [cb.frames[j] for j in range(len(pf)) if pf[j]]
        for r in by.get("frames", []):  # the region is a whole paragraph, as the annotator would select it
            k = int(r["value"]["start"])
            assert r["value"]["text"] == p["paragraphs"][k] and r["value"]["endOffset"] == len(p["paragraphs"][k])
    assert any("frames" in {r["from_name"] for r in t["predictions"][0]["result"]} for t in tasks)


def test_tasks_with_a_trained_model_carry_scores_and_version(tmp_path, sample, gold, cb):
    from classify.learners.baseline.model import BaselineConfig, BaselineModel

    model_dir = BaselineModel(BaselineConfig(threshold_folds=0)).fit(gold, gold).save(tmp_path / "baseline")
    model, version = preannotator(model_dir, cb)
    assert version.startswith("baseline ") and version.endswith(f"codebook-{cb.version}")
    tasks = make_tasks(sample, model, version, cb)
    proba = model.predict_proba([p["paragraphs"] for p in sample])
    for t, ps in zip(tasks, proba.stance):
        (pred,) = t["predictions"]
        stance = next(r for r in pred["result"] if r["from_name"] == "stance_west")
        assert stance["value"]["choices"] == [cb.stances[int(ps.argmax())]]
        assert stance["score"] == pytest.approx(float(ps.max()), abs=1e-4)
        assert 0 <= pred["score"] <= min(r["score"] for r in pred["result"]) + 1e-9  # the least certain decision


def test_tasks_from_an_ingested_table_skip_copies_and_media(tmp_path, sample):
    rows = [{"post_id": p["post_id"], "source": "dump.txt", "lang": p["lang"], "text": p["text"], "paragraphs": p["paragraphs"],
             "dup_group": p["post_id"], "channel": "MFA", "date": pd.Timestamp("2025-01-02"), "empty_text": False} for p in sample[:3]]
    rows.append({**rows[0], "post_id": "copy", "source": "other.txt"})  # a forwarded copy: same duplicate group
    rows.append({**rows[1], "post_id": "m1", "text": "", "paragraphs": [], "dup_group": "m1", "empty_text": True})
    table = write_table(pd.DataFrame(rows), tmp_path / "corpus.parquet")
    posts = read_posts_file(table)
    assert [p["post_id"] for p in posts] == [p["post_id"] for p in sample[:3]]
    assert posts[0]["date"].startswith("2025-01-02") and posts[0]["channel"] == "MFA"


def test_tasks_make_the_round_then_refuse_posts_outside_it(tmp_path, sample, capsys):
    rounds = tmp_path / "rounds"
    queue = write_queue(tmp_path / "q.jsonl", sample[:5])
    assert main(["labelstudio", "tasks", str(queue), "--round", "r9", "--rounds", str(rounds), "--no-predictions",
                 "-o", str(tmp_path / "t.json")]) == 0
    meta = json.loads((rounds / "r9" / "round.json").read_text())
    assert (meta["how"], meta["split"], meta["n_posts"]) == ("queue", "train", 5)
    assert [p["post_id"] for p in read_posts("r9", rounds)] == [p["post_id"] for p in sample[:5]]
    assert "predictions" not in json.loads((tmp_path / "t.json").read_text())[0]
    # the round's own posts again: fine; a post outside it: refused, naming the round
    assert main(["labelstudio", "tasks", "--round", "r9", "--rounds", str(rounds), "-o", str(tmp_path / "t2.json")]) == 0
    other = write_queue(tmp_path / "q2.jsonl", sample[4:7])
    capsys.readouterr()
    assert main(["labelstudio", "tasks", str(other), "--round", "r9", "--rounds", str(rounds), "-o", str(tmp_path / "t3.json")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"post {sample[5]['post_id']}" in err and "not in round r9" in err
    edited = write_queue(tmp_path / "q3.jsonl", [{**sample[0], "paragraphs": ["other text"]}])
    assert main(["labelstudio", "tasks", str(edited), "--round", "r9", "--rounds", str(rounds), "-o", str(tmp_path / "t5.json")]) == 3
    assert "has other paragraphs in the round" in capsys.readouterr().err
    # a new round may not take posts already given out in r9
    assert main(["labelstudio", "tasks", str(other), "--round", "r10", "--rounds", str(rounds), "-o", str(tmp_path / "t4.json")]) == 3
    assert "already in a round" in capsys.readouterr().err and not (rounds / "r10").exists()


def test_tasks_input_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"post_id": "x", "paragraphs": ["a"]}\n{"text": "no id"}\n', encoding="utf-8")
    assert main(["labelstudio", "tasks", str(bad), "-o", str(tmp_path / "t.json")]) == 3
    assert capsys.readouterr().err == f"error: {bad}:line 2: no post_id; not a queue, round or ingested posts file\n"
    assert not (tmp_path / "t.json").exists()


# ------------------------------------------------------------------------------ import
def annotated_export(tasks: list[dict], answers: dict[str, list[dict]], user: int = 7, lead: float = 12.5) -> list[dict]:
    """What Label Studio's JSON export holds after ``answers`` (post_id -> result) were submitted."""
    out = []
    for n, t in enumerate(tasks, 1):
        task = {"id": 100 + n, "data": copy.deepcopy(t["data"]), "predictions": [n], "annotations": [], "project": 3}
        if t["data"]["post_id"] in answers:
            task["annotations"].append({"id": 500 + n, "completed_by": user, "result": answers[t["data"]["post_id"]],
                                        "was_cancelled": False, "lead_time": lead, "created_at": "2026-01-01T10:00:00Z",
                                        "updated_at": "2026-01-01T10:01:00Z", "task": 100 + n, "project": 3})
        out.append(task)
    return out


def choices(name: str, *values: str) -> dict:
    return {"from_name": name, "to_name": "post", "type": "choices", "value": {"choices": list(values)}}


def region(start: int, end: int, *frames: str) -> dict:
    return {"id": f"r{start}{end}", "from_name": "frames", "to_name": "post", "type": "paragraphlabels",
            "value": {"start": str(start), "end": str(end), "startOffset": 0, "endOffset": 3, "text": "...",
                      "paragraphlabels": list(frames)}}


@pytest.fixture
def labelled_round(tmp_path, sample):
    """A round of the sample posts, its tasks, and an export where two posts were annotated."""
    rounds = tmp_path / "rounds"
    queue = write_queue(tmp_path / "q.jsonl", sample)
    assert main(["labelstudio", "tasks", str(queue), "--round", "r1", "--rounds", str(rounds), "-o", str(tmp_path / "t.json")]) == 0
    tasks = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    p0, p1 = sample[0]["post_id"], sample[1]["post_id"]
    answers = {p0: [choices("topics", "brics", "energy"), region(0, 1, "multipolar_order", "reliable_partnership"),
                    region(1, 1, "multipolar_order"), choices("stance_west", "none"),
                    {"from_name": "notes", "to_name": "post", "type": "textarea", "value": {"text": ["borderline", "list only"]}}],
               p1: [choices("stance_west", "against")]}
    export = tmp_path / "export.json"
    export.write_text(json.dumps(annotated_export(tasks, answers)), encoding="utf-8")
    return rounds, tasks, export, answers


def test_import_writes_the_pass_losing_nothing(labelled_round, sample, cb, capsys):
    rounds, _, export, _ = labelled_round
    assert main(["labelstudio", "import", str(export), "--annotator", "a", "--round", "r1", "--rounds", str(rounds)]) == 0
    out = capsys.readouterr().out
    assert "wrote 2 annotations of a" in out and "6 tasks without annotation" in out and "0.4 min" in out
    path = rounds / "r1" / "passes" / "a.jsonl"
    recs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert recs[0] == {"post_id": sample[0]["post_id"], "topics": ["energy", "brics"],  # codebook order
                       "frames": ["multipolar_order", "reliable_partnership"], "stance_west": "none",
                       "evidence": {"multipolar_order": [0, 1], "reliable_partnership": [0, 1]}, "annotator": "a",
                       "notes": "borderline\nlist only", "lead_time": 12.5,
                       "ls": {"task": 101, "annotation": 501, "completed_by": "7", "updated_at": "2026-01-01T10:01:00Z"}}
    assert (recs[1]["topics"], recs[1]["frames"], recs[1]["stance_west"], recs[1]["evidence"]) == ([], [], "against", {})
    passes, warnings = load_pass(path, cb)
    assert len(passes) == 2 and warnings == []


def _export_with(export: Path, change) -> Path:
    tasks = json.loads(export.read_text(encoding="utf-8"))
    change(tasks)
    bad = export.with_name("bad.json")
    bad.write_text(json.dumps(tasks), encoding="utf-8")
    return bad


@pytest.mark.parametrize("change, message", [
    (lambda t: [x["data"].pop("post_id") for x in t], "no post_id in the task data: an export of another Label Studio project"),
    (lambda t: t[0]["annotations"][0]["result"].append(choices("sentiment", "positive")), "control 'sentiment' is not in the classify"),
    (lambda t: t[0]["annotations"][0]["result"].append(choices("topics", "sport")), "unknown topics id 'sport'"),
    (lambda t: t[0]["annotations"][0]["result"].append(region(0, 0, "western_values")), "unknown frame 'western_values'"),
    (lambda t: t[0]["annotations"][0]["result"].append(region(0, 40, "historical_memory")), "paragraph 40 does not exist (the post has paragraphs 0-3)"),
    (lambda t: t[1]["annotations"][0].update(result=[]), "no stance_west chosen"),
    (lambda t: t[0]["data"].update(post_id="gone"), "post gone): the post is not in the round's posts"),
    (lambda t: t[0]["data"]["paragraphs"][0].update(text="edited"), "paragraphs differ from the round's copy"),
    (lambda t: t[0]["annotations"].append({**t[0]["annotations"][0], "completed_by": 8}), "2 annotations (by 7, 8)"),
    (lambda t: t.append(t[0]), "is also task 1; keep one task per post"),
])
def test_import_errors_name_the_file_and_task(labelled_round, capsys, change, message):
    rounds, _, export, _ = labelled_round
    bad = _export_with(export, change)
    assert main(["labelstudio", "import", str(bad), "--annotator", "a", "--round", "r1", "--rounds", str(rounds)]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}:task ") and message in err and err.count("\n") == 1
    assert not (rounds / "r1" / "passes" / "a.jsonl").exists()


def test_import_other_shapes_and_choices(labelled_round, tmp_path, capsys):
    rounds, tasks, export, _ = labelled_round
    flat = tmp_path / "min.json"  # JSON-MIN: no data/annotations
    flat.write_text(json.dumps([{"post_id": "x", "topics": "cyber"}]), encoding="utf-8")
    assert main(["labelstudio", "import", str(flat), "--annotator", "a", "-o", str(tmp_path / "p.jsonl")]) == 3
    assert "JSON-MIN export" in capsys.readouterr().err
    # two annotators on one task: --user keeps one; a cancelled (skipped) annotation does not count
    two = _export_with(export, lambda t: (t[0]["annotations"].append({**t[0]["annotations"][0], "completed_by": 8, "id": 9}),
                                          t[1]["annotations"][0].update(was_cancelled=True)))
    recs, open_tasks = import_export(two, "b", None, user="8")
    assert [r["ls"]["annotation"] for r in recs] == [9] and open_tasks == 7
    assert main(["labelstudio", "import", str(export), "--annotator", "../x", "--round", "r1", "--rounds", str(rounds)]) == 2


def test_lead_time_is_checked_by_validation(tmp_path, cb):
    rec = {"post_id": "p", "topics": [], "frames": [], "stance_west": "none", "evidence": {}, "lead_time": -3}
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(rec) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="lead_time must be a number of seconds >= 0, got -3"):
        load_pass(path, cb)
