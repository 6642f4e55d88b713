"""`python -m classify.bench --quick` runs end to end (and fast) and writes its JSON."""

import json
import time

import pytest

from classify.bench import main
from classify.learners.baseline.model import BaselineConfig, BaselineModel


@pytest.mark.slow
def test_quick_bench_writes_json_and_table(tmp_path, capsys, monkeypatch):
    from conftest import make_gold

    monkeypatch.chdir(tmp_path.parent)  # the bench reads data/dumps relative to the repo
    import classify.bench as B

    monkeypatch.setattr(B, "SAMPLE_DUMPS", __import__("pathlib").Path(__file__).resolve().parents[2] / "data" / "dumps")
    g = make_gold()
    BaselineModel(BaselineConfig(threshold_folds=0)).fit(g, g).save(tmp_path / "models" / "baseline")
    out = tmp_path / "bench.json"
    t = time.perf_counter()
    code = main(["--quick", "--models", str(tmp_path / "models"), "--out", str(out)])
    assert code == 0
    assert time.perf_counter() - t < 60
    res = json.loads(out.read_text())
    assert res["quick"] is True and res["machine"]["matmul_gflops_fp32"] > 0
    assert res["tag"]["baseline"]["1000"]["posts_per_s"]["median"] > 0
    assert res["ingest"]["1000"]["peak_rss_mb"]["median"] > 0
    assert "tag baseline" in capsys.readouterr().out


@pytest.mark.slow
def test_plain_pipeline_reference_gives_the_tags_probabilities(tiny_encoder, tmp_path):
    """The bench's plain ``transformers`` loop must compute what ``classify.tag`` computes (heads, TF-IDF
    frame blend, topics from the cues), or its speed-up compares different work: on posts whose
    paragraphs fit one window the probabilities agree."""
    from pathlib import Path

    from conftest import make_gold

    from classify.bench import bench_pipeline
    from classify.learners.transformer.config import TransformerConfig
    from classify.learners.transformer.model import TransformerModel

    g = make_gold()
    out = tmp_path / "transformer"
    TransformerModel(TransformerConfig(encoder=str(tiny_encoder), epochs=2, threshold_folds=0)).fit(g, g).save(out)
    dumps = sorted((Path(__file__).resolve().parents[2] / "data" / "dumps").glob("*"))[:2]
    res = bench_pipeline(out, dumps, cache_dir=tmp_path / "cache")
    assert res["n_compared"] > 0 and res["n_one_window"] > 0
    assert res["max_abs_diff_one_window"] < 1e-4, res
