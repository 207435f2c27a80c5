"""Speed and agreement of the REML engine against lme4 + lmerTest (a script, not a test).

Generates model frames in the layout of ``results/models/{domain}.frame.csv`` (columns y,
institution, participant, x_1..x_p: intercept, post, program, post:program, two role dummies,
centred years and its missing indicator), fits each with the project's command line
(``python -m dpo_eval.analysis.models fit``) and, when Rscript with lme4 and lmerTest is available, with
``tests/reference/lmer_crosscheck.R`` on the same file in the same run, one after the other
(alternating, ``--repeats`` times).

    python benchmarks/lmm_speed.py                # all designs, once each
    python benchmarks/lmm_speed.py --only 30000 300000 --repeats 3

Prints a Markdown table. Whole-process seconds (start of the interpreter to exit: start-up,
reading the CSV, fit, Satterthwaite df, writing the results; the median over the repeats) of the
project and of lme4, their ratio (median, and the range over the repeats), each program's own
fit-to-df seconds, peak resident memory of each process, the largest relative difference of
estimates, SEs and df (an estimate near zero is compared relative to its SE), of the variance
components, and the REML criterion difference (project minus lme4; negative = the project's
optimum is lower). For the tiny-residual designs, lme4's own deviance function
(``devFunOnly = TRUE``) is evaluated at the project's theta and compared with lme4's optimum:
``devfun rel`` = (devfun(theta_project) - lme4 optimum) / |lme4 optimum|. ``own crit at lme4``
is the project's own criterion at lme4's theta minus at its own theta (computed in this process
after the timed runs): positive = lme4's optimum is higher by the project's arithmetic too, so a
positive ``crit diff`` of that order or smaller is the two programs' rounding, not a worse
optimum. ``load`` is the
one-minute load average before and after the design (both programs run on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
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
    "300000": dict(seed=10, institutions=75000, per_institution=4),
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


GNU_TIME = shutil.which("time") or "/usr/bin/time"


def run_process(command: list[str]) -> tuple[float, float, str]:
    """Whole-process wall seconds, peak resident memory in MB and stderr of a command. The peak
    is measured by GNU time when present: a child's ru_maxrss as seen by this process would
    start from this (large) process's own peak, which Linux carries across fork and exec."""
    wrapped = Path(GNU_TIME).exists()
    started = time.perf_counter()
    process = subprocess.Popen([GNU_TIME, "-f", "peak-kb %M", *command] if wrapped else command,
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command[0]} failed: {stderr}")
    peak_kb = float(re.findall(r"peak-kb (\d+)", stderr)[-1]) if wrapped else usage.ru_maxrss
    return seconds, peak_kb / 1024.0, stderr


def run_project(frame_csv: Path, out_csv: Path) -> dict:
    """The project's command line: whole-process and fit seconds, peak memory in MB."""
    seconds, memory, stderr = run_process([sys.executable, "-m", "dpo_eval.analysis.models", "fit", str(frame_csv),
                                           str(out_csv)])
    fit = float(re.search(r"fit and Satterthwaite df ([0-9.]+) s", stderr).group(1))
    return {"whole": seconds, "fit": fit, "memory": memory}


def run_lme4(frame_csv: Path, out_csv: Path, theta: str | None) -> dict:
    """lme4 + lmerTest (Rscript): whole-process seconds, its fit-to-df seconds, peak memory."""
    command = ["Rscript", str(R_SCRIPT), str(frame_csv), str(out_csv)]
    if theta:
        command.append(theta)
    seconds, memory, _ = run_process(command)
    table = pd.read_csv(out_csv, keep_default_na=False)
    return {"whole": seconds, "fit": value(table, "seconds"), "memory": memory, "table": table}


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


