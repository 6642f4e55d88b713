"""Train the models on the labelled subset, evaluate them, save them and print what they achieved.

    python -m classify.train                       # every model, default settings
    python -m classify.train --models baseline     # only the TF-IDF baseline (about a third of the time)

Steps: (1) cross-validated evaluation of each model and of the cue rule (the reference system),
written to ``eval/<run-id>/`` and ``eval/latest/``; (2) each model fitted on all posts of the gold's train
split (the model the evaluation scored on the random test split, saved as it is rather than fitted a second
time) and saved to ``models/<kind>/`` with its model card (codebook version, data hash, thresholds, the
cross-validated metrics, versions, training time); (3) ``models/best.json`` names the model the
evaluation ranked best, which ``classify.tag`` uses by default.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._cli import atomic_write_text, make_parser, run_main
from .codebook import Codebook
from .errors import ConfigError
from .evaluate import load_config
from .evaluation.crossval import HEADLINE, data_sha256, make_factory, post_groups
from .evaluation.protocol import DEFAULT_GOLD, evaluate
from .io.tables import write_table


def available_kinds() -> tuple[str, ...]:
    """Model kinds whose module is present (the transformer needs torch and transformers)."""
    import importlib.util

    kinds = ["baseline"]
    if importlib.util.find_spec("classify.learners.transformer.model") is not None and importlib.util.find_spec("torch") is not None:
        kinds.append("transformer")
    return tuple(kinds)


DEFAULT_MODELS = available_kinds()


@dataclass
class TrainResult:
    """What ``train`` did: saved model directories, metrics, and seconds per step."""

    model_dirs: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    train_seconds: dict[str, float] = field(default_factory=dict)
    best: str | None = None
    best_path: Path | None = None


def train(gold_path: str | Path = DEFAULT_GOLD, out_dir: str | Path = "models", *, models: Sequence[str] = DEFAULT_MODELS,
          seed: int = 0, configs: dict[str, dict] | None = None, folds: int = 5, repeats: int = 1,
          eval_dir: str | Path | None = "eval", evaluate_first: bool = True, cross_lingual: bool = False,
          progress: bool = False) -> TrainResult:
    """Evaluate, fit on all gold posts, and save each model kind (no printing unless ``progress``)."""
    from .gold.files import load_gold, split_of

    models = list(models)
    if not models:
        raise ConfigError("no models to train; pass --models baseline,transformer")
    codebook = Codebook.load()
    gold = split_of(load_gold(gold_path), "train")  # the test split is scored, never trained or tuned on
    result = TrainResult()
    heldout: dict[str, Any] = {}
    fitted: dict[str, Any] = {}
    if evaluate_first:
        kinds = [*models, "cue_rule"] if "cue_rule" not in models else models
        result.metrics = evaluate(gold_path, models=kinds, folds=folds, repeats=repeats, seed=seed, configs=configs,
                                  out_dir=eval_dir, progress=progress, frames_out=heldout, cross_lingual=cross_lingual,
                                  models_out=fitted)
    sha = data_sha256(Path(gold_path))
    for kind in models:
        if kind in fitted:  # the evaluation's random-test model: fitted on the same posts with the same seed
            model, seconds = fitted.pop(kind)
        else:
            if progress:
                print(f"fitting {kind} on all {len(gold)} gold posts", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            model = make_factory(kind, configs, codebook, seed)().fit(gold, gold, groups=post_groups(gold))
            seconds = time.perf_counter() - t0
        result.train_seconds[kind] = round(seconds, 1)
        model.card_["data_sha256"] = sha
        model.card_["n_posts"] = len(gold)
        if result.metrics:
            m = result.metrics["models"][kind]["summary"]
            proto = result.metrics["protocol"]
            model.card_["cv_metrics"] = {
                "protocol": f"{proto['folds']}-fold x {proto['repeats']} repeats, grouped by duplicate/translation group, 95% bootstrap intervals",
                **{f"{t} {HEADLINE[t]}": {"mean": m[t]["mean"], "ci": m[t]["ci"], "sd": m[t]["fold_sd"]} for t in HEADLINE}}
        result.model_dirs[kind] = model.save(Path(out_dir) / kind)
        if kind in heldout:  # held-out predictions: the corpus report's error rates, labels check's probabilities
            write_table(heldout[kind], result.model_dirs[kind] / "heldout.parquet")
    if result.metrics:
        ranking = [k for k in result.metrics["ranking"] if k in models]
        result.best = ranking[0] if ranking else models[0]
    else:
        result.best = models[0]
    result.best_path = Path(out_dir) / "best.json"
    atomic_write_text(result.best_path, json.dumps({"best": result.best, "ranking": result.metrics.get("ranking", []),
                                                               "data_sha256": sha}, indent=2) + "\n")
    return result


def print_summary(res: TrainResult) -> None:
    """The table the command prints: per task, each model's score with its interval, and times."""
    from .evaluation.protocol import summary_table

    if res.metrics:
        print(summary_table(res.metrics))
        for kind, cl in res.metrics.get("cross_lingual", {}).items():
            ru = cl.get("ru", {})
            if ru.get("n"):
                print(f"cross-lingual ({kind}, trained on en, scored on {ru['n']} ru posts): topics micro-F1 {ru['topics']:.3f}")
        tt = res.metrics.get("translated_transfer") or {}
        for kind, m in tt.get("models", {}).items():
            t = m["topics"]
            print(f"en -> ru ({kind}, trained on en, {tt['n_posts']} posts in English / in Russian translation): topics micro-F1 "
                  f"{t['en']['mean']:.3f} / {t['ru']['mean']:.3f}, frames macro-F1 {m['frames']['en']['mean']:.3f} / {m['frames']['ru']['mean']:.3f}")
    for kind, secs in res.train_seconds.items():
        cv = res.metrics.get("timings", {}).get(kind, {}).get("cv_seconds") if res.metrics else None
        extra = f", cross-validation {cv:.0f} s" if cv is not None else ""
        print(f"{kind}: shipped model fitted on the train split in {secs:.1f} s{extra} -> {res.model_dirs[kind]}")
    how = "ranked first by the evaluation" if res.metrics else "no evaluation: the first model listed"
    print(f"best model: {res.best} ({how}; {res.best_path})")
    if res.metrics.get("run_dir"):
        print(f"report: {res.metrics['run_dir']}/report.html")


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("python -m classify.train", __doc__)
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated model kinds: baseline, transformer")
    parser.add_argument("--gold", type=Path, default=DEFAULT_GOLD, help="gold file (JSONL with text and labels)")
    parser.add_argument("--out", type=Path, default=Path("models"), help="directory for models/<kind>/")
    parser.add_argument("--seed", type=int, default=0, help="seed for splits and models")
    parser.add_argument("--config", type=Path, default=None, help="JSON file: {kind: {hyperparameter: value}}")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    parser.add_argument("--repeats", type=int, default=1,
                        help="cross-validation repeats; 1 keeps the default run within its 30-minute budget on 2 cores, "
                             "more narrow the split-to-split noise of the cross-validation figures (the left-out-source "
                             "and random-test figures do not depend on it)")
    parser.add_argument("--eval-out", type=Path, default=Path("eval"), help="evaluation report directory")
    parser.add_argument("--no-eval", action="store_true", help="skip the cross-validated evaluation (faster; no metrics in the cards)")
    parser.add_argument("--cross-lingual", action="store_true",
                        help="also run the cross-lingual checks (each model trained on English posts only, scored on Russian "
                             "posts and translations; two more fits per model, about a sixth more time)")
    args = parser.parse_args(argv)

    def job() -> int:
        res = train(args.gold, args.out, models=[m.strip() for m in args.models.split(",") if m.strip()], seed=args.seed,
                    configs=load_config(args.config), folds=args.folds, repeats=args.repeats, eval_dir=args.eval_out,
                    evaluate_first=not args.no_eval, cross_lingual=args.cross_lingual, progress=True)
        print_summary(res)
        return 0

    return run_main(job, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
