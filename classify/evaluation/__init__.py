"""Evaluation: splits, metrics, cross-validation, held-out sources and the random test, the report."""
