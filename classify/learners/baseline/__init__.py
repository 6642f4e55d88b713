"""TF-IDF + logistic regression with the codebook's cues as features."""
