"""Folds never split a duplicate group (the planted leak), and are stratified and reproducible."""

import numpy as np

from classify.evaluation.splits import group_folds


def planted():
    rng = np.random.default_rng(0)
    n = 40
    Y = rng.integers(0, 2, size=(n, 5))
    groups = [f"g{i}" for i in range(n)]
    # Plant copies: posts 0-3 are copies of one post (same unique cue, same labels), 10-11 another.
    for i in (1, 2, 3):
        groups[i] = "g0"
        Y[i] = Y[0]
    groups[11] = "g10"
    Y[11] = Y[10]
    return Y, groups


def test_copies_stay_in_one_fold():
    Y, groups = planted()
    for seed in range(5):
        folds = group_folds(Y, groups, n_splits=5, seed=seed)
        for _, test in folds:
            test_groups = {groups[i] for i in test}
            for g in ("g0", "g10"):
                members = [i for i, x in enumerate(groups) if x == g]
                if g in test_groups:
                    assert set(members) <= set(test), f"group {g} split across folds (seed {seed})"
        covered = np.sort(np.concatenate([te for _, te in folds]))
        assert np.array_equal(covered, np.arange(len(Y)))


def test_folds_are_reproducible_and_seed_dependent():
    Y, groups = planted()
    a = group_folds(Y, groups, 5, seed=7)
    b = group_folds(Y, groups, 5, seed=7)
    c = group_folds(Y, groups, 5, seed=8)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    assert not all(np.array_equal(x[1], y[1]) for x, y in zip(a, c))


def test_rare_label_spread_over_folds():
    Y = np.zeros((30, 2), dtype=int)
    Y[:5, 0] = 1
    Y[:, 1] = np.arange(30) % 2
    folds = group_folds(Y, [str(i) for i in range(30)], 5, seed=0)
    assert sum(Y[te, 0].sum() > 0 for _, te in folds) == 5
