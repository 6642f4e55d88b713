"""Drift warnings: where the error rates measured on gold may not hold for this corpus.

The correction assumes the model errs on the corpus as it did on the held-out gold. Four checks
measure how far that assumption is stretched, each against the same figure on the gold: the
language mix, the share of posts unlike every gold post (character n-gram TF-IDF cosine, fast at any
size), how often the model and the codebook's cue rule disagree, and the share of posts with no label.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..codebook import Codebook
from ..learners.cues import CueMatcher, cue_rule_predict
from .corpus import Corpus
from .heldout import HeldOut
from .texts import TextSample

MIN_LANG_GOLD = 20
"""Held-out gold posts a language needs before its error rates count as measured."""


MIN_LANG_SHARE = 0.05
"""Corpus share from which a language matters for the warning."""


FAR_QUANTILE = 0.05
"""A post is "far" when its nearest gold post is less similar than this quantile of gold posts'
similarity to their nearest other gold post (so about 5% of posts like the gold are far)."""


SPACE = ("character 3-5-grams within word boundaries, TF-IDF (hashed to 2^18 features, IDF from the "
         "reference gold posts, sublinear term frequency), cosine similarity")



@dataclass
class Check:
    """One drift check: the corpus figure with its 95% interval, the gold reference, and what it means."""

    name: str
    value: float | None
    ci: tuple[float, float] | None
    n: int
    reference: str
    warn: bool | None          # None: not computed
    meaning: str
    detail: list[str] = field(default_factory=list)
    value_text: str = ""       # how the value reads when it is not a share


def wilson(k: int, n: int) -> tuple[float, float] | None:
    """95% Wilson interval of k successes in n (scipy's ``binomtest``)."""
    if n <= 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def language_check(corpus: Corpus, ho: HeldOut | None, train_langs: Counter) -> tuple[Check, pd.DataFrame]:
    """Share of tagged posts in languages with fewer than ``MIN_LANG_GOLD`` held-out gold posts."""
    corp = Counter(corpus.rows["lang"])
    held = Counter(ho.langs.tolist()) if ho is not None else Counter()
    ref_name = "held-out gold" if ho is not None else "training gold"
    ref = held if ho is not None else train_langs
    table = pd.DataFrame([{"lang": lang, "posts": corp.get(lang, 0), "share": corp.get(lang, 0) / max(corpus.n, 1),
                           "training gold": train_langs.get(lang, 0), "held-out gold": held.get(lang, 0)}
                          for lang in sorted(set(corp) | set(train_langs) | set(held), key=lambda x: -corp.get(x, 0))])
    thin = [lang for lang, k in corp.items() if ref.get(lang, 0) < MIN_LANG_GOLD]
    k = sum(corp[lang] for lang in thin)
    heavy = [lang for lang in thin if corp[lang] / max(corpus.n, 1) >= MIN_LANG_SHARE]
    train = ", ".join(f"{lang} {n}" for lang, n in train_langs.most_common()) or "unknown"
    meaning = (f"{k / max(corpus.n, 1):.1%} of tagged posts are in languages with fewer than {MIN_LANG_GOLD} {ref_name} posts"
               f"{' (' + ', '.join(heavy) + ')' if heavy else ''}. The model was trained on {train}. For those posts the "
               "error rates, and so the correction, are borrowed from other languages: trust their shares less.")
    return Check("language mix", k / max(corpus.n, 1), wilson(k, corpus.n), corpus.n,
                 f"languages with {MIN_LANG_GOLD}+ {ref_name} posts: "
                 + (", ".join(sorted(lang for lang, n in ref.items() if n >= MIN_LANG_GOLD)) or "none"),
                 bool(heavy), meaning), table


def _vectoriser():
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), n_features=2**18, alternate_sign=False, norm=None)


def far_check(sample: TextSample, ref_texts: list[str], ref_groups: list[str], ref_name: str) -> Check:
    """Share of sampled posts whose most similar reference gold post is further than most gold posts' neighbours."""
    from sklearn.feature_extraction.text import TfidfTransformer

    name = "far from every gold post"
    if sample.n == 0 or len(ref_texts) < 3:
        why = "no post text could be read back" if sample.n == 0 else "fewer than 3 gold posts to compare with"
        return Check(name, None, None, 0, "", None, f"Not computed: {why}.")
    hv = _vectoriser()
    tfidf = TfidfTransformer(sublinear_tf=True).fit(hv.transform(ref_texts))
    R = tfidf.transform(hv.transform(ref_texts))
    X = tfidf.transform(hv.transform(["\n".join(p) for p in sample.paragraphs]))
    RR = (R @ R.T).toarray()
    g = np.asarray(ref_groups)
    RR[g[:, None] == g[None, :]] = -1.0          # a post's copies and translations do not count as neighbours
    tau = float(np.quantile(RR.max(1), FAR_QUANTILE))
    best = np.asarray((X @ R.T).max(axis=1).todense()).ravel()
    k = int((best < tau).sum())
    share = k / sample.n
    ci = wilson(k, sample.n)
    meaning = (f"{share:.1%} of {sample.n:,} sampled posts are less similar to every {ref_name} post (cosine < {tau:.2f}) "
               f"than {1 - FAR_QUANTILE:.0%} of gold posts are to their nearest other gold post, so about "
               f"{FAR_QUANTILE:.0%} is what a corpus like the gold gives. Their labels, and the correction, extrapolate "
               "from gold unlike them.")
    return Check(name, share, ci, sample.n, f"{FAR_QUANTILE:.0%} by construction (threshold {tau:.2f})",
                 ci is not None and ci[0] > 2 * FAR_QUANTILE, meaning,
                 [f"Representation: {SPACE}; reference: {len(ref_texts)} {ref_name} posts."])


