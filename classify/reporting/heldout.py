"""The model's held-out gold predictions (``<model>/heldout.parquet``): the input of the correction.

Training saves, beside each model, one row per gold post per protocol: ``cv`` (out-of-fold within the
train split), ``loso`` (a model trained without the post's source) or ``test`` (the shipped model on
the test split), with gold labels, probabilities and decisions for every topic, frame and stance.
Error rates must come from predictions on posts the model did not train on, or they flatter it; by
default the report takes the ``loso`` rows (errors on an unseen source are the closest thing to a
new corpus) and falls back to ``cv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..codebook import Codebook
from ..errors import ConfigError, InputError

HELDOUT_FILE = "heldout.parquet"


PROTOCOLS = ("loso", "cv", "test")


DEFAULT_ORDER = ("loso", "cv")
"""Which rows give the error rates when none is asked for: the first protocol present."""


STANCE_PREFIX = "stance:"
"""Stance classes are corrected one against the rest, as targets named ``stance:<class>``."""


@dataclass
class HeldOut:
    """Held-out rows of one protocol as binary targets: every topic and frame (codebook order), then
    each stance class against the rest (``stance:against``, ...).

    ``gold``/``pred``/``valid``: (m, K) bool (``valid`` is False where a stance has no gold); ``p``:
    (m, K) probabilities; ``groups``: bootstrap unit per row (the gold duplicate/translation group
    when the gold file is at hand, else the post).
    """

    path: Path
    protocol: str
    protocols_present: dict[str, int]
    targets: tuple[str, ...]
    post_ids: np.ndarray
    sources: np.ndarray
    langs: np.ndarray
    gold: np.ndarray
    pred: np.ndarray
    p: np.ndarray
    valid: np.ndarray
    groups: np.ndarray

    @property
    def n(self) -> int:
        return len(self.post_ids)

    def subset(self, idx: np.ndarray) -> HeldOut:
        """The rows ``idx`` (an index array or boolean mask), same protocol."""
        cols = ("post_ids", "sources", "langs", "gold", "pred", "p", "valid", "groups")
        return HeldOut(self.path, self.protocol, self.protocols_present, self.targets,
                       **{k: getattr(self, k)[idx] for k in cols})


def target_names(cb: Codebook) -> tuple[str, ...]:
    return (*cb.topics, *cb.frames, *(STANCE_PREFIX + s for s in cb.stances))


def required_columns(cb: Codebook) -> list[str]:
    cols = ["post_id", "source", "lang", "split", "protocol", "gold_stance", "pred_stance"]
    for lab in (*cb.topics, *cb.frames):
        cols += [f"gold_{lab}", f"p_{lab}", f"pred_{lab}"]
    return cols + [f"p_stance_{s}" for s in cb.stances]


def load_heldout(model_dir: str | Path, cb: Codebook, protocol: str | None = None,
                 groups: dict[str, str] | None = None) -> HeldOut | None:
    """The rows of ``protocol`` (default: ``loso`` if present, else ``cv``) or ``None`` without the file.

    Raises
    ------
    InputError
        The file exists but lacks a contract column, or has no row of the protocol asked for.
    """
    path = Path(model_dir) / HELDOUT_FILE
    if not path.exists():
        return None
    if protocol is not None and protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # unreadable Parquet: one line, not a traceback
        raise InputError(f"{path}: cannot read ({type(exc).__name__}: {exc}); retrain the model") from None
    missing = [c for c in required_columns(cb) if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}; "
                         "the file is from another codebook or an older classify: retrain the model")
    present = {str(k): int(v) for k, v in df["protocol"].value_counts().items()}
    chosen = protocol or next((p for p in DEFAULT_ORDER if present.get(p)), None)
    if chosen is None or not present.get(chosen):
        raise InputError(f"{path}: no rows of protocol {protocol or ' or '.join(DEFAULT_ORDER)} "
                         f"(it has {', '.join(f'{k} {v}' for k, v in present.items()) or 'no rows'}); pick another with --protocol")
    df = df[df["protocol"] == chosen].reset_index(drop=True)
    labels = (*cb.topics, *cb.frames)
    post_ids = df["post_id"].astype(str).to_numpy()
    gold_stance = np.array([s if isinstance(s, str) else "" for s in df["gold_stance"]])
    pred_stance = df["pred_stance"].astype(str).to_numpy()
    gold = np.column_stack([df[[f"gold_{lab}" for lab in labels]].to_numpy(bool)]
                           + [(gold_stance == s)[:, None] for s in cb.stances])
    pred = np.column_stack([df[[f"pred_{lab}" for lab in labels]].to_numpy(bool)]
                           + [(pred_stance == s)[:, None] for s in cb.stances])
    p = np.column_stack([df[[f"p_{lab}" for lab in labels]].to_numpy(float)]
                        + [df[[f"p_stance_{s}"]].to_numpy(float) for s in cb.stances])
    valid = np.ones(gold.shape, bool)
    valid[:, len(labels):] = np.isin(gold_stance, cb.stances)[:, None]
    return HeldOut(path=path, protocol=chosen, protocols_present=present, targets=target_names(cb), post_ids=post_ids,
                   sources=df["source"].astype(str).to_numpy(), langs=df["lang"].astype(str).to_numpy(),
                   gold=gold, pred=pred, p=np.clip(np.nan_to_num(p), 0.0, 1.0), valid=valid,
                   groups=np.array([(groups or {}).get(pid, pid) for pid in post_ids]))
