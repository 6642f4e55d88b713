"""Cross-validated evaluation of every model kind, side by side, with intervals.

    python -m classify.evaluate --models baseline,transformer,cue_rule --folds 5 --repeats 3

Protocol: repeated K-fold with multi-label iterative stratification; posts of one group (copies of
a post in several dumps, a post and its translation) always share a fold. Each model, its
thresholds and any tuning are fitted inside the training folds only (a fresh model per fold), and
out-of-fold predictions are kept. Point estimates are the mean over repeats of the score of the
pooled out-of-fold predictions; the fold-to-fold spread is the standard deviation of per-fold
scores; 95% intervals come from a bootstrap over groups; model differences from a paired bootstrap
on the same resamples. The cue rule runs through the same protocol as the reference system.

Beyond cross-validation (all on the train split of the gold, the only data that chooses): leave one
source out (fit on the other sources, score the left-out one). Then the model fit on the whole train
split scores the random test rounds (split ``test``), per source, with paired differences against the
cue rule; those scores are reported, never used to choose (eval/SELECTION.md states the rule).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ._cli import make_parser, run_main
from .errors import ConfigError
from .evaluation.protocol import DEFAULT_GOLD, evaluate, summary_table
from .evaluation.transfer import DEFAULT_TRANSLATIONS


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("python -m classify.evaluate", __doc__)
    parser.add_argument("--gold", type=Path, default=DEFAULT_GOLD, help="gold file (JSONL)")
    parser.add_argument("--models", default="baseline,transformer,cue_rule", help="comma-separated model kinds")
    parser.add_argument("--folds", type=int, default=5, help="folds per repeat")
    parser.add_argument("--repeats", type=int, default=2, help="repeats of K-fold with different split seeds")
    parser.add_argument("--seed", type=int, default=0, help="first split seed and model seed")
    parser.add_argument("--config", type=Path, default=None, help="JSON file: {kind: {hyperparameter: value}}")
    parser.add_argument("--out", type=Path, default=Path("eval"), help="report directory (run-id/ and latest/)")
    parser.add_argument("--translations", type=Path, default=DEFAULT_TRANSLATIONS,
                        help="Russian translations of English gold posts for the English-to-Russian transfer check of --cross-lingual (skipped if absent)")
    parser.add_argument("--cross-lingual", action="store_true",
                        help="also run the cross-lingual checks: each model trained on English posts only, scored on the "
                             "Russian posts and on Russian translations of held-out English posts (two more fits per model)")
    args = parser.parse_args(argv)

    def job() -> int:
        configs = load_config(args.config)
        res = evaluate(args.gold, models=[m.strip() for m in args.models.split(",") if m.strip()], folds=args.folds,
                       repeats=args.repeats, seed=args.seed, configs=configs, out_dir=args.out, progress=True,
                       translations_path=args.translations, cross_lingual=args.cross_lingual)
        print(summary_table(res))
        print(f"report: {res.get('run_dir')}")
        return 0

    return run_main(job, debug=args.debug)


def load_config(path: Path | None) -> dict[str, dict]:
    """Read ``--config`` (JSON ``{kind: {param: value}}``)."""
    if path is None:
        return {}
    try:
        cfg = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:line {exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(cfg, dict) or not all(isinstance(v, dict) for v in cfg.values()):
        raise ConfigError(f"{path}: expected a JSON object {{kind: {{parameter: value}}}}")
    return cfg



if __name__ == "__main__":
    sys.exit(main())
