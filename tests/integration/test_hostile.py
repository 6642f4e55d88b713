"""The adversarial suite of issue 23: what a hostile but fair user tries on ingest, tag and model loading.

Bad encodings, crafted cells, empty inputs, file modes, ``-o`` mistakes, tampered model folders,
concurrent runs on one output, kills with worker processes, export folders. Every case ends in a
one-line error with a non-zero exit, or in rows; never in an internal error.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from classify.ingest import main as ingest_main
from classify.io.inputs import expand_inputs
from classify.io.posts import ingest
from classify.tag import main as tag_main
from classify.tagging.local import tag
from classify.tagging.lock import OutputLock
from classify.tagging.rows import OUTPUT_COLUMNS, read_tags

ROOT = Path(__file__).resolve().parents[2]
DUMPS = sorted((ROOT / "data" / "dumps").glob("*.txt"))
EXPORT = ROOT / "tests" / "fixtures" / "ingest" / "tdesktop_single.json"




def run_tag(args: list, capsys) -> tuple[int, str]:
    code = tag_main([*map(str, args), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert "internal error" not in err and "Traceback" not in err, err
    return code, err


def one_line_error(err: str) -> bool:
    return err.startswith("error: ") and "\n" not in err


def jsonl_posts(path: Path, n: int, tag_: str = "") -> Path:
    texts = ["BRICS summit in Kazan welcomed new partners.", "Rosatom will build a nuclear power plant.",
             "The Kiev regime shelled civilians again.", "Illegal unilateral sanctions hurt the poor."]
    path.write_text("".join(json.dumps({"id": f"{tag_}{i}", "text": f"{texts[i % 4]}\n{tag_} post {i}"}) + "\n" for i in range(n)))
    return path


# --------------------------------------------------------------------------- 1. concurrent runs on one -o
def test_a_second_run_on_a_locked_output_refuses_at_once(model_dir, tmp_path, capsys):
    out = tmp_path / "tags.parquet"
    with OutputLock(out):  # as a run in progress holds it
        start = time.perf_counter()
        code, err = run_tag([DUMPS[0], "-o", out, "--model", model_dir], capsys)
        assert time.perf_counter() - start < 2
    assert code == 2 and one_line_error(err) and f"pid {os.getpid()}" in err and "started" in err, err
    assert not out.exists() and not (tmp_path / "tags.parquet.parts").exists()


def test_a_stale_lock_is_reported_and_taken_over(model_dir, tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "tags.parquet"
    info = {"pid": dead.pid, "host": os.uname().nodename, "pid_start": 1, "started": "2026-01-01T00:00:00+0000"}
    (tmp_path / "tags.parquet.lock").write_text(json.dumps(info))
    code, err = run_tag([DUMPS[0], "-o", out, "--model", model_dir], capsys)
    assert code == 0 and "stale lock" in err and str(dead.pid) in err
    assert out.exists() and not (tmp_path / "tags.parquet.lock").exists()


@pytest.mark.slow
def test_two_concurrent_runs_do_not_mix_rows(model_dir, tmp_path, capsys):
    """The issue's reproduction: run A in a process, run B on the same -o while A holds it."""
    a, b = jsonl_posts(tmp_path / "A.jsonl", 3000, "A"), jsonl_posts(tmp_path / "B.jsonl", 50, "B")
    out = tmp_path / "C.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "classify.tag", str(a), "-o", str(out), "--model", str(model_dir),
                             "--jobs", "1", "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "C.jsonl.lock"
    deadline = time.monotonic() + 60
    while not lock.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lock.exists(), proc.communicate()
    code, err = run_tag([b, "-o", out, "--model", model_dir, "--jobs", "1"], capsys)
    _, a_err = proc.communicate(timeout=120)
    assert code == 2 and "another run" in err and str(proc.pid) in err, err
    assert proc.returncode == 0, a_err
    assert set(read_tags(out)["source"]) == {"A.jsonl"} and len(read_tags(out)) == 3000


