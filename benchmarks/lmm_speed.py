"""Speed and agreement of the REML engine against lme4 + lmerTest (a script, not a test).

Generates model frames in the layout of ``results/models/{domain}.frame.csv`` (columns y,
institution, participant, x_1..x_p: intercept, post, program, post:program, two role dummies,
centred years and its missing indicator), fits each with the project's command line
(``python -m dpo_eval.models fit``) and, when Rscript with lme4 and lmerTest is available, with
``tests/reference/lmer_crosscheck.R`` on the same file in the same run, one after the other.

    python benchmarks/lmm_speed.py                # all designs
    python benchmarks/lmm_speed.py --only 300 3000

Columns: project and lme4 seconds (fit to Satterthwaite df, as each program reports it: data
loading and interpreter start-up excluded), their ratio, the project's peak resident memory,
the largest relative difference of estimates, SEs and df (an estimate near zero is compared
relative to its SE), of the variance components, and the REML criterion difference (project
minus lme4; negative = the project's optimum is lower). For the tiny-residual designs, lme4's
own deviance function (``devFunOnly = TRUE``) is evaluated at the project's theta and compared
with lme4's optimum: ``devfun rel`` = (devfun(theta_project) - lme4 optimum) / |lme4 optimum|.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
R_SCRIPT = REPO / "tests" / "reference" / "lmer_crosscheck.R"


def make_frame(seed: int, institutions: int, per_institution: float, *, sd_institution: float = 0.3,
               sd_participant: float = 0.5, sd_residual: float = 0.45, level: float = 3.0,
               missing_post: float = 0.15, fixed_size: bool = False, domains: int = 0,
               sd_domain: float = 0.3) -> pd.DataFrame:
    """Two waves of a pre/post design: participants nested in institutions, the program cohort
    in half of the institutions, some post scores missing. With ``domains`` > 0, every
    participant has scores in that many domains (column ``domain``) with a participant-by-domain
    random intercept (the combined model's third level)."""
    rng = np.random.default_rng(seed)
    sizes = (np.full(institutions, int(per_institution)) if fixed_size
             else np.maximum(1, rng.poisson(per_institution, institutions)))
    inst_of_part = np.repeat(np.arange(institutions), sizes)
    n_part = len(inst_of_part)
    program = (inst_of_part % 2 == 0).astype(float)
    role = rng.choice(3, n_part, p=[0.5, 0.3, 0.2])
    years = rng.gamma(3.0, 3.0, n_part)
    years_missing = rng.random(n_part) < 0.1
    u_inst = rng.normal(0, sd_institution, institutions)
    u_part = rng.normal(0, sd_participant, n_part)
    rows = []
    u_domain = rng.normal(0, sd_domain, (max(domains, 1), n_part)) if domains else np.zeros((1, n_part))
    for post, domain in [(post, domain) for post in (0.0, 1.0) for domain in range(max(domains, 1))]:
        keep = np.ones(n_part, bool) if post == 0 else rng.random(n_part) >= missing_post
        idx = np.flatnonzero(keep)
        mean = (level + 0.1 * post + 0.05 * program[idx] + 0.2 * post * program[idx] + 0.1 * domain
                + 0.1 * (role[idx] == 1) - 0.05 * (role[idx] == 2) + 0.01 * np.where(years_missing[idx], 0, years[idx]))
        y = (mean + u_inst[inst_of_part[idx]] + u_part[idx] + u_domain[domain, idx]
             + rng.normal(0, sd_residual, len(idx)))
        years_c = np.where(years_missing[idx], 0.0, years[idx] - years[~years_missing].mean())
        rows.append(pd.DataFrame({
            "y": y, "institution": [f"S{i:05d}" for i in inst_of_part[idx]],
            "participant": [f"P{j:06d}" for j in idx],
            "x_1": 1.0, "x_2": post, "x_3": program[idx], "x_4": post * program[idx],
            "x_5": (role[idx] == 1).astype(float), "x_6": (role[idx] == 2).astype(float),
            "x_7": years_c, "x_8": years_missing[idx].astype(float)}))
        if domains:
            rows[-1]["domain"] = f"D{domain}"
            for d in range(1, domains):
                rows[-1][f"x_{8 + d}"] = float(domain == d)
    frame = pd.concat(rows, ignore_index=True)
    order = ["institution", "participant", *(["domain"] if domains else []), "x_2"]
    return frame.sort_values(order).reset_index(drop=True)


DESIGNS = {
    "300": dict(seed=1, institutions=75, per_institution=4),
    "3000": dict(seed=2, institutions=750, per_institution=4),
    "30000": dict(seed=3, institutions=7500, per_institution=4),
    "20x1500": dict(seed=4, institutions=20, per_institution=1500, fixed_size=True),
    "tiny-residual": dict(seed=5, institutions=150, per_institution=4, sd_residual=1e-3, level=3.0),
    "thousands": dict(seed=6, institutions=150, per_institution=4, sd_institution=300.0,
                      sd_participant=500.0, sd_residual=5.0, level=3000.0),
}
TINY = {"tiny-residual", "thousands"}
# Small frames whose lme4 results are stored for the tests (tests/reference/engine/): written by
# `python benchmarks/lmm_speed.py --write-test-frames`, fitted by tests/reference/engine_reference.R.
TEST_FRAMES = {
    "small": DESIGNS["300"],
    "tiny-residual": DESIGNS["tiny-residual"],
    "thousands": DESIGNS["thousands"],
    "large-groups": dict(seed=7, institutions=4, per_institution=150, fixed_size=True),
    "zero-participant-variance": dict(seed=8, institutions=60, per_institution=4, sd_participant=0.0),
    "three-level": dict(seed=9, institutions=30, per_institution=4, domains=3),
}


def run_project(frame_csv: Path, out_csv: Path) -> tuple[float, float]:
    """Fit seconds (as printed by the command line) and peak resident memory in MB."""
    process = subprocess.Popen([sys.executable, "-m", "dpo_eval.models", "fit", str(frame_csv), str(out_csv)],
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"project fit failed: {stderr}")
    seconds = float(re.search(r"fit and Satterthwaite df ([0-9.]+) s", stderr).group(1))
    return seconds, usage.ru_maxrss / 1024.0


def run_lme4(frame_csv: Path, out_csv: Path, theta: str | None) -> pd.DataFrame:
    command = ["Rscript", str(R_SCRIPT), str(frame_csv), str(out_csv)]
    if theta:
        command.append(theta)
    subprocess.run(command, check=True, capture_output=True)
    return pd.read_csv(out_csv, keep_default_na=False)


def value(table: pd.DataFrame, quantity: str, term: str = "") -> float:
    return float(table[(table["quantity"] == quantity) & (table["term"] == term)]["value"].iloc[0])


def compare(ours: pd.DataFrame, theirs: pd.DataFrame) -> dict:
    terms = ours.loc[ours["quantity"] == "estimate", "term"].tolist()
    diffs = {"estimate": 0.0, "std_error": 0.0, "df": 0.0}
    for term in terms:
        se = value(theirs, "std_error", term)
        for quantity in diffs:
            a, b = value(ours, quantity, term), value(theirs, quantity, term)
            scale = max(abs(b), se) if quantity == "estimate" else abs(b)
            diffs[quantity] = max(diffs[quantity], abs(a - b) / scale)
    variance = 0.0
    for term in ("institution", "institution:participant", "Residual"):
        a, b = value(ours, "variance", term), value(theirs, "variance", term)
        variance = max(variance, abs(a - b) / max(abs(b), 1e-12 * value(theirs, "variance", "Residual")))
    return {**diffs, "variance": variance,
            "crit_diff": value(ours, "reml_criterion") - value(theirs, "reml_criterion")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=list(DESIGNS), help="designs to run (default all)")
    parser.add_argument("--write-test-frames", action="store_true",
                        help="write the tests' frames to tests/reference/engine/ and stop")
    args = parser.parse_args()
    if args.write_test_frames:
        folder = REPO / "tests" / "reference" / "engine"
        folder.mkdir(exist_ok=True)
        for name, design in TEST_FRAMES.items():
            make_frame(**design).to_csv(folder / f"{name}.csv", index=False, float_format="%.17g")
        return
    have_r = shutil.which("Rscript") is not None
    print(f"{'design':<14}{'rows':>7}{'particip.':>10}{'project s':>10}{'lme4 s':>8}{'ratio':>7}"
          f"{'peak MB':>9}{'est':>9}{'SE':>9}{'df':>9}{'var':>9}{'crit diff':>11}{'devfun rel':>11}")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.only or list(DESIGNS):
            frame = make_frame(**DESIGNS[name])
            frame_csv = Path(folder) / f"{name}.csv"
            frame.to_csv(frame_csv, index=False, float_format="%.17g")
            ours_csv = Path(folder) / f"{name}.project.csv"
            seconds, memory = run_project(frame_csv, ours_csv)
            ours = pd.read_csv(ours_csv, keep_default_na=False)
            line = (f"{name:<14}{len(frame):>7}{frame['participant'].nunique():>10}{seconds:>10.3f}")
            if have_r:
                theta = None
                if name in TINY:
                    theta = ",".join(f"{value(ours, 'theta', t):.17g}" for t in ("institution", "institution:participant"))
                theirs = run_lme4(frame_csv, Path(folder) / f"{name}.lme4.csv", theta)
                r_seconds = value(theirs, "seconds")
                d = compare(ours, theirs)
                devfun = ""
                if theta:
                    optimum = value(theirs, "reml_criterion")
                    devfun = f"{(value(theirs, 'devfun_at_theta') - optimum) / abs(optimum):.1e}"
                line += (f"{r_seconds:>8.3f}{seconds / r_seconds:>7.2f}{memory:>9.0f}{d['estimate']:>9.1e}"
                         f"{d['std_error']:>9.1e}{d['df']:>9.1e}{d['variance']:>9.1e}{d['crit_diff']:>11.2e}{devfun:>11}")
            else:
                line += f"{'-':>8}{'-':>7}{memory:>9.0f}  (Rscript not found: no comparison)"
            print(line, flush=True)


if __name__ == "__main__":
    main()
