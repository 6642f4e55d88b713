"""Training the transformer's top layers and heads: losses, batches, cue dropout.

The label head starts from the codebook's cue rule (each label reads its own cue column with weight
``cue_prior``); the frames are also trained at paragraph level on the gold evidence paragraphs; in
each epoch a share of the posts is shown without its topic cue hits (``cue_dropout``).
"""

from __future__ import annotations

import copy

import numpy as np

from ...codebook import Codebook
from .config import TransformerConfig
from .network import build_net, forward, pack_windows, select, torch_module


def train_net(config: TransformerConfig, codebook: Codebook, paragraphs, Yt, Yf, ys, evidence, mdl, n_frozen, frozen, cue):
    """Train the top layers and heads on posts (labels ``Yt``, ``Yf``, ``ys``; frame evidence) and return the net."""
    torch = torch_module()
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    n_cues = len(codebook.topics) + len(codebook.frames) if config.use_cues else 0
    top = [copy.deepcopy(layer) for layer in mdl.encoder.layer[n_frozen:]]
    net = build_net(top, mdl.config.hidden_size, n_cues, Yt.shape[1] + Yf.shape[1], len(codebook.stances))
    if n_cues and config.cue_prior > 0:
        with torch.no_grad():  # start from the cue rule: each label reads its own cue column
            hidden = mdl.config.hidden_size
            net.label_head.weight[:, hidden:] = torch.eye(n_cues) * config.cue_prior
            net.label_head.bias.fill_(-config.cue_prior / 3)
    pack = pack_windows(paragraphs, frozen, cue)
    Y = torch.tensor(np.hstack([Yt, Yf]), dtype=torch.float32)
    pos = Y.sum(0)
    pos_weight = ((len(Y) - pos) / pos.clamp(min=1)).clamp(max=20.0)
    counts = np.bincount(ys, minlength=len(codebook.stances)).astype(np.float32)
    stance_w = torch.tensor(np.where(counts > 0, len(ys) / (len(counts) * np.maximum(counts, 1)), 0.0), dtype=torch.float32)
    bce = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    ce = torch.nn.CrossEntropyLoss(weight=stance_w)
    params = [{"params": [p for layer in net.layers for p in layer.parameters()], "lr": config.lr_encoder},
              {"params": list(net.label_head.parameters()) + list(net.stance_head.parameters()), "lr": config.lr_heads}]
    opt = torch.optim.AdamW(params, weight_decay=0.01)
    nt = Yt.shape[1]
    ys_t = torch.tensor(ys)
    aux = aux_targets(codebook, paragraphs, Yf, evidence) if evidence is not None and config.frame_aux_weight > 0 else None
    rng = np.random.default_rng(config.seed)
    cue_rng = np.random.default_rng([config.seed, 1])  # its own stream: the batches stay as without it
    net.train()
    for _ in range(config.epochs):
        order = rng.permutation(len(paragraphs))
        for b in range(0, len(order), config.batch_posts):
            batch = np.sort(order[b : b + config.batch_posts])
            sub = select(pack, batch)
            if config.cue_dropout > 0:
                keep = torch.tensor(cue_rng.random(len(batch)) >= config.cue_dropout)
                hide = ~keep[sub["para_post"][sub["win_para"]]]
                sub["cues"] = sub["cues"].clone()
                sub["cues"][hide, :nt] = 0.0  # the topic cues only: hiding the frame cues too lost
            opt.zero_grad()
            post_logits, para_logits, stance_logits = forward(net, sub, config.use_cues)
            loss = bce(post_logits, Y[batch]) + ce(stance_logits, ys_t[batch])
            if aux is not None:
                tgt, w = aux[0][sub["para_index"]], aux[1][sub["para_index"]]
                if w.sum() > 0:
                    loss = loss + config.frame_aux_weight * torch.nn.functional.binary_cross_entropy_with_logits(
                        para_logits[:, nt:], tgt, weight=w, reduction="sum") / w.sum()
            loss.backward()
            opt.step()
    net.eval()
    return net


def aux_targets(codebook: Codebook, paragraphs, Yf, evidence):
    """Paragraph-level frame targets and weights: evidence paragraphs are positives, every
    paragraph of a post without the frame is a negative, other paragraphs are not scored."""
    torch = torch_module()
    rows_t, rows_w = [], []
    for i, paras in enumerate(paragraphs):
        t = np.zeros((len(paras), Yf.shape[1]), dtype=np.float32)
        w = np.zeros_like(t)
        for j, f in enumerate(codebook.frames):
            if Yf[i, j]:
                for k in evidence[i].get(f, []):
                    if k < len(paras):
                        t[k, j] = w[k, j] = 1.0
            else:
                w[:, j] = 1.0
        rows_t.append(t)
        rows_w.append(w)
    return torch.tensor(np.vstack(rows_t)), torch.tensor(np.vstack(rows_w))
