"""The transformer's network: windows of token ids, frozen hidden states, packing and the forward pass.

A post is a list of paragraphs; a paragraph is one or more windows of at most ``max_length`` tokens.
The lower layers are frozen and computed once per distinct paragraph (cached for the process), the
top layers and the heads are trained. Torch is imported lazily, so tagging with the baseline never
loads it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .encoder import ENCODER_PREFIX

THREADS_ENV = "CLASSIFY_THREADS"
"""Torch threads per process; ``classify.tagging.parallel`` sets it so that worker processes share the cores."""
_CACHE: dict[tuple, Any] = {}


def clear_cache() -> None:
    """Forget the loaded encoders and cached frozen states (benchmarks time a cold start with it)."""
    _CACHE.clear()


def load_encoder_cached(path) -> tuple[Any, Any]:
    """Tokenizer and encoder of a local folder, loaded once per process (folds and models share them)."""
    from transformers import AutoModel

    from .encoder import load_tokenizer

    key = ("enc", str(path.resolve()))
    if key not in _CACHE:
        mdl = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True, add_pooling_layer=False)
        mdl.eval()
        _CACHE[key] = (load_tokenizer(path), mdl)
    return _CACHE[key]


def torch_module():
    """``torch``, with this process's thread count set (``$CLASSIFY_THREADS``, else up to 2)."""
    import torch

    torch.set_num_threads(int(os.environ.get(THREADS_ENV) or max(1, min(2, os.cpu_count() or 1))))
    return torch


def encoder_flops(config: Any):
    """FLOPs of one window of ``L`` tokens through a BERT-style encoder (multiply-add = 2 FLOPs).

    Per layer and token: Q, K, V and output projections ``8 h^2``, feed-forward ``4 h f``; attention
    scores and weighted values ``4 L h`` per token. Embeddings, layer norms, softmax and the heads
    are left out (a few percent), so the achieved rate computed from this is a lower bound.
    """
    h, f, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers

    def flops(L: int) -> float:
        return float(n * (L * (8 * h * h + 4 * h * f) + 4 * L * L * h))

    return flops


def build_net(top_layers, hidden: int, n_cues: int, n_labels: int, n_stances: int):
    """The trainable part: the top encoder layers and the heads (torch imported only here)."""
    torch = torch_module()
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList(top_layers)
            self.label_head = nn.Linear(hidden + n_cues, n_labels)
            self.stance_head = nn.Linear(hidden + n_cues, n_stances)

        def embed(self, h, mask):
            ext = (1.0 - mask[:, None, None, :].to(h.dtype)) * torch.finfo(h.dtype).min
            for layer in self.layers:
                out = layer(h, attention_mask=ext)
                h = out[0] if isinstance(out, tuple) else out
            m = mask.unsqueeze(-1).to(h.dtype)
            return (h * m).sum(1) / m.sum(1).clamp(min=1.0)

    return Net()


def windows(tok, texts: list[str], max_length: int) -> list[list[list[int]]]:
    """Token ids of each text, cut into windows of at most ``max_length`` tokens (one batched,
    Rust-side tokenizer call for all texts)."""
    if not texts:
        return []
    all_ids = tok([ENCODER_PREFIX + t for t in texts], add_special_tokens=False)["input_ids"]
    n = max_length - 2
    cls, sep = tok.cls_token_id, tok.sep_token_id
    return [[[cls, *c, sep] for c in ([ids[k : k + n] for k in range(0, max(len(ids), 1), n)] or [[]])] for ids in all_ids]


def frozen_states(texts: list[str], tok, mdl, n_frozen: int, encoder_path: str, max_length: int,
                  batch_size: int) -> list[tuple[Any, Any]]:
    """Hidden states after the frozen layers for every window of each text (cached)."""
    torch = torch_module()
    out: list[Any] = [None] * len(texts)
    todo = []
    for i, t in enumerate(texts):
        key = ("h", encoder_path, n_frozen, max_length, t)
        if key in _CACHE:
            out[i] = _CACHE[key]
        else:
            todo.append(i)
    items = [(i, w) for i, ws in zip(todo, windows(tok, [texts[i] for i in todo], max_length)) for w in ws]
    items.sort(key=lambda x: len(x[1]))  # length bucketing: little padding per batch
    parts: dict[int, list] = {i: [] for i in todo}
    pad = tok.pad_token_id or 0
    with torch.inference_mode():
        for b in range(0, len(items), batch_size):
            chunk = items[b : b + batch_size]
            L = max(len(w) for _, w in chunk)
            ids = torch.full((len(chunk), L), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), L), dtype=torch.long)
            for r, (_, w) in enumerate(chunk):
                ids[r, : len(w)] = torch.tensor(w)
                mask[r, : len(w)] = 1
            h = mdl.embeddings(input_ids=ids)
            ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
            for layer in mdl.encoder.layer[:n_frozen]:
                o = layer(h, attention_mask=ext)
                h = o[0] if isinstance(o, tuple) else o
            for r, (i, w) in enumerate(chunk):
                parts[i].append((h[r, : len(w)].clone(), len(w)))
    for i in todo:
        val = parts[i]
        _CACHE[("h", encoder_path, n_frozen, max_length, texts[i])] = val
        out[i] = val
    return out


