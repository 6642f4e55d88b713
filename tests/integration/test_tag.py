"""Batch tagging: one row per post for every format, resume after a kill, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from classify.io.posts import ingest
from classify.tag import main
from classify.tagging.local import tag
from classify.tagging.rows import OUTPUT_COLUMNS, read_tags

ROOT = Path(__file__).resolve().parents[2]
DUMPS = sorted((ROOT / "data" / "dumps").glob("*.txt"))
INGEST = ROOT / "tests" / "fixtures" / "ingest"




@pytest.mark.parametrize("ext", ["parquet", "csv", "jsonl"])
def test_one_row_per_post_on_sample_dumps(model_dir, tmp_path, ext):
    out = tmp_path / f"tags.{ext}"
    summary = tag(DUMPS, out, model_dir=model_dir, batch_size=7)
    posts = ingest(DUMPS)
    df = read_tags(out)
    assert list(df.columns) == list(OUTPUT_COLUMNS)
    assert len(df) == len(posts) == summary.n_posts
    assert df["post_id"].tolist() == posts["post_id"].tolist()
    assert set(df.loc[df["status"] != "ok", "post_id"]) == set(posts.loc[posts["empty_text"], "post_id"])
    ok = df[df["status"] == "ok"].iloc[0]
    assert isinstance(ok["scores"], dict) and set(ok["stance_scores"]) == {"against", "favor", "none"}


@pytest.mark.parametrize("fixture", ["tdesktop_single.json", "tdesktop_account.json", "messages.csv", "telethon.csv", "posts.jsonl", "snscrape.jsonl"])
def test_row_count_matches_ingest_for_each_format(model_dir, tmp_path, fixture):
    path = INGEST / fixture
    out = tmp_path / "tags.parquet"
    tag([path], out, model_dir=model_dir)
    assert len(read_tags(out)) == len(ingest([path]))


def test_resume_after_kill_equals_uninterrupted_run(model_dir, tmp_path, monkeypatch):
    import classify.tagging.local as T

    monkeypatch.setattr(T, "PART_ROWS", 10)  # small parts so the "kill" lands mid-run
    full = tmp_path / "full.parquet"
    tag(DUMPS, full, model_dir=model_dir, batch_size=8)
    out = tmp_path / "resumed.parquet"
    tag(DUMPS, out, model_dir=model_dir, batch_size=8, stop_after=40)  # simulated kill
    assert not out.exists(), "an interrupted run must not leave the output file"
    assert (tmp_path / "resumed.parquet.parts").exists()
    summary = tag(DUMPS, out, model_dir=model_dir, batch_size=8, resume=True)
    assert summary.n_resumed == 40
    a, b = pd.read_parquet(full), pd.read_parquet(out)
    pd.testing.assert_frame_equal(a, b)
    assert not (tmp_path / "resumed.parquet.parts").exists()


def test_dedupes_repeated_posts(model_dir, tmp_path):
    dup = tmp_path / "dup.jsonl"
    dup.write_text("".join(json.dumps({"id": i, "text": "BRICS summit in Kazan.\nRosatom signed a deal."}) + "\n" for i in range(20)))
    out = tmp_path / "t.jsonl"
    tag([dup], out, model_dir=model_dir)
    df = read_tags(out)
    assert len(df) == 20 and df["topics"].map(tuple).nunique() == 1


def test_missing_and_corrupt_model_dirs(tmp_path, capsys):
    code = main([str(DUMPS[0]), "-o", str(tmp_path / "t.parquet"), "--model", str(tmp_path / "nope"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 4 and "no such model directory" in err and "\n" not in err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "card.json").write_text('{"kind": "baseline", "codebook_version": "1.0"}')
    code = main([str(DUMPS[0]), "-o", str(tmp_path / "t.parquet"), "--model", str(bad), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 4 and "Traceback" not in err


def test_bad_input_is_one_line_error(model_dir, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code = main([str(empty), "-o", str(tmp_path / "t.parquet"), "--model", str(model_dir), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 3 and "empty file" in err and str(empty) in err and "\n" not in err
    assert not (tmp_path / "t.parquet").exists()


def test_runtime_onnx_refuses_a_baseline_model(model_dir, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    code = main([str(DUMPS[0]), "-o", str(tmp_path / "t.parquet"), "--model", str(model_dir), "--runtime", "onnx", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "--runtime onnx is for transformer models" in err and "\n" not in err


def test_runtime_onnx_gives_the_same_labels_as_torch(tiny_encoder, tmp_path):
    pytest.importorskip("onnxruntime")
    from conftest import make_gold

    from classify.learners.transformer.config import TransformerConfig
    from classify.learners.transformer.model import TransformerModel

    g = make_gold()
    mdir = tmp_path / "tr"
    TransformerModel(TransformerConfig(encoder=str(tiny_encoder), epochs=2, threshold_folds=0)).fit(g, g).save(mdir)
    tag(DUMPS, tmp_path / "a.parquet", model_dir=mdir, runtime="torch")
    tag(DUMPS, tmp_path / "b.parquet", model_dir=mdir)  # the default, auto: ONNX Runtime when installed
    a, b = read_tags(tmp_path / "a.parquet"), read_tags(tmp_path / "b.parquet")
    assert len(a) == len(b) and a["topics"].map(list).tolist() == b["topics"].map(list).tolist()
    assert a["frames"].map(list).tolist() == b["frames"].map(list).tolist()


def test_runtime_bf16_tags_with_the_same_labels_as_torch(tiny_encoder, tmp_path):
    from conftest import make_gold

    from classify.learners.transformer.config import TransformerConfig
    from classify.learners.transformer.model import TransformerModel
    from classify.learners.transformer.onnxrt import native_bf16

    if not native_bf16():
        pytest.skip("this CPU has no bfloat16 instructions")
    g = make_gold()
    mdir = tmp_path / "tr"
    TransformerModel(TransformerConfig(encoder=str(tiny_encoder), epochs=2, threshold_folds=0)).fit(g, g).save(mdir)
    tag(DUMPS, tmp_path / "a.parquet", model_dir=mdir, runtime="torch")
    code = main([*map(str, DUMPS), "-o", str(tmp_path / "b.parquet"), "--model", str(mdir), "--runtime", "bf16", "--no-progress"])
    a, b = read_tags(tmp_path / "a.parquet"), read_tags(tmp_path / "b.parquet")
    assert code == 0 and len(a) == len(b) and a["topics"].map(list).tolist() == b["topics"].map(list).tolist()
    assert a["frames"].map(list).tolist() == b["frames"].map(list).tolist()


@pytest.mark.parametrize("batch_size", [7, 256])
@pytest.mark.slow
def test_worker_processes_give_the_same_rows_as_one_process(model_dir, tmp_path, batch_size):
    """--jobs 2 (classify.parallel) equals the in-process path row for row, duplicates and skips included."""
    dup = tmp_path / "dup.jsonl"
    lines = [json.dumps({"id": i, "text": t}) for i, t in enumerate(["Rosatom builds a plant.", "", "Rosatom builds a plant.",
                                                                      "BRICS summit.", "x" * 30, "Rosatom builds a plant!"])]
    dup.write_text("\n".join(lines + ["{not json"]) + "\n")
    inputs = [*DUMPS, dup]
    one = tag(inputs, tmp_path / "one.parquet", model_dir=model_dir, batch_size=batch_size, jobs=1)
    two = tag(inputs, tmp_path / "two.parquet", model_dir=model_dir, batch_size=batch_size, jobs=2)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "one.parquet"), pd.read_parquet(tmp_path / "two.parquet"))
    assert [s.reason for s in one.skipped] == [s.reason for s in two.skipped] and one.skipped
    assert one.status == two.status


@pytest.mark.slow
def test_worker_processes_resume_after_kill(model_dir, tmp_path, monkeypatch):
    import classify.tagging.local as T

    monkeypatch.setattr(T, "PART_ROWS", 10)
    full = tmp_path / "full.parquet"
    tag(DUMPS, full, model_dir=model_dir, batch_size=8, jobs=1)
    out = tmp_path / "resumed.parquet"
    tag(DUMPS, out, model_dir=model_dir, batch_size=8, stop_after=40, jobs=2)
    tag(DUMPS, out, model_dir=model_dir, batch_size=8, resume=True, jobs=2)
    pd.testing.assert_frame_equal(pd.read_parquet(full), pd.read_parquet(out))


def test_bad_jobs_value(model_dir, tmp_path, capsys):
    code = main([str(DUMPS[0]), "-o", str(tmp_path / "t.parquet"), "--model", str(model_dir), "--jobs", "0", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "'jobs'" in err and "\n" not in err


def test_default_jobs_and_runtime():
    """Workers only where they pay (measured in classify.bench); ONNX Runtime only for a transformer."""
    from classify.errors import ConfigError
    from classify.learners.transformer.onnxrt import native_bf16, onnx_available, resolve_runtime
    from classify.tagging.parallel import PARALLEL_MIN_BYTES, _cores, auto_jobs

    assert auto_jobs("baseline", PARALLEL_MIN_BYTES - 1) == 1
    assert auto_jobs("baseline", PARALLEL_MIN_BYTES) == max(1, min(4, _cores()))
    assert auto_jobs("transformer", 10 * PARALLEL_MIN_BYTES) == 1
    assert resolve_runtime("auto", "baseline") == "torch"
    assert resolve_runtime("auto", "transformer") == ("onnx" if onnx_available() else "torch")
    assert resolve_runtime("torch", "transformer") == "torch"
    with pytest.raises(ConfigError, match="for transformer models"):
        resolve_runtime("onnx", "baseline")
    if native_bf16():
        assert resolve_runtime("bf16", "transformer") == "bf16"
        with pytest.raises(ConfigError, match="--runtime bf16 is for transformer models"):
            resolve_runtime("bf16", "baseline")
    with pytest.raises(ConfigError, match="must be one of"):
        resolve_runtime("cuda", "transformer")


def test_resume_with_workers_drops_written_posts_before_the_workers():
    """``skip_written``: the raw items after the first n posts, counted as the serial path counts rows."""
    from classify.errors import ConfigError
    from classify.io.formats import read_file
    from classify.io.options import ReadOptions
    from classify.io.posts import iter_posts
    from classify.tagging.parallel import skip_written

    opts = ReadOptions()
    raw = [it for p in DUMPS for it in read_file(p, opts)]
    posts = list(iter_posts(DUMPS, opts))
    n = 30
    skipped: list = []
    rest = list(skip_written(raw, opts, n, posts[n - 1]["post_id"], skipped, "changed"))
    tail = [it for it in rest if hasattr(it, "text")]
    assert [it.locator for it in tail] == [p["locator"] for p in posts[n:]]
    with pytest.raises(ConfigError, match="changed"):
        list(skip_written(raw, opts, n, posts[n]["post_id"], [], "changed"))
    assert list(skip_written(raw, opts, 0, None, [], "")) == raw
