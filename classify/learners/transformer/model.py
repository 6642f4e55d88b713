"""Fine-tuned multilingual transformer: multilingual-e5-small with multi-task heads, on a CPU.

Design, and why (numbers in the evaluation report):

* **Paragraphs are the unit.** The encoder reads each paragraph (at most ``max_length`` tokens;
  longer paragraphs are cut into windows). A post's topic and frame scores are the maximum of its
  paragraphs' scores, so the top paragraph is also a frame's evidence; stance reads the mean of
  the paragraph embeddings. Frames are also trained at paragraph level on the gold evidence.
  Why: most gold evidence paragraphs start beyond their post's first window
  (``python -m classify.encoder --coverage labels/gold.jsonl``), and averaging the paragraphs
  instead of taking their maximum lowered frames (docs/EXPERIMENTS.md).
* **Fits a 2-core CPU.** Embeddings and the lower ``n_layers - n_trainable_layers`` layers are
  frozen (by default all of them); their output is computed once per distinct paragraph and cached
  for the whole process, so cross-validation folds reuse it. Only the heads (and any top layers
  set trainable) are trained.
* **The codebook's cues are inputs of the heads** (``log1p`` hits per paragraph), so the model
  starts from the cues and learns where the encoder adds to them. In training, 30% of the posts of
  each epoch are shown without their topic cue hits (``cue_dropout``), so that the encoder's part
  of the topic head still fires where the cues miss (other languages, other wordings).
* **Topics from the cues by default** (``topics_from_cues``): across sources the learned topic head
  lost to the codebook's cues (eval/SELECTION.md), so shipped topics are the cue rule's, matched with
  hashtags read as words (``topics_cue_hashtags``: "#BRICS" counts as "BRICS"); the head is
  still trained (it shares nothing with the frame and stance heads on a frozen encoder, so it costs
  little) and used when the option is off.
* **Stance and frames blended with TF-IDF** (``stance_tfidf``, ``frames_tfidf``): the stance and
  frame probabilities are the mean of the heads' and those of a TF-IDF + logistic regression model
  fitted on the same posts (saved in ``tfidf/``); the frames are blended before the thresholds (and
  the cue stacker, when on), also in the inner folds. The heads read frozen-encoder windows, which dilute the
  names and loaded words that carry stance and frames; each blend won its comparison on
  cross-validation and left-out sources (eval/SELECTION.md).
* **No Western actor named, no stance** (``stance_needs_west``): the codebook's stance evaluates
  Western governments and alliances, so a post that names none (``classify.learners.west``) gets
  ``none``; it won its comparison (eval/SELECTION.md).
* **Stacking with the cues, off by default** (``stack_cues``, ``classify.learners.stacking``): post
  scores and the post's cue hits combined by a small logistic regression per label, fitted on the
  inner out-of-fold predictions; with the sentence vectors in the TF-IDF blend it tied without it, so
  the simpler model ships (eval/SELECTION.md).
* **Thresholds from inner out-of-fold predictions** of the training posts, as for the baseline
  (``threshold_folds`` inner folds; 2 by default, to keep the budget).

Saved as a self-contained folder: ``encoder/`` (safetensors, config, tokenizer), ``heads.safetensors``,
``config.json``; nothing executes on load and nothing is downloaded.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from ...codebook import Codebook
from ...errors import ConfigError, ModelError
from ..base import Model, Probas, as_paragraphs, check_fitted, gold_targets
from ..card import now_iso, versions
from ..checks import check_arrays
from ..cues import CueMatcher
from ..stacking import apply_stacker, fit_stacker, label_rows, post_hits
from ..thresholds import choose
from ..west import gate_stance
from .config import TransformerConfig, drop_removed_options
from .network import (
    build_net,
    encoder_flops,
    forward,
    frozen_states,
    load_encoder_cached,
    pack_windows,
    torch_module,
    windows,
)
from .training import train_net

ONNX_INFERENCE = "ONNX Runtime (classify.transformer.use_onnx)"
"""The model card's ``inference`` entry of a model whose encoder runs in ONNX Runtime."""
BF16_INFERENCE = "PyTorch, encoder matrix products in bfloat16 (classify.transformer.use_bf16)"
"""The model card's ``inference`` entry of a model whose encoder runs under bfloat16 autocast."""






