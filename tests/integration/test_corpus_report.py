"""The corpus report end to end: tag, then report (and ``classify.tag --report``), on dumps without dates,
a dated multi-channel export, a model without held-out predictions, and the command's one-line errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from classify.codebook import Codebook
from classify.learners.baseline.model import BaselineConfig, BaselineModel
from classify.report import main, report
from classify.tag import main as tag_main
from classify.tagging.local import tag
from classify.tagging.rows import read_tags

ROOT = Path(__file__).resolve().parents[2]
DUMPS = sorted((ROOT / "data" / "dumps").glob("*.txt"))


@pytest.fixture(scope="module")
def model_dir(model_dir, tmp_path_factory):
    """The shared baseline, copied, with synthetic held-out predictions beside it."""
    from heldout_fixture import synthetic_heldout, write_heldout

    out = tmp_path_factory.mktemp("model") / "baseline"
    shutil.copytree(model_dir, out)
    write_heldout(out, synthetic_heldout(Codebook.load()))
    return out


@pytest.fixture(scope="module")
def dated(tmp_path_factory):
    """A scraper JSONL with dates over three months and two channels."""
    path = tmp_path_factory.mktemp("dated") / "dated.jsonl"
    texts = ["The BRICS summit in Kazan welcomed new partners.\nA multipolar world order is emerging.",
             "The collective West imposes its hegemony.\nIllegal unilateral sanctions hurt the poor.",
             "Rosatom will build a nuclear power plant.", "We celebrate the Victory in the Great Patriotic War."]
    with path.open("w") as fh:
        for i in range(240):
            fh.write(json.dumps({"id": i, "date": f"2024-{1 + i % 3:02d}-{1 + i % 27:02d}T10:00:00+00:00",
                                 "channel": "chan_a" if i % 2 else "chan_b", "text": f"{texts[i % 4]}\nPost {i}."}) + "\n")
    return path


def offline(html: str) -> None:
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "an external resource"
    assert "<link" not in html.lower()


@pytest.mark.slow
def test_report_on_the_sample_dumps_says_there_is_no_time_axis(model_dir, tmp_path):
    tags = tmp_path / "tags.parquet"
    tag(DUMPS, tags, model_dir=model_dir)
    written = report([tags], tmp_path / "r.html", model_dir=model_dir, inputs=DUMPS, n_boot=100)
    html = (tmp_path / "r.html").read_text()
    offline(html)
    assert "No post has a date" in html and "no time axis" in html
    assert "Corrected shares undo the model" in html and "held-out gold posts" in html
    assert 'src="data:image/png;base64,' in html
    md = (tmp_path / "r.md").read_text()
    assert "](r_plots/overall.png)" in md and (tmp_path / "r_plots" / "overall.png").exists()
    assert [p.name for p in written] == ["r.html", "r.md", "r_plots", "r.cells.csv"]
    # every number comes from the tags: the raw share of each label in the CSV is the share in the tag rows
    cells = pd.read_csv(tmp_path / "r.cells.csv")
    ok = read_tags(tags).query("status == 'ok'")
    overall = cells[cells["breakdown"] == "overall"].set_index("label")
    for lab in ("brics", "western_hegemony"):
        col = "topics" if lab == "brics" else "frames"
        assert overall.at[lab, "raw"] == pytest.approx(ok[col].map(lambda x, lab=lab: lab in x).mean(), abs=1e-5)
    assert overall.at["brics", "posts"] == len(ok)


@pytest.mark.slow
def test_report_over_time_and_channels(model_dir, dated, tmp_path):
    tags = tmp_path / "t.jsonl"
    tag([dated], tags, model_dir=model_dir)
    report([tags], tmp_path / "r.html", model_dir=model_dir, inputs=[dated], n_boot=100)
    html = (tmp_path / "r.html").read_text()
    offline(html)
    assert "shares per month" in html and 'alt="share per label over time"' in html
    assert "chan_a" in html and "chan_b" in html
    assert "<mark>" in html                       # cue phrases of the evidence paragraphs
    cells = pd.read_csv(tmp_path / "r.cells.csv", keep_default_na=False)
    per = cells[cells["breakdown"] == "channel_period"]
    assert set(per["period"]) == {"2024-01", "2024-02", "2024-03"} and set(per["channel"]) == {"chan_a", "chan_b"}
    assert "far from every gold post" in html and "model vs cue rule" in html


def test_without_heldout_predictions_the_shares_are_raw_and_say_why(tmp_path, dated):
    from conftest import make_gold

    g = make_gold()
    model = tmp_path / "m"
    BaselineModel(BaselineConfig(threshold_folds=0)).fit(g, g).save(model)
    tags = tmp_path / "t.parquet"
    tag([dated], tags, model_dir=model)
    report([tags], tmp_path / "r.html", model_dir=model, inputs=[dated])
    html = (tmp_path / "r.html").read_text()
    assert "Shares are not corrected" in html and "heldout.parquet does not exist" in html
    assert pd.read_csv(tmp_path / "r.cells.csv")["corrected"].isna().all()


@pytest.mark.slow
def test_tag_report_option_and_its_old_name(model_dir, dated, tmp_path, capsys):
    for flag in ("--report", "--summary-html"):
        out = tmp_path / f"{flag.strip('-')}.html"
        code = tag_main([str(dated), "-o", str(tmp_path / "t.parquet"), "--model", str(model_dir), "--no-progress", flag, str(out)])
        assert code == 0 and out.exists() and out.with_suffix(".md").exists()
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("args, code, words", [
    (["missing.parquet"], 3, "no such tag output"),
    (["TAGS", "-o", "report.pdf"], 2, "HTML file"),
    (["TAGS", "--model", "nope"], 4, "no such model directory"),
])
def test_errors_are_one_line(model_dir, dated, tmp_path, capsys, args, code, words):
    tags = tmp_path / "t.parquet"
    tag([dated], tags, model_dir=model_dir)
    argv = [str(tags) if a == "TAGS" else str(tmp_path / a) if a in ("missing.parquet", "nope") else a for a in args]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "r.html")]
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.slow
def test_on_the_gold_the_crossfitted_correction_is_closer_than_raw(tmp_path):
    """Out-of-fold baseline predictions on the gold's training split: corrected prevalence (each fold
    corrected with error rates from the other folds) is closer to the gold prevalence than the raw share."""
    from heldout_fixture import heldout_frame, write_heldout

    from classify.gold.files import load_gold
    from classify.reporting.goldcheck import crossfit
    from classify.reporting.heldout import load_heldout

    cb = Codebook.load()
    gold = load_gold(ROOT / "labels" / "gold.jsonl")
    train = gold[gold["split"] == "train"]
    # TF-IDF only (no sentence vectors): the correction is under test, not the model, and this keeps it fast
    quick = BaselineConfig(threshold_folds=0, sentence_vectors=0.0, label_similarity=0.0)
    frame = heldout_frame(train, lambda: BaselineModel(quick), cb, folds=3, protocols=("cv",))
    write_heldout(tmp_path, frame)
    ho = load_heldout(tmp_path, cb, "cv", dict(zip(gold["post_id"], gold["group"])))
    gc = crossfit(ho, "acc", by="group")
    s = gc.summary()
    for k, t in enumerate(gc.targets):
        print(f"{t:26s} gold {gc.gold[k]:.3f} raw {gc.raw[k]:.3f} corrected {gc.corrected[k]:.3f}")
    print(s)
    assert s["abs_corrected"] < s["abs_raw"]