def cue_disagreement(labels: tuple[str, ...], model_y: np.ndarray, paragraphs: list[list[str]], cb: Codebook,
                     matcher: CueMatcher) -> np.ndarray:
    """(n, L) bool: where the model's decision and the cue rule's differ, per topic and frame."""
    cue = cue_rule_predict(paragraphs, cb, matcher=matcher, evidence_text=False)
    col = {lab: j for j, lab in enumerate(labels)}
    C = np.zeros(model_y.shape, bool)
    for i, (ts, fs) in enumerate(zip(cue["topics"], cue["frames"])):
        for lab in (*ts, *fs):
            C[i, col[lab]] = True
    return model_y != C


def cue_check(corpus: Corpus, sample: TextSample, cb: Codebook, ref: tuple[np.ndarray, list[list[str]]] | None) -> Check:
    """Share of sampled posts where the model and the cue rule disagree on any topic or frame, vs gold."""
    name = "model vs cue rule"
    if sample.n == 0:
        return Check(name, None, None, 0, "", None, "Not computed: no post text could be read back.")
    matcher = CueMatcher(cb)
    L = len(corpus.labels)
    D = cue_disagreement(corpus.labels, corpus.Y[sample.rows][:, :L], sample.paragraphs, cb, matcher)
    k = int(D.any(1).sum())
    share = k / sample.n
    ci = wilson(k, sample.n)
    ref_rate = None
    if ref is not None and len(ref[1]):
        ref_rate = float(cue_disagreement(corpus.labels, ref[0][:, :L], ref[1], cb, matcher).any(1).mean())
    per = D.mean(0)
    top = [f"{corpus.labels[j]} {per[j]:.0%}" for j in np.argsort(-per)[:3] if per[j] > 0]
    base = f"{ref_rate:.0%} of held-out gold posts" if ref_rate is not None else "an unknown share of gold posts (no held-out predictions)"
    meaning = (f"The model and the codebook's cue rule disagree on at least one label for {share:.1%} of {sample.n:,} sampled "
               f"posts, against {base}. More disagreement than on gold means the model decides here unlike where "
               "its errors were measured (new wording, topics or style); the correction assumes it does not.")
    warn = None if ref_rate is None else bool(ci and ci[0] > ref_rate + 0.10)
    return Check(name, share, ci, sample.n, f"{ref_rate:.0%} on held-out gold" if ref_rate is not None else "unknown",
                 warn, meaning, ["Most disagreed labels: " + ", ".join(top)] if top else [])


def no_label_check(corpus: Corpus, ho: HeldOut | None) -> Check:
    """Share of tagged posts with no topic and no frame, vs the held-out gold (predicted and true)."""
    L = len(corpus.labels)
    k = int((~corpus.Y[:, :L].any(1)).sum())
    share = k / max(corpus.n, 1)
    ci = wilson(k, corpus.n)
    if ho is not None:
        pred_none = float((~ho.pred[:, :L].any(1)).mean())
        gold_none = float((~ho.gold[:, :L].any(1)).mean())
        ref = f"{pred_none:.0%} predicted, {gold_none:.0%} true on held-out gold"
        warn = bool(ci and ci[0] > pred_none + 0.15)
    else:
        ref, warn, pred_none = "unknown (no held-out predictions)", None, None
    meaning = (f"{share:.1%} of tagged posts got no topic and no frame"
               + (f" (on held-out gold the model left {pred_none:.0%} without one)" if pred_none is not None else "")
               + ". They are posts about other things (the codebook has four topics and ten frames) or labels the model "
               "missed; the corrected shares count them as posts without the label. Far more than on gold means the corpus is "
               "off the codebook's subject or the model misses more here.")
    return Check("no label", share, ci, corpus.n, ref, warn, meaning)


def range_check(targets: tuple[str, ...], outside: np.ndarray, stat: np.ndarray, cor_fpr: np.ndarray, cor_tpr: np.ndarray,
                ok: np.ndarray) -> Check:
    """Labels whose corpus-wide share falls outside what the gold error rates allow (the correction clips them)."""
    bad = [targets[k] + (" (below its false-positive rate)" if stat[k] < cor_fpr[k] else " (above its true-positive rate)")
           for k in np.flatnonzero(outside & ok)]
    n_ok = int(ok.sum())
    meaning = (f"For {len(bad)} of {n_ok} corrected labels the model's share here lies outside the range its gold error rates "
               "allow, so the correction is clipped to 0 or 1: the model behaves here unlike on the held-out gold, and "
               "those corrected shares are bounds, not estimates.")
    return Check("labels outside the gold error rates", len(bad) / n_ok if n_ok else None, None, n_ok,
                 "none when the corpus behaves like the gold", bool(bad) if n_ok else None, meaning,
                 ["Outside: " + "; ".join(bad)] if bad else [], f"{len(bad)} of {n_ok} labels")