def blend(P: np.ndarray, Q: np.ndarray, w: float) -> np.ndarray:
    """``(1 - w) * P + w * Q``: the head's probabilities mixed with the TF-IDF model's."""
    return P if not w else (1 - w) * P + w * Q


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
        """The tokenizer and encoder to fine-tune: ``path``, the configured folder, or the default (built on first use)."""
        from .encoder import ensure_encoder

        self.encoder_path_ = Path(path) if path else ensure_encoder(self.config.encoder, progress=True)  # one line, only when it builds
        return load_encoder_cached(self.encoder_path_)

    def _prepare(self, paragraphs: list[list[str]]):
        self.loaded_from_ = None
        self.ort_ = None  # an ONNX graph of the old weights must not outlive a new fit
        tok, mdl = self._load_encoder(getattr(self, "encoder_dir_", None))
        n_layers = len(mdl.encoder.layer)
        k = min(self.config.n_trainable_layers, n_layers)
        texts = sorted({p for ps in paragraphs for p in ps})
        frozen = dict(zip(texts, frozen_states(texts, tok, mdl, n_layers - k, str(self.encoder_path_), self.config.max_length,
                                                   self.config.batch_size)))
        matcher = self.matcher_ = CueMatcher(self.codebook)
        n_cues = len(self.codebook.topics) + len(self.codebook.frames)
        cue = {t: (np.log1p(matcher.vector(t)) if self.config.use_cues else np.zeros(n_cues)).astype(np.float32) for t in texts}
        return tok, mdl, n_layers - k, frozen, cue



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
        self.thresholds_ = self._oof_thresholds(paragraphs, gold, Yt, Yf, ys, evidence, groups, tok, mdl, n_frozen, frozen, cue)
        self.net_ = train_net(self.config, self.codebook, paragraphs, Yt, Yf, ys, evidence, mdl, n_frozen, frozen, cue)
        self.tfidf_ = self._fit_tfidf(paragraphs, gold, groups)
        self.tok_, self.base_, self.n_frozen_, self.encoder_config_ = tok, mdl, n_frozen, mdl.config
        self.fitted_ = True
        self.card_ = {"hyperparameters": asdict(self.config), "seed": self.config.seed, "n_posts": len(paragraphs),
                      "encoder": str(self.encoder_path_), "train_seconds": round(time.perf_counter() - start, 2),
                      "date": now_iso(), "versions": versions(),
                      "label_counts": {"topics": {t: int(Yt[:, j].sum()) for j, t in enumerate(self.codebook.topics)},
                                       "frames": {f: int(Yf[:, j].sum()) for j, f in enumerate(self.codebook.frames)},
                                       "stance_west": {s: int((ys == k).sum()) for k, s in enumerate(self.codebook.stances)}}}
        return self

    def _fit_tfidf(self, paragraphs, gold, groups):
        """The TF-IDF model blended into the stance and frames (``stance_tfidf``, ``frames_tfidf``), or
        None when both weights are 0.

        A baseline without inner folds or stacker: only its raw probabilities are blended, and the
        transformer's own stacker and thresholds come after the blend."""
        if not (self.config.stance_tfidf or self.config.frames_tfidf):
            return None
        from ..baseline.model import BaselineConfig, BaselineModel

        # its own stance gate off (the transformer's ``stance_needs_west`` alone decides), the cues as
        # written and no label-description cosines (in this blend they tied their comparison), as in the
        # comparisons that chose the blends (eval/SELECTION.md)
        cfg = BaselineConfig(threshold_folds=0, stance_needs_west=False, cue_hashtags=False,
                             sentence_vectors=self.config.tfidf_sentence_vectors, label_similarity=0.0,
                             seed=self.config.seed)
        return BaselineModel(cfg, self.codebook).fit(paragraphs, gold, groups)

    def _oof_thresholds(self, paragraphs, gold, Yt, Yf, ys, evidence, groups, tok, mdl, n_frozen, frozen, cue):
        # imported here, training only: iterstrat and sklearn stay out of tagging's start-up
        from ...evaluation.splits import group_folds, stacked_targets

        k = self.config.threshold_folds
        if k == 0:
            self.stackers_ = None
            return {"topics": 0.5, "frames": 0.5, "source": "fixed"}
        Pt, Pf = np.zeros(Yt.shape), np.zeros(Yf.shape)
        Y = stacked_targets(Yt, Yf, ys, len(self.codebook.stances))
        for tr, te in group_folds(Y, groups, n_splits=k, seed=self.config.seed):
            net = train_net(self.config, self.codebook, [paragraphs[i] for i in tr], Yt[tr], Yf[tr], ys[tr],
                            None if evidence is None else [evidence[i] for i in tr], mdl, n_frozen, frozen, cue)
            held = [paragraphs[i] for i in te]
            pr = self._predict_with(net, held, frozen, cue)
            Pt[te], Pf[te] = pr.topics, pr.frames
            if self.config.frames_tfidf:  # the blend the thresholds will see, from a TF-IDF model of these folds
                tfidf = self._fit_tfidf([paragraphs[i] for i in tr], gold.iloc[tr], [groups[i] for i in tr])
                Pf[te] = blend(pr.frames, tfidf.predict_proba(held).frames, self.config.frames_tfidf)
        self.stackers_ = None
        if self.config.stack_cues:
            H = post_hits(self.matcher_, paragraphs)
            nt = Yt.shape[1]
            self.stackers_ = np.vstack([fit_stacker(Pt, H[:, :nt], Yt, per_label=self.config.stack_topics_per_label),
                                        fit_stacker(Pf, H[:, nt:], Yf, per_label=self.config.stack_frames_per_label)])
            Pt, Pf = apply_stacker(self.stackers_[:nt], Pt, H[:, :nt]), apply_stacker(self.stackers_[nt:], Pf, H[:, nt:])
        mp = self.config.per_label_min_positives
        topics = 0.5 if self.config.topics_from_cues else choose(Yt, Pt, self.codebook.topics, average="micro", per_label_min_positives=mp)
        return {"topics": topics,
                "frames": choose(Yf, Pf, self.codebook.frames, average="macro", per_label_min_positives=mp),
                "source": f"inner {k}-fold out-of-fold predictions on the training posts"}

    # ----------------------------------------------------------------- prediction
    def _predict_with(self, net, paragraphs, frozen, cue) -> Probas:
        torch = torch_module()
        nt = len(self.codebook.topics)
        T, F, S, per_para = [], [], [], []
        step = max(1, self.config.batch_size // 4)
        with torch.inference_mode():
            for b in range(0, len(paragraphs), step):
                chunk = paragraphs[b : b + step]
                pack = pack_windows(chunk, frozen, cue)
                post_logits, para_logits, stance_logits = forward(net, pack, self.config.use_cues)
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
        torch = torch_module()
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
        H = np.array([hits[[index[p] for p in paras]].sum(axis=0) for paras in paragraphs], dtype=float).reshape(len(paragraphs), hits.shape[1])
        tfidf = self.tfidf_.predict_proba(paragraphs) if getattr(self, "tfidf_", None) is not None else None
        if tfidf is not None:
            F = blend(F, tfidf.frames, self.config.frames_tfidf)
        if getattr(self, "stackers_", None) is not None:
            T, F = apply_stacker(self.stackers_[:nt], T, H[:, :nt]), apply_stacker(self.stackers_[nt:], F, H[:, nt:])
        if self.config.topics_from_cues:
            T = (self._topic_cue_hits(paragraphs, H[:, :nt]) > 0).astype(float)
        if tfidf is not None:
            S = blend(S, tfidf.stance, self.config.stance_tfidf)
        if self.config.stance_needs_west:
            S = gate_stance(S, paragraphs, self.codebook)
        return Probas(T, F, S, per_para)

    def _topic_cue_hits(self, paragraphs: list[list[str]], hits: np.ndarray) -> np.ndarray:
        """Topic cue hits per post for ``topics_from_cues``: ``hits`` (the cues as written), or matched
        again with hashtags read as words under ``topics_cue_hashtags``."""
        if not self.config.topics_cue_hashtags:
            return hits
        if getattr(self, "topic_matcher_", None) is None:
            self.topic_matcher_ = CueMatcher(self.codebook, hashtags=True)
        return post_hits(self.topic_matcher_, paragraphs)[:, : hits.shape[1]]

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
        torch = torch_module()
        tok, mdl, net = self.tok_, self.base_, self.net_
        enc_cfg = self.encoder_config_  # also there when the torch encoder was not loaded (ONNX Runtime only)
        wins = [(k, w) for k, ws in enumerate(windows(tok, texts, self.config.max_length)) for w in ws]
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
        if getattr(self, "tfidf_", None) is not None:
            (path / "tfidf").mkdir()
            self.tfidf_._save_arrays(path / "tfidf")
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
        cfg.setdefault("stance_tfidf", 0.0)
        cfg.setdefault("frames_tfidf", 0.0)
        cfg.setdefault("tfidf_sentence_vectors", 0.0)
        cfg.setdefault("stance_needs_west", False)
        cfg.setdefault("topics_cue_hashtags", False)
        drop_removed_options(cfg, path)
        for key in ("stack_frames_per_label", "stack_topics_per_label"):  # saved before the options: one stacker per task
            cfg.setdefault(key, False)
        self.config = TransformerConfig.from_dict(cfg)
        try:
            heads = load_file(str(path / "heads.safetensors"))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"{path / 'heads.safetensors'}: not a valid safetensors file ({exc}); the model is corrupt or tampered") from None
        check_arrays(path / "heads.safetensors", {k: v.float().numpy() for k, v in heads.items()},
                     {k: tuple(v.shape) for k, v in heads.items()})  # shapes: load_state_dict checks them below
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
        net = build_net(top, self.encoder_config_.hidden_size, n_cues, len(self.codebook.topics) + len(self.codebook.frames), len(self.codebook.stances))
        try:
            net.label_head.load_state_dict({k.split(".", 1)[1]: v for k, v in heads.items() if k.startswith("label_head.")})
            net.stance_head.load_state_dict({k.split(".", 1)[1]: v for k, v in heads.items() if k.startswith("stance_head.")})
        except (RuntimeError, KeyError) as exc:
            raise ModelError(f"{path / 'heads.safetensors'}: heads do not match the encoder or codebook ({exc}); retrain") from None
        net.eval()
        self.net_ = net
        self.tfidf_ = self._load_tfidf(path / "tfidf") if (self.config.stance_tfidf or self.config.frames_tfidf) else None

    def _load_tfidf(self, path: Path):
        """The blended TF-IDF stance model saved beside the heads (arrays and JSON, as a baseline's)."""
        from ..baseline.model import BaselineModel

        if not path.is_dir():
            raise ModelError(f"{path}: missing; the config blends a TF-IDF stance model, retrain the model")
        tfidf = BaselineModel.__new__(BaselineModel)
        Model.__init__(tfidf, self.codebook)
        tfidf._load_arrays(path, {})
        tfidf.fitted_ = True
        return tfidf

    def _need_torch_encoder(self, what: str) -> None:
        if getattr(self, "base_", None) is None:
            raise ModelError(f"this model was loaded for ONNX Runtime tagging only (its PyTorch encoder was not read); "
                             f"load it with classify.load_model(path) to {what}")
