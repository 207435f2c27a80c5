"""Simulation study of the primary estimand (not a test): coverage of the 95% confidence
intervals of the difference-in-differences and the type I error at a true zero effect.

Each replicate is a full study written by the seeded generator (60 schools, ~250 participants,
the demo design) and analysed by the pipeline's own functions: ingest, scale scores and the
primary mixed model with Satterthwaite inference, for the three competency domains.

    python benchmarks/coverage.py --studies 500 --workers 2

prints, for the generator's effects and for a null study (effect scale 0), the share of
intervals that cover the true value and the share of p < 0.05, per domain and overall.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# One BLAS thread per worker (set before numpy loads; see dpo_eval/__init__.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from dpo_eval import models  # noqa: E402
from dpo_eval.codebook import load_codebook  # noqa: E402
from dpo_eval.ingest import ingest_competencies, load_registry  # noqa: E402
from dpo_eval.pseudonymise import DEMO_SECRET  # noqa: E402
from dpo_eval.scoring import scale_scores  # noqa: E402
from dpo_eval.simulate import Contamination, SimulationSpec, simulate_study, true_score_effects  # noqa: E402

DOMAINS = ("universal", "professional", "subject_methodical")
COVARIATES = ["role", "years_in_management"]


def config_for(raw: Path) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    for wave in config["waves"].values():
        wave["files"] = [str(raw / Path(f).name) for f in wave["files"]]
    config["registry"] = str(raw / "institutions.csv")
    config["codebook"] = str(REPO / "config" / "codebook.yaml")
    return config


def replicate(job: tuple[int, float, float]) -> list[dict]:
    seed, effect_scale, contamination = job
    codebook = load_codebook(REPO / "config" / "codebook.yaml")
    spec = SimulationSpec(seed=seed, contamination=Contamination().scaled(contamination), n_needs=10)
    spec.did = {d: v * effect_scale for d, v in spec.did.items()}
    with tempfile.TemporaryDirectory() as folder:
        raw = Path(folder) / "raw"
        simulate_study(spec, codebook, raw, Path(folder) / "truth.json", score_truth=False)
        config = config_for(raw)
        result, _ = ingest_competencies(config, codebook, load_registry(config["registry"]),
                                        DEMO_SECRET.encode())
    scores = scale_scores(result.responses, {d: len(codebook.items_of(d)) for d in codebook.domains},
                          config["analysis"]["min_item_share"])
    rows = []
    for domain in DOMAINS:
        frame = models.model_frame(scores, domain, COVARIATES)
        fit = models.fit_primary(frame, COVARIATES)
        did = next(t for t in fit["fixed_effects"] if t["term"] == models.DID_TERM)
        rows.append({"seed": seed, "effect_scale": effect_scale, "domain": domain,
                     **{k: did[k] for k in ("estimate", "conf_low", "conf_high", "p_value", "df")},
                     "singular": fit["checks"]["singular"], "converged": fit["checks"]["converged"]})
    return rows


def summarise(table: pd.DataFrame, truth: dict[str, float], label: str) -> None:
    table = table.assign(truth=table["domain"].map(truth))
    table["covered"] = (table["conf_low"] < table["truth"]) & (table["truth"] < table["conf_high"])
    table["rejected"] = table["p_value"] < 0.05
    n = table["seed"].nunique()
    print(f"\n{label}: {n} studies x {len(DOMAINS)} domains")
    print(f"{'domain':<20}{'true DiD':>10}{'mean est.':>11}{'coverage':>10}{'p<0.05':>9}{'singular':>10}")
    for domain, group in table.groupby("domain", sort=False):
        print(f"{domain:<20}{group['truth'].iloc[0]:>10.4f}{group['estimate'].mean():>11.4f}"
              f"{group['covered'].mean():>10.3f}{group['rejected'].mean():>9.3f}{group['singular'].mean():>10.3f}")
    cover = table["covered"].mean()
    se = np.sqrt(cover * (1 - cover) / len(table))
    print(f"{'all':<20}{'':>10}{'':>11}{cover:>10.3f}{table['rejected'].mean():>9.3f}"
          f"{table['singular'].mean():>10.3f}   (coverage SE {se:.3f}; non-converged fits: "
          f"{int((~table['converged']).sum())})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=500, help="studies per condition (default 500)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=100_000)
    parser.add_argument("--contamination", type=float, default=0.0,
                        help="defect-rate multiplier of the generator (0 = clean exports)")
    parser.add_argument("--out", type=Path, help="optional CSV of every replicate")
    args = parser.parse_args()
    codebook = load_codebook(REPO / "config" / "codebook.yaml")
    started = time.time()
    results = {}
    for label, scale in (("effects of the generator", 1.0), ("null study (effect scale 0)", 0.0)):
        spec = SimulationSpec(seed=args.first_seed)
        spec.did = {d: v * scale for d, v in spec.did.items()}
        truth = {d: v for d, v in true_score_effects(spec, codebook, n=400_000)["did"].items() if d in DOMAINS}
        jobs = [(args.first_seed + i, scale, args.contamination) for i in range(args.studies)]
        with ProcessPoolExecutor(args.workers) as pool:
            rows = [row for batch in pool.map(replicate, jobs, chunksize=4) for row in batch]
        table = pd.DataFrame(rows)
        results[label] = table
        summarise(table, truth, label)
    print(f"\nelapsed {time.time() - started:.0f} s with {args.workers} workers")
    if args.out:
        pd.concat([t.assign(condition=l) for l, t in results.items()]).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