def pack_windows(paragraphs: list[list[str]], frozen_by_text: dict[str, list], cue_by_text: dict[str, np.ndarray]):
    """All windows of all posts in one padded tensor, with window -> paragraph -> post maps."""
    torch = torch_module()
    wins, win_para, para_post, cues = [], [], [], []
    for i, paras in enumerate(paragraphs):
        for p in paras:
            for h, n in frozen_by_text[p]:
                wins.append((h, n))
                win_para.append(len(para_post))
                cues.append(cue_by_text[p])
            para_post.append(i)
    L = max(n for _, n in wins)
    H = torch.zeros((len(wins), L, wins[0][0].shape[-1]))
    M = torch.zeros((len(wins), L), dtype=torch.long)
    for r, (h, n) in enumerate(wins):
        H[r, :n] = h
        M[r, :n] = 1
    return {"H": H, "M": M, "win_para": torch.tensor(win_para), "para_post": torch.tensor(para_post),
            "cues": torch.tensor(np.array(cues), dtype=torch.float32), "n_posts": len(paragraphs)}


def select(pack: dict, posts: np.ndarray) -> dict:
    """The sub-pack of some posts (renumbered), for a mini-batch; ``para_index`` holds the kept
    paragraphs' rows in ``pack``. Masks over the whole pack, so a step costs no Python loop over it."""
    torch = torch_module()
    para_post, win_para = pack["para_post"].numpy(), pack["win_para"].numpy()
    slot = np.full(pack["n_posts"], -1)
    slot[posts] = np.arange(len(posts))
    para_in = slot[para_post] >= 0
    para_keep = np.flatnonzero(para_in)
    win_keep = np.flatnonzero(para_in[win_para])
    idx = torch.from_numpy(win_keep)
    para_rank = np.cumsum(para_in) - 1  # new number of each kept paragraph
    return {"H": pack["H"][idx], "M": pack["M"][idx],
            "win_para": torch.from_numpy(para_rank[win_para[win_keep]]),
            "para_post": torch.from_numpy(slot[para_post[para_keep]]),
            "para_index": torch.from_numpy(para_keep), "cues": pack["cues"][idx], "n_posts": len(posts)}


def embed_windows(net, pack: dict):
    """Pooled output of the trainable layers for every window of a pack, in pack order.

    Length bucketing: windows sorted by length, run in chunks padded only to their own longest
    window (most paragraphs are far shorter than max_length)."""
    torch = torch_module()
    lengths = pack["M"].sum(1)
    order = torch.argsort(lengths)
    parts = []
    for b in range(0, len(order), 32):
        idx = order[b : b + 32]
        L = int(lengths[idx].max())
        parts.append(net.embed(pack["H"][idx, :L], pack["M"][idx, :L]))
    e = torch.empty((len(order), parts[0].shape[1]), dtype=parts[0].dtype)
    e[order] = torch.cat(parts)
    return e


def forward(net, pack: dict, use_cues: bool):
    """Window logits -> paragraph logits (max over windows) -> post logits (max over paragraphs);
    stance from the mean window representation of each post."""
    torch = torch_module()
    e = embed_windows(net, pack)
    z = torch.cat([e, pack["cues"]], dim=1) if use_cues else e
    win_logits = net.label_head(z)
    n_para = len(pack["para_post"])
    C = win_logits.shape[1]
    para_logits = torch.full((n_para, C), -1e9).scatter_reduce(
        0, pack["win_para"][:, None].expand(-1, C), win_logits, reduce="amax", include_self=True)
    post_logits = torch.full((pack["n_posts"], C), -1e9).scatter_reduce(
        0, pack["para_post"][:, None].expand(-1, C), para_logits, reduce="amax", include_self=True)
    win_post = pack["para_post"][pack["win_para"]]
    sums = torch.zeros((pack["n_posts"], z.shape[1])).index_add(0, win_post, z)
    counts = torch.zeros(pack["n_posts"]).index_add(0, win_post, torch.ones(len(win_post)))
    stance_logits = net.stance_head(sums / counts.clamp(min=1)[:, None])
    return post_logits, para_logits, stance_logits
