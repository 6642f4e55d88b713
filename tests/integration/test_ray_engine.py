"""The Ray Data engine: the local engine's rows, complete after a worker crash, clear errors.

Skipped when Ray is not installed (``pip install -e '.[ray]'``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]'); the Ray engine tests need it")
pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install -e '.[ray]'); the Ray engine tests need it")

import pyarrow.parquet as pq  # noqa: E402

from classify.errors import ConfigError, InputError, ModelError  # noqa: E402
from classify.io.options import ReadOptions  # noqa: E402
from classify.io.posts import iter_posts  # noqa: E402
from classify.learners.baseline.model import BaselineConfig, BaselineModel  # noqa: E402
from classify.tag import main  # noqa: E402
from classify.tagging.local import tag  # noqa: E402
from classify.tagging.ray_engine import (  # noqa: E402
    FAIL_ONCE_ENV,
    SUCCESS_FILE,
    IncompleteOutputError,
    RaySummary,
    _classify_cause,
    check_output,
    expand_inputs,
    finish_posts,
    post_blocks,
    read_output,
    tag_ray,
)
from classify.tagging.rows import OUTPUT_COLUMNS, read_tags, to_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DUMPS = sorted((ROOT / "data" / "dumps").glob("*.txt"))
N_POSTS = 71  # the ingest's count for the five sample dumps (README)
EXACT = ("post_id", "message_id", "source", "locator", "date", "channel", "lang", "topics", "frames", "stance_west",
         "evidence", "status")


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def baseline_dir(tmp_path_factory):
    from conftest import make_gold

    gold = make_gold()
    out = tmp_path_factory.mktemp("baseline") / "baseline"
    BaselineModel(BaselineConfig(threshold_folds=0)).fit(gold[["paragraphs"]], gold[["topics", "frames", "stance_west"]]).save(out)
    return out


@pytest.fixture(scope="module")
def transformer_dir(tiny_encoder, tmp_path_factory):
    from conftest import make_gold

    from classify.learners.transformer.config import TransformerConfig
    from classify.learners.transformer.model import TransformerModel

    gold = make_gold()
    out = tmp_path_factory.mktemp("transformer") / "transformer"
    TransformerModel(TransformerConfig(encoder=str(tiny_encoder), epochs=2, threshold_folds=0)).fit(gold, gold).save(out)
    return out


def assert_same_rows(got, want):
    assert list(got.columns) == list(OUTPUT_COLUMNS)
    assert len(got) == len(want) == N_POSTS
    for col in EXACT:
        a = [None if v != v else v for v in got[col]]  # NaN (missing) -> None
        b = [None if v != v else v for v in want[col]]
        assert a == b, col
    for col in ("scores", "stance_scores"):
        for i, (a, b) in enumerate(zip(got[col], want[col])):
            assert a.keys() == b.keys(), (col, i)
            assert np.allclose([a[k] for k in a], [b[k] for k in a], rtol=1e-5, atol=1e-6), (col, i)


@pytest.mark.parametrize("extra, code, message", [
    (["--model", "/nonexistent/model"], 4, "/nonexistent/model: no such model directory"),
    (["--address", "127.0.0.1:9"], 2, "--address 127.0.0.1:9: no Ray cluster answers there"),
    (["--workers", "0"], 2, "'workers' parameter must be an int"),
])
def test_errors_are_one_line(extra, code, message, baseline_dir, tmp_path, capsys):
    """Before the tests that start Ray for the module: these must find no Ray running."""
    assert not ray.is_initialized(), "run this test before the ones using ray_session"
    args = [str(DUMPS[0]), "--engine", "ray", "-o", str(tmp_path / "tags"), "--no-progress"]
    if "--model" not in extra:
        args += ["--model", str(baseline_dir)]
    assert main(args + extra) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err, err
    assert not ray.is_initialized()


@pytest.mark.slow
def test_transformer_same_rows_as_local_engine(transformer_dir, ray_session, tmp_path):
    """The tiny transformer in small batches: every row equals the local engine's. One worker: loading
    torch and transformers takes a worker many seconds; spreading over workers is the baseline test's job."""
    summary = tag_ray(DUMPS, tmp_path / "ray", model_dir=transformer_dir, workers=1, batch_size=4)  # runtime auto: as local
    tag(DUMPS, tmp_path / "local.parquet", model_dir=transformer_dir)
    want = read_tags(tmp_path / "local.parquet")
    assert_same_rows(read_output(tmp_path / "ray"), want)

    out = tmp_path / "ray"
    for f in out.glob("*.parquet"):
        assert pq.read_schema(f).names == list(OUTPUT_COLUMNS)  # exactly the local engine's columns
    assert json.loads((out / SUCCESS_FILE).read_text(encoding="utf-8")) == summary.to_json()
    assert summary.n_posts == N_POSTS and summary.workers == 1 and summary.n_files == len(list(out.glob("*.parquet")))
    assert dict(summary.status) == want["status"].value_counts().to_dict()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "staging left behind"