# --------------------------------------------------------------------------- 2. UTF-16 exports
@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig"])
def test_a_export_resaved_with_a_byte_order_mark_gives_the_same_rows(tmp_path, encoding):
    resaved = tmp_path / EXPORT.name  # the same name: a media-only post's id is made from it
    resaved.write_bytes(EXPORT.read_text(encoding="utf-8").encode(encoding))
    want, got = ingest([EXPORT]), ingest([resaved])
    assert len(got) == len(want) > 0
    pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_named_not_called_binary(model_dir, tmp_path, capsys, encoding):
    for name in ("result.json", "posts.jsonl"):
        src = tmp_path / name
        src.write_bytes((EXPORT.read_text(encoding="utf-8") if name.endswith(".json") else
                         '{"id": 1, "text": "BRICS"}\n{"id": 2, "text": "Rosatom"}\n').encode(encoding))
        code, err = run_tag([src, "-o", tmp_path / "t.parquet", "--model", model_dir], capsys)
        assert code == 3 and one_line_error(err) and encoding.upper() in err and "binary" not in err, err
        assert f"--encoding {encoding}" in err
    code, _ = run_tag([tmp_path / "result.json", "-o", tmp_path / "t.parquet", "--model", model_dir, "--encoding", encoding], capsys)
    assert code == 0 and len(read_tags(tmp_path / "t.parquet")) == len(ingest([EXPORT]))


# --------------------------------------------------------------------------- 3. output formats
def _strict(line: str) -> dict:
    def refuse(const):
        raise ValueError(f"non-standard JSON constant {const}")

    return json.loads(line, parse_constant=refuse)


@pytest.fixture(scope="module")
def outputs(model_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("outputs")
    for ext in ("parquet", "csv", "jsonl"):
        tag(DUMPS, d / f"tags.{ext}", model_dir=model_dir)
    return d


def test_jsonl_output_is_strict_json_with_null(outputs):
    lines = (outputs / "tags.jsonl").read_text(encoding="utf-8").splitlines()
    recs = [_strict(line) for line in lines]
    assert len(recs) == 71 and sum(r["message_id"] is None for r in recs) > 0
    assert all(list(r) == list(OUTPUT_COLUMNS) for r in recs)


def test_every_format_reads_back_identically(outputs):
    pq_, csv_, jl = (read_tags(outputs / f"tags.{e}") for e in ("parquet", "csv", "jsonl"))
    pd.testing.assert_frame_equal(pq_, csv_)
    pd.testing.assert_frame_equal(pq_, jl)
    ok = pq_[pq_["status"] == "ok"].iloc[0]
    assert isinstance(ok["topics"], list) and isinstance(ok["scores"], dict) and isinstance(ok["evidence"], dict)
    assert pq_.loc[pq_["status"] != "ok", "scores"].tolist()[0] == {}


def test_parquet_has_native_nested_types(outputs):
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(outputs / "tags.parquet")
    assert schema.field("topics").type == pa.list_(pa.string()) and schema.field("frames").type == pa.list_(pa.string())
    assert pa.types.is_map(schema.field("scores").type) and pa.types.is_map(schema.field("stance_scores").type)
    ev = schema.field("evidence").type
    assert pa.types.is_list(ev) and pa.types.is_struct(ev.value_type)
    df = pd.read_parquet(outputs / "tags.parquet")
    assert list(df["topics"].iloc[0]) == read_tags(outputs / "tags.parquet")["topics"].iloc[0]


def test_polars_and_duckdb_read_the_nested_columns(outputs):
    path = str(outputs / "tags.parquet")
    pl = pytest.importorskip("polars")
    frame = pl.read_parquet(path)
    assert frame.schema["topics"] == pl.List(pl.String) and isinstance(frame.schema["evidence"], pl.List)
    duckdb = pytest.importorskip("duckdb")
    types = duckdb.sql(f"select typeof(topics), typeof(scores), typeof(evidence) from '{path}' limit 1").fetchall()[0]
    assert types[0] == "VARCHAR[]" and types[1].startswith("MAP(VARCHAR, DOUBLE)") and types[2].startswith("STRUCT(")


# --------------------------------------------------------------------------- 4. invisible characters (done in cleaning)
def test_invisible_characters_change_neither_id_nor_labels(model_dir, tmp_path):
    plain = "Western sanctions against Russia are illegitimate.\nRussia supports a multipolar world order."
    hidden = "West\u00adern sanc\u200btions against Rus\u200dsia are il\u2060legitimate.\nRussia supports a \u2066multi\u200cpolar\u2069 world order."
    src = tmp_path / "p.jsonl"
    src.write_text(json.dumps({"id": 1, "text": plain}) + "\n" + json.dumps({"id": 2, "text": hidden}) + "\n")
    tag([src], tmp_path / "t.jsonl", model_dir=model_dir)
    a, b = read_tags(tmp_path / "t.jsonl").to_dict("records")
    assert a["post_id"] == b["post_id"] and a["topics"] == b["topics"] and a["frames"] == b["frames"]


# --------------------------------------------------------------------------- 5. crafted cells
def test_a_reactions_cell_nested_thousands_deep_is_counted_not_fatal(tmp_path, capsys):
    deep = "[" * 4000 + "]" * 4000
    src = tmp_path / "deep.csv"
    with src.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerows([["id", "text", "reactions"], [1, "Russia and BRICS.", deep], [2, "Another post.", '{"x": 3}']])
    df = ingest([src])
    assert len(df) == 2 and df["reactions"].tolist() == [{}, {"x": 3}]
    jl = tmp_path / "deep.jsonl"
    jl.write_text(json.dumps({"id": 1, "text": "a", "reactions": deep}) + "\n" + "[" * 100000 + "\n")
    assert ingest_main([str(jl)]) == 0
    assert "1 posts" in capsys.readouterr().out


# --------------------------------------------------------------------------- 6. kill and resume with workers
def _children(pid: int) -> list[int]:
    out = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat_file.parent.name))
    return out


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(p)
    return alive


