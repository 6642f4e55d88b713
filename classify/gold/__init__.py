"""The labelled subset: the corpus it refers to, annotation rounds, passes, agreement and the gold file."""