@pytest.mark.slow
def test_baseline_same_rows_as_local_engine_after_a_worker_crash(baseline_dir, ray_session, tmp_path, monkeypatch, capsys):
    """The baseline through the CLI; a worker dies after writing its first batch (test hook) and the
    batch is rerun: the output is complete, without duplicates, and every row equals the local engine's.
    (One run for both checks: each Ray run costs seconds of worker start-up.)"""
    marker = tmp_path / "crashed"
    monkeypatch.setenv(FAIL_ONCE_ENV, str(marker))
    out = tmp_path / "tags"
    code = main([*map(str, DUMPS), "--engine", "ray", "--workers", "2", "--model", str(baseline_dir), "-o", str(out),
                 "--batch-size", "8", "--no-progress"])
    stdout = capsys.readouterr().out
    assert code == 0
    assert "simulated worker crash" in marker.read_text(), "the fault was not injected"
    assert f"posts: {N_POSTS} rows written" in stdout and "ray: 2 workers, 9 Parquet files" in stdout
    got = read_output(out)
    assert not got.duplicated(["source", "locator"]).any()
    for f in out.glob("*.parquet"):
        assert pq.read_schema(f).names == list(OUTPUT_COLUMNS)
    monkeypatch.delenv(FAIL_ONCE_ENV)
    tag(DUMPS, tmp_path / "local.parquet", model_dir=baseline_dir)
    assert_same_rows(got, read_tags(tmp_path / "local.parquet"))


def test_driver_and_workers_split_the_ingest_exactly():
    """post_blocks (driver) + finish_posts (workers) give the posts iter_posts gives, but for the
    copies whose text differs from their first copy's, which carry that copy's paragraphs."""
    recs = [r for block in post_blocks(DUMPS, ReadOptions(), [], 16) for r in block.to_pylist()]
    assert [r["row"] for r in recs] == list(range(N_POSTS))
    got, want = finish_posts(recs, ReadOptions()), list(iter_posts(DUMPS))
    assert len(got) == len(want) == N_POSTS
    first = {}
    for g, w, r in zip(got, want, recs):
        assert {k: g[k] for k in ("post_id", "source", "locator", "lang", "empty_text", "media", "date")} == \
               {k: w[k] for k in ("post_id", "source", "locator", "lang", "empty_text", "media", "date")}
        first.setdefault(w["post_id"], w["paragraphs"])
        assert g["paragraphs"] == (first[w["post_id"]] if w["paragraphs"] else [])
        assert (r["tag_paragraphs"] is not None) == (g["paragraphs"] != w["paragraphs"])
    assert sum(r["tag_paragraphs"] is not None for r in recs) == 2  # two forwarded copies differ from their first copy


def test_check_output_finds_missing_and_repeated_rows(tmp_path):
    def part(first, n):
        pq.write_table(to_table([{c: "x" for c in OUTPUT_COLUMNS} | {"topics": [], "frames": [], "scores": {}, "stance_scores": {},
                                                                    "evidence": {}, "status": "ok"}] * n),
                       tmp_path / f"part-{first:012d}.parquet")

    part(0, 3)
    part(3, 2)
    assert check_output(tmp_path, 5, RaySummary()) == 2
    with pytest.raises(IncompleteOutputError, match="1 of 6 input rows have no output row"):
        check_output(tmp_path, 6, RaySummary())
    part(4, 2)  # rows 4.. twice
    with pytest.raises(IncompleteOutputError, match="there twice"):
        check_output(tmp_path, 6, RaySummary())


def test_worker_errors_become_classify_errors():
    """Ray hands a worker's exception over as text; the classify error in it is rebuilt for the one-line message."""
    inner = RuntimeError("Traceback ...\n\x1b[36mclassify.errors.ModelError: /m: no such model directory; train one\x1b[0m\n")
    outer = RuntimeError("task failed")
    outer.__cause__ = inner
    cause = _classify_cause(outer)
    assert isinstance(cause, ModelError) and str(cause) == "/m: no such model directory; train one"
    assert _classify_cause(RuntimeError("a bug")) is None


def test_without_ray_local_still_works_and_ray_says_how_to_install(baseline_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main([str(DUMPS[0]), "-o", str(tmp_path / "t.parquet"), "--model", str(baseline_dir), "--no-progress"]) == 0
    capsys.readouterr()
    assert main([str(DUMPS[0]), "--engine", "ray", "-o", str(tmp_path / "tags"), "--model", str(baseline_dir)]) == 2
    assert capsys.readouterr().err.strip() == "error: --engine ray needs Ray: pip install -e '.[ray]'"


@pytest.mark.slow
def test_pool_larger_than_the_local_instance_is_refused(baseline_dir, ray_session, tmp_path, capsys):
    assert main([str(DUMPS[0]), "--engine", "ray", "-o", str(tmp_path / "tags"), "--model", str(baseline_dir),
                 "--gpus-per-worker", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the Ray cluster has 2 CPUs and 0 GPUs; the workers ask for 2 CPUs and 2 GPUs"), err
    assert ray.is_initialized(), "the module's Ray instance was shut down"


def test_inputs_and_output_dir_checks(baseline_dir, tmp_path):
    assert expand_inputs([ROOT / "data" / "dumps"]) == DUMPS
    assert expand_inputs(str(ROOT / "data" / "dumps" / "00[01]_*.txt")) == DUMPS[:2]
    with pytest.raises(InputError, match="no file matches"):
        expand_inputs(str(tmp_path / "*.jsonl"))
    with pytest.raises(InputError, match="no such file"):
        tag_ray([tmp_path / "missing.txt"], tmp_path / "t", model_dir=baseline_dir)
    with pytest.raises(ConfigError, match="directory of Parquet files"):
        tag_ray(DUMPS, tmp_path / "tags.csv", model_dir=baseline_dir)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not the output of an earlier ray run"):
        tag_ray(DUMPS, tmp_path / "mine", model_dir=baseline_dir)
