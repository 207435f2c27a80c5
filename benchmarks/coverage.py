"""Simulation study of the primary estimand (not a test): coverage of the 95% confidence
intervals of the difference-in-differences and the type I error at a true zero effect.

The same study as the workflow ``workflow/simulation.smk`` (target ``simulation``, one job per
batch of studies; see README.md), in one process pool: each replicate is a full study written by
the seeded generator (60 schools, ~250 participants, the demo design) and analysed by the
pipeline's own functions (``dpo_eval.simulation_studies.coverage``).

    python benchmarks/coverage.py --studies 500 --workers 2

prints the README's table: for the generator's effects and for a null study (effect scale 0),
the share of intervals that cover the true value and the share of p < 0.05, per domain and
overall.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

# One BLAS thread per worker (set before numpy loads; see dpo_eval/__init__.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import pandas as pd  # noqa: E402

from dpo_eval.simulation_studies import coverage as study  # noqa: E402

CONDITIONS = {"effects": 1.0, "null": 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=500, help="studies per condition (default 500)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=100_000)
    parser.add_argument("--contamination", type=float, default=0.0,
                        help="defect-rate multiplier of the generator (0 = clean exports)")
    parser.add_argument("--out", type=Path, help="optional CSV of every replicate")
    args = parser.parse_args()
    config = study.load_pipeline_config(REPO / "config" / "config.yaml")
    codebook = REPO / "config" / "codebook.yaml"
    started = time.time()
    tables, truth = [], {}
    for condition, scale in CONDITIONS.items():
        truth[condition] = study.condition_truth(scale, args.first_seed, codebook)
        analyse = partial(study.replicate_batch, condition, scale, base_config=config,
                          codebook_path=codebook, contamination=args.contamination)
        with ProcessPoolExecutor(args.workers) as pool:
            tables += pool.map(analyse, [[args.first_seed + i] for i in range(args.studies)], chunksize=4)
    replicates = pd.concat(tables, ignore_index=True)
    print(study.markdown_table(study.coverage_summary(replicates, truth)))
    print(f"elapsed {time.time() - started:.0f} s with {args.workers} workers")
    if args.out:
        replicates.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