def _start_and_kill(model_dir: Path, inputs: list[Path], out: Path, sig: int) -> tuple[subprocess.Popen, list[int], str]:
    """Start ``tag --jobs 2`` with its progress bar on stderr; send ``sig`` once rows are coming back."""
    proc = subprocess.Popen([sys.executable, "-m", "classify.tag", *map(str, inputs), "-o", str(out), "--model", str(model_dir),
                             "--jobs", "2", "--batch-size", "32"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = bytearray()
    reader = threading.Thread(target=lambda: [err.extend(chunk) for chunk in iter(lambda: os.read(proc.stderr.fileno(), 4096), b"")],
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None and not re.search(rb"[1-9]\d* posts", bytes(err)):
        time.sleep(0.05)
    kids = _children(proc.pid)
    assert proc.poll() is None, "the run ended before the kill; give it more input"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    reader.join(5)
    return proc, kids, bytes(err).decode(errors="replace")


def _gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _alive(pids)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killing_tag_with_workers_stops_them_and_resume_completes(model_dir, tmp_path, sig):
    inputs = [jsonl_posts(tmp_path / "A.jsonl", 8000, "A")]
    out = tmp_path / "tags.parquet"
    proc, kids, err = _start_and_kill(model_dir, inputs, out, sig)
    assert len(kids) >= 2
    try:
        assert _gone_within(kids, 5), f"worker processes left running: {_alive(kids)}"
    finally:
        for p in _alive(kids):
            os.kill(p, signal.SIGKILL)
    if sig == signal.SIGTERM:
        assert proc.returncode == 143 and "rows kept in" in err and "--resume" in err and "Traceback" not in err, err
    assert not out.exists() and out.with_name("tags.parquet.parts").is_dir()
    summary = tag(inputs, out, model_dir=model_dir, batch_size=32, resume=True, jobs=1)
    assert summary.n_posts == 8000
    if sig == signal.SIGTERM:
        assert summary.n_resumed > 0
    tag(inputs, tmp_path / "full.parquet", model_dir=model_dir, batch_size=32, jobs=1)
    pd.testing.assert_frame_equal(read_tags(out), read_tags(tmp_path / "full.parquet"))


# --------------------------------------------------------------------------- 7. no post at all
@pytest.mark.parametrize("content, name", [("id,text\n", "empty.csv"), ("[]", "empty.json"), ('{"messages": []}', "result.json")])
@pytest.mark.parametrize("ext", ["parquet", "csv", "jsonl"])
def test_ingest_and_tag_with_no_post_write_an_empty_output(model_dir, tmp_path, capsys, content, name, ext):
    src = tmp_path / name
    src.write_text(content)
    assert ingest_main([str(src), "-o", str(tmp_path / f"corpus.{ext}")]) == 0
    captured = capsys.readouterr()
    assert "total: 0 input items" in captured.out and "internal error" not in captured.err
    assert (tmp_path / f"corpus.{ext}").exists()
    code, _ = run_tag([src, "-o", tmp_path / f"tags.{ext}", "--model", model_dir], capsys)
    assert code == 0 and len(read_tags(tmp_path / f"tags.{ext}")) == 0


# --------------------------------------------------------------------------- 8. file modes
def test_outputs_respect_the_umask(model_dir, tmp_path):
    old = os.umask(0o022)
    try:
        for i in range(2):  # a new file, then one overwritten
            assert ingest_main([str(DUMPS[0]), "-o", str(tmp_path / "corpus.parquet")]) == 0
            tag(DUMPS[:1], tmp_path / "tags.jsonl", model_dir=model_dir)
            for f in ("corpus.parquet", "tags.jsonl"):
                assert stat.S_IMODE((tmp_path / f).stat().st_mode) == 0o644, (f, i)
        os.umask(0o027)
        tag(DUMPS[:1], tmp_path / "tags.jsonl", model_dir=model_dir)
        assert stat.S_IMODE((tmp_path / "tags.jsonl").stat().st_mode) == 0o640
    finally:
        os.umask(old)


# --------------------------------------------------------------------------- 9. -o safety
def test_output_equal_to_an_input_is_refused_and_the_input_kept(model_dir, tmp_path, capsys):
    src = jsonl_posts(tmp_path / "posts.jsonl", 5)
    before = src.read_bytes()
    code, err = run_tag([src, "-o", tmp_path / "." / "posts.jsonl", "--model", model_dir], capsys)
    assert code == 2 and one_line_error(err) and "is also an input" in err
    assert ingest_main([str(src), "-o", str(src)]) == 2
    assert src.read_bytes() == before


def test_output_checks_come_before_any_work(tmp_path, capsys):
    (tmp_path / "out.parquet").mkdir()
    for out in (tmp_path / "out.parquet", tmp_path / "out.txt"):
        code, err = run_tag([DUMPS[0], "-o", out, "--model", tmp_path / "no-model"], capsys)  # the model would fail later
        assert code == 2 and one_line_error(err) and str(out) in err and "model" not in err, err
    code = ingest_main([str(DUMPS[0]), "-o", str(tmp_path / "out.parquet")])
    assert code == 2 and "is a directory" in capsys.readouterr().err


def test_a_failed_run_leaves_no_parts_and_no_lock(model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"messages": [')  # truncated export, read after the good dump
    out = tmp_path / "t.parquet"
    code, err = run_tag([*DUMPS, bad, "-o", out, "--model", model_dir], capsys)
    assert code == 3 and one_line_error(err) and str(bad) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


# --------------------------------------------------------------------------- 10. tampered model folders
def _edit_card(d: Path, **changes) -> None:
    card = json.loads((d / "card.json").read_text())
    for k, v in changes.items():
        if k.startswith("threshold_"):
            card["thresholds"][k.removeprefix("threshold_")] = v
        else:
            card[k] = v
    (d / "card.json").write_text(json.dumps(card))


def _edit_weights(d: Path, name: str, change) -> None:
    from safetensors.numpy import load_file, save_file

    w = load_file(str(d / "weights.safetensors"))
    w[name] = change(w[name].copy())
    save_file(w, str(d / "weights.safetensors"))


def _nan_at_0(a):
    a.flat[0] = np.nan
    return a


TAMPERED = {
    "threshold string": (lambda d: _edit_card(d, threshold_topics="0.5"), "is not a number in [0, 1]"),
    "threshold above 1": (lambda d: _edit_card(d, threshold_frames=7.0), "is not a number in [0, 1]"),
    "threshold negative": (lambda d: _edit_card(d, threshold_topics=-0.1), "is not a number in [0, 1]"),
    "threshold per label, one missing": (lambda d: _edit_card(d, threshold_frames={"cyber": 0.5}), "exactly the codebook's frames"),
    "kind a list": (lambda d: _edit_card(d, kind=["baseline"]), "'kind' is ['baseline']"),
    "kind disagrees with files": (lambda d: _edit_card(d, kind="cue_rule"), "holds a baseline model's weights.safetensors"),
    "truncated intercept": (lambda d: _edit_weights(d, "intercept", lambda a: a[:3]), "'intercept' has shape (3,)"),
    "truncated idf": (lambda d: _edit_weights(d, "idf_char", lambda a: a[:10]), "'idf_char' has shape (10,)"),
    "NaN weight": (lambda d: _edit_weights(d, "coef", _nan_at_0), "non-finite"),
    "inf intercept": (lambda d: _edit_weights(d, "stance_intercept", lambda a: a + np.inf), "non-finite"),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_tampered_model_folders_give_one_line_model_errors(model_dir, tmp_path, capsys, case):
    edit, message = TAMPERED[case]
    bad = tmp_path / "model"
    shutil.copytree(model_dir, bad)
    edit(bad)
    code, err = run_tag([DUMPS[0], "-o", tmp_path / "t.jsonl", "--model", bad], capsys)
    assert code == 4 and one_line_error(err) and message in err and str(bad) in err, err
    assert not (tmp_path / "t.jsonl").exists()


@pytest.mark.parametrize("name", ["../elsewhere", "/tmp", "baseline/../../x", ["baseline"]])
def test_best_json_may_only_name_a_model_inside_models(tmp_path, name):
    from classify.errors import ModelError
    from classify.learners import default_model_dir

    models = tmp_path / "models"
    (tmp_path / "elsewhere").mkdir()
    models.mkdir()
    (models / "best.json").write_text(json.dumps({"best": name}))
    with pytest.raises(ModelError, match="must name a model folder inside"):
        default_model_dir(models)
    (models / "baseline").mkdir()
    (models / "best.json").write_text(json.dumps({"best": "baseline"}))
    assert default_model_dir(models) == models / "baseline"


# --------------------------------------------------------------------------- 11. export folders
def _desktop_export(tmp_path: Path) -> Path:
    folder = tmp_path / "ChatExport_2024-05-01"
    (folder / "photos").mkdir(parents=True)
    shutil.copy(EXPORT, folder / "result.json")
    (folder / "messages.html").write_text("<html><body><div class='message'>Not a dump</div></body></html>")
    (folder / "photos" / "photo_1@01-05-2024.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200))
    (folder / "README.md").write_text("# notes\n")
    return folder


def test_a_desktop_export_folder_expands_to_its_dump(model_dir, tmp_path):
    folder = _desktop_export(tmp_path)
    assert expand_inputs([folder]) == [folder / "result.json"]
    tag([folder], tmp_path / "t.parquet", model_dir=model_dir)
    assert read_tags(tmp_path / "t.parquet")["post_id"].tolist() == ingest([folder / "result.json"])["post_id"].tolist()


@pytest.mark.slow
def test_the_ray_engine_expands_an_export_folder_the_same_way(model_dir, tmp_path):
    pytest.importorskip("ray.data")
    from classify.tagging.ray_engine import tag_ray

    folder = _desktop_export(tmp_path)
    tag_ray([folder], tmp_path / "ray", model_dir=model_dir, workers=1)
    assert read_tags(tmp_path / "ray")["post_id"].tolist() == ingest([folder / "result.json"])["post_id"].tolist()


# --------------------------------------------------------------------------- 12. smaller ones
def test_summary_after_resume_counts_every_row(model_dir, tmp_path, monkeypatch):
    import classify.tagging.local as T

    monkeypatch.setattr(T, "PART_ROWS", 10)
    full = tag(DUMPS, tmp_path / "full.parquet", model_dir=model_dir, batch_size=8)
    tag(DUMPS, tmp_path / "r.parquet", model_dir=model_dir, batch_size=8, stop_after=40)
    resumed = tag(DUMPS, tmp_path / "r.parquet", model_dir=model_dir, batch_size=8, resume=True)
    assert resumed.n_resumed == 40
    assert (resumed.status, resumed.labels, resumed.stance) == (full.status, full.labels, full.stance)


@pytest.mark.parametrize("content", [b"\xff\xfe{\x00}\x00", b'{"post_id": "x", "text": "\xe9t\xe9"}\n', None])
def test_labels_validate_on_a_non_utf8_gold_file_or_a_directory(tmp_path, capsys, content):
    from classify.labels import main as labels_main

    gold = tmp_path / "gold.jsonl"
    if content is None:
        gold.mkdir()
    else:
        gold.write_bytes(content)
    assert labels_main(["validate", "--gold", str(gold)]) == 3
    err = capsys.readouterr().err.strip()
    assert one_line_error(err) and str(gold) in err, err


def test_nul_bytes_after_the_first_8_kb_are_not_kept_in_the_text(tmp_path):
    src = tmp_path / "dump.txt"
    src.write_bytes(("Padding paragraph about diplomacy.\n\n" * 300).encode() + b"BRICS sum\x00mit in Kazan.\n")
    assert src.stat().st_size > 8192
    assert not any("\x00" in t for t in ingest([src])["text"])


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.slow
def test_an_over_long_post_gets_a_too_long_row_and_its_locator_in_the_summary(model_dir, tmp_path, capsys, jobs):
    src = tmp_path / "posts.jsonl"
    texts = ["BRICS summit in Kazan.", "word " * 20_001, "Rosatom will build a plant."]
    src.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts)))
    code = tag_main([*map(str, [src, "-o", tmp_path / "out.parquet", "--model", model_dir, "--jobs", jobs]), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = read_tags(tmp_path / "out.parquet")
    assert rows["status"].tolist() == ["ok", "too_long", "ok"]
    assert rows.loc[1, "topics"] == [] and rows["post_id"].is_unique
    summary = out + err
    assert "too_long 1" in summary and "posts.jsonl:line 2" in summary, summary
    assert len(ingest([src])) == 2  # training and labelling still leave it out, reported as skipped