def own_criterion_at_lme4(frame: pd.DataFrame, ours: pd.DataFrame, theirs: pd.DataFrame) -> float:
    """The project's REML criterion at lme4's theta (from its variance components) minus the
    criterion at the project's own theta."""
    sys.path.insert(0, str(REPO / "src"))
    from dpo_eval.analysis.lmm import NestedLmm, RandomTerm

    design = [c for c in frame.columns if c.startswith("x_")]
    institution = frame["institution"].astype(str).to_numpy()
    participant = institution + ":" + frame["participant"].astype(str).to_numpy()
    ones = np.ones((len(frame), 1))
    model = NestedLmm(frame["y"].to_numpy(), frame[design].to_numpy(),
                      [RandomTerm("institution", institution, ones), RandomTerm("institution:participant", participant, ones)])
    names = ("institution", "institution:participant")
    residual = value(theirs, "variance", "Residual")
    lme4_theta = np.sqrt([value(theirs, "variance", name) / residual for name in names])
    own_theta = np.array([value(ours, "theta", name) for name in names])
    return model.reml_criterion(lme4_theta) - model.reml_criterion(own_theta)


HEADER = ("| design | rows | participants | project s | lme4 s | ratio | ratio range | project fit s | lme4 fit s "
          "| project MB | lme4 MB | estimates | SE | df | variances | crit diff | devfun rel | own crit at lme4 | load |")


def benchmark_design(name: str, folder: Path, repeats: int, have_r: bool) -> str:
    """One design: the frame written once, both programs run ``repeats`` times alternately;
    a Markdown table row."""
    load_before = os.getloadavg()[0]
    frame = make_frame(**DESIGNS[name])
    frame_csv = folder / f"{name}.csv"
    frame.to_csv(frame_csv, index=False, float_format="%.17g")
    ours_csv, theirs_csv = folder / f"{name}.project.csv", folder / f"{name}.lme4.csv"
    project, lme4 = [], []
    for _ in range(repeats):
        project.append(run_project(frame_csv, ours_csv))
        ours = pd.read_csv(ours_csv, keep_default_na=False)
        if have_r:
            theta = None
            if name in TINY:
                theta = ",".join(f"{value(ours, 'theta', t):.17g}" for t in ("institution", "institution:participant"))
            lme4.append(run_lme4(frame_csv, theirs_csv, theta))
    median = lambda runs, key: float(np.median([r[key] for r in runs]))  # noqa: E731
    cells = [name, f"{len(frame):,}", f"{frame['participant'].nunique():,}", f"{median(project, 'whole'):.2f}"]
    if not have_r:
        cells += ["-"] * 5 + [f"{median(project, 'fit'):.2f}", "-", f"{max(r['memory'] for r in project):.0f}"]
        cells += ["-"] * 8
    else:
        ratios = [p["whole"] / r["whole"] for p, r in zip(project, lme4)]
        theirs = lme4[-1]["table"]
        d = compare(ours, theirs)
        devfun = ""
        if name in TINY:
            optimum = value(theirs, "reml_criterion")
            devfun = f"{(value(theirs, 'devfun_at_theta') - optimum) / abs(optimum):.1e}"
        cells += [f"{median(lme4, 'whole'):.2f}", f"{float(np.median(ratios)):.2f}",
                  f"{min(ratios):.2f}-{max(ratios):.2f}", f"{median(project, 'fit'):.2f}", f"{median(lme4, 'fit'):.2f}",
                  f"{max(r['memory'] for r in project):.0f}", f"{max(r['memory'] for r in lme4):.0f}",
                  f"{d['estimate']:.1e}", f"{d['std_error']:.1e}", f"{d['df']:.1e}", f"{d['variance']:.1e}",
                  f"{d['crit_diff']:.2e}", devfun, f"{own_criterion_at_lme4(frame, ours, theirs):.2e}"]
    cells.append(f"{load_before:.1f}-{os.getloadavg()[0]:.1f}")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=list(DESIGNS), help="designs to run (default all)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each program per design (median)")
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
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"{os.cpu_count()} CPUs; at the start: {uptime}")
    if not have_r:
        print("Rscript not found: no comparison with lme4")
    print(HEADER)
    print("|" + " --- |" + " ---: |" * (HEADER.count("|") - 2))
    with tempfile.TemporaryDirectory() as folder:
        for name in args.only or list(DESIGNS):
            print(benchmark_design(name, Path(folder), args.repeats, have_r), flush=True)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"at the end: {uptime}")


if __name__ == "__main__":
    main()
