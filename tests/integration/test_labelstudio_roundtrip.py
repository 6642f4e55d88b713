"""The Label Studio round trip against a real server: config and tasks from classify, a project made
through the SDK with a personal access token, one annotation posted, the export imported back as a
pass that equals what was posted; the server is stopped by its process group."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from classify.codebook import Codebook  # noqa: E402
from classify.gold.agreement import load_pass  # noqa: E402
from classify.gold.rounds import read_posts  # noqa: E402
from classify.labels import main  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.integration]
REPO = Path(__file__).resolve().parents[2]


def _sample_posts(n: int = 3) -> list[dict]:
    """Real posts of the RIA test round with at least three paragraphs, as a queue lists them."""
    posts = [p for p in read_posts("test-ria", REPO / "labels" / "rounds") if len(p["paragraphs"]) >= 3][:n]
    return [{"post_id": p["post_id"], "text": "\n".join(p["paragraphs"]), "paragraphs": p["paragraphs"], "lang": p["lang"],
             "source": p["source_name"], "channel": p["channel"], "date": p["date"], "dup_group": p["dup_group"],
             "reason": "uncertainty", "scores": {"uncertainty": 0.5 - k / 10}} for k, p in enumerate(posts)]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from conftest import make_gold

    from classify.learners.baseline.model import BaselineConfig, BaselineModel

    gold = make_gold()
    return BaselineModel(BaselineConfig(threshold_folds=0)).fit(gold, gold).save(tmp_path_factory.mktemp("m") / "baseline")


def test_round_trip_through_a_real_label_studio(tmp_path, tiny_model, capsys):
    from lsserver import LabelStudioServer, executable

    if executable() is None:
        pytest.skip("label-studio is not installed: pip install -e '.[annotate]'")

    t0 = time.monotonic()
    rounds = tmp_path / "rounds"
    queue = tmp_path / "queue.jsonl"
    posts = _sample_posts()
    queue.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in posts), encoding="utf-8")
    assert main(["labelstudio", "config", "-o", str(tmp_path / "config.xml")]) == 0
    assert main(["labelstudio", "tasks", str(queue), "--round", "r1", "--rounds", str(rounds),
                 "--model", str(tiny_model), "-o", str(tmp_path / "tasks.json")]) == 0
    tasks = json.loads((tmp_path / "tasks.json").read_text(encoding="utf-8"))
    assert [t["data"]["post_id"] for t in tasks] == [p["post_id"] for p in posts]

    server = LabelStudioServer().start()
    try:
        ls = server.client()
        project = ls.projects.create(title="classify round r1", label_config=(tmp_path / "config.xml").read_text(encoding="utf-8"))
        ls.projects.import_tasks(id=project.id, request=tasks)
        listed = {t.data["post_id"]: t for t in ls.tasks.list(project=project.id, fields="all")}
        assert set(listed) == {p["post_id"] for p in posts}
        target = posts[1]
        task = listed[target["post_id"]]
        preds = ls.predictions.list(task=task.id)
        assert len(preds) == 1 and preds[0].model_version.startswith("baseline") and 0 <= preds[0].score <= 1
        paras = target["paragraphs"]
        result = [
            {"from_name": "topics", "to_name": "post", "type": "choices", "value": {"choices": ["energy", "ukraine"]}},
            {"id": "reg1", "from_name": "frames", "to_name": "post", "type": "paragraphlabels",
             "value": {"start": "0", "end": "1", "startOffset": 0, "endOffset": len(paras[1]), "text": paras[0],
                       "paragraphlabels": ["western_hegemony", "sanctions_illegitimate"]}},
            {"id": "reg2", "from_name": "frames", "to_name": "post", "type": "paragraphlabels",
             "value": {"start": "2", "end": "2", "startOffset": 0, "endOffset": 5, "text": paras[2][:5],
                       "paragraphlabels": ["western_hegemony"]}},
            {"from_name": "stance_west", "to_name": "post", "type": "choices", "value": {"choices": ["against"]}},
            {"from_name": "notes", "to_name": "post", "type": "textarea", "value": {"text": ["Sanctions cast as self-defeating."]}},
        ]
        ls.annotations.create(id=task.id, result=result, lead_time=37.25)
        export = tmp_path / "export.json"
        export.write_bytes(b"".join(ls.projects.exports.download_sync(id=project.id, export_type="JSON", download_all_tasks=True)))
    finally:
        server.stop()
    assert not server.alive(), "the Label Studio process group is still running"

    assert main(["labelstudio", "import", str(export), "--annotator", "a", "--round", "r1", "--rounds", str(rounds)]) == 0
    assert "wrote 1 annotations of a" in capsys.readouterr().out
    pass_file = rounds / "r1" / "passes" / "a.jsonl"
    rec = json.loads(pass_file.read_text(encoding="utf-8"))
    assert {k: rec[k] for k in ("post_id", "topics", "frames", "stance_west", "evidence", "annotator", "notes", "lead_time")} == {
        "post_id": target["post_id"], "topics": ["energy", "ukraine"], "frames": ["western_hegemony", "sanctions_illegitimate"],
        "stance_west": "against", "evidence": {"western_hegemony": [0, 1, 2], "sanctions_illegitimate": [0, 1]},
        "annotator": "a", "notes": "Sanctions cast as self-defeating.", "lead_time": 37.25}
    assert rec["ls"]["task"] == task.id and rec["ls"]["completed_by"]
    passes, warnings = load_pass(pass_file, Codebook.load())  # what agreement/adjudicate-sheet read
    assert list(passes) == [target["post_id"]] and warnings == []
    print(f"round trip took {time.monotonic() - t0:.0f} s")
