"""Time the disclosure control of the whole release on large synthetic studies.

    python benchmarks/disclosure_speed.py --schools 1000 10000

For each size: a study of that many schools (teams of 1 to 8 respondents per domain and wave,
municipalities of 10 schools, two cohorts, a needs survey), every school report's cells built
and controlled with dpo_eval.release.cells.control_release (the school reports; the evaluation
report adds a fixed ~1,500 cells), and, up to --audit-max schools, the same release checked by
the independent pairwise audit of the tests (tests/release_audit.py, quadratic in the groups of a
domain and wave) side by side: the violations both find (0 after control) and their times.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

from dpo_eval.release.manifest import manifest  # noqa: E402
from dpo_eval.release.cells import control_release  # noqa: E402

DOMAINS = ("universal", "professional", "subject_methodical", "communication")


def study(schools: int, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """scores, needs and registry of a synthetic study of ``schools`` schools."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"S{i:05d}" for i in range(schools)])
    registry = pd.DataFrame({"id": ids, "municipality": [f"M{i // 10:04d}" for i in range(schools)], "type": "school",
                             "settlement": np.where(rng.random(schools) < 0.5, "urban", "rural")})
    cohort = np.where(rng.random(schools) < 0.5, "program", "comparison")
    size = rng.integers(1, 9, schools)
    people = pd.DataFrame({"participant_key": [f"{i}-{k}" for i, s in zip(ids, size) for k in range(s)],
                           "institution": np.repeat(ids, size), "cohort": np.repeat(cohort, size),
                           "role": "deputy", "settlement": np.repeat(registry["settlement"].to_numpy(), size)})
    frames = []
    for wave, keep in (("pre", 0.95), ("post", 0.85), ("followup", 0.4)):
        answered = people[rng.random(len(people)) < keep]
        for domain in DOMAINS:
            frames.append(answered.assign(domain=domain, wave=wave, score=rng.integers(10, 50, len(answered)) / 10))
    scores = pd.concat(frames, ignore_index=True)
    respondents = rng.choice(ids, 3 * schools)
    needs = pd.DataFrame({"respondent_key": [f"R{i}" for i in range(len(respondents))], "stakeholder": "school",
                          "institution": respondents})
    needs = needs.merge(pd.DataFrame({"area": ["a1", "a2"]}), how="cross").assign(
        value=lambda t: rng.integers(1, 6, len(t)).astype(float))
    return scores, needs, registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--audit-max", type=int, default=1000)
    args = parser.parse_args()
    from release_audit import audit

    print("| schools | cells | shown | hidden | control (s) | audit violations | audit (s) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for schools in args.schools:
        scores, needs, registry = study(schools)
        started = time.perf_counter()
        cells = control_release(scores, needs, registry, {}, list(DOMAINS[:3]), [], 5)
        elapsed = time.perf_counter() - started
        printed = cells[cells["printed"]]
        shown = int((printed["status"] == "shown").sum())
        audit_text = ("—", "—")
        if schools <= args.audit_max:
            with tempfile.TemporaryDirectory() as folder:
                results = Path(folder)
                (results / "reports").mkdir()
                (results / "clean").mkdir()
                manifest(cells).to_csv(results / "reports" / "released_cells.csv", index=False)
                scores.to_csv(results / "clean" / "scores.csv", index=False)
                registry.to_csv(results / "clean" / "institutions.csv", index=False)
                needs.to_csv(results / "clean" / "needs.csv", index=False)
                started = time.perf_counter()
                bad, _ = audit(results, 5)
                audit_text = (str(len(bad)), f"{time.perf_counter() - started:.1f}")
        print(f"| {schools} | {len(printed)} | {shown} | {len(printed) - shown} | {elapsed:.1f} | "
              f"{audit_text[0]} | {audit_text[1]} |", flush=True)


if __name__ == "__main__":
    main()
