"""Cross-validation splits that keep copies of a post together.

Posts of one group (a duplicate group: the same post forwarded into several dumps, or a post and
its translation) always fall in the same fold; otherwise a model would be scored on text it was
trained on. Folds are stratified on the groups' label sets with iterative stratification
(Sechidis et al. 2011, the ``iterstrat`` package), so rare labels are spread over folds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold


def group_folds(Y: np.ndarray, groups: Sequence[str], n_splits: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train_idx, test_idx)`` pairs over posts, stratified on labels, never splitting a group.

    Parameters
    ----------
    Y : ndarray of shape (n_posts, n_labels)
        Binary label matrix (topics, frames and one-hot stance side by side).
    groups : sequence of str
        Group id per post.
    n_splits : int, default=5
        Folds; reduced to the number of groups when there are fewer.
    seed : int, default=0
        Shuffling seed: the same seed gives the same folds.
    """
    groups = np.asarray(list(groups))
    uniq, inverse = np.unique(groups, return_inverse=True)
    n_splits = max(2, min(n_splits, len(uniq)))
    Yg = np.zeros((len(uniq), Y.shape[1]), dtype=np.int64)
    np.maximum.at(Yg, inverse, Y.astype(np.int64))
    # iterstrat needs at least one column with variation; a constant column is harmless.
    splitter = MultilabelStratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = []
    for g_train, g_test in splitter.split(np.zeros((len(uniq), 1)), Yg):
        train = np.flatnonzero(np.isin(inverse, g_train))
        test = np.flatnonzero(np.isin(inverse, g_test))
        folds.append((train, test))
    return folds


def stacked_targets(topics: np.ndarray, frames: np.ndarray, stance: np.ndarray, n_stances: int) -> np.ndarray:
    """Topics, frames and one-hot stance side by side: the matrix folds are stratified on."""
    onehot = np.eye(n_stances, dtype=np.int64)[stance]
    return np.hstack([topics, frames, onehot])
