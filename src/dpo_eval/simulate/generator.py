"""One simulated study, end to end: the order in which the generator stream is drawn.

A single ``numpy`` generator seeded with ``spec.seed`` feeds every draw, in this order: the
schools, the participants, who answers which wave, the latent values, then wave by wave the
submissions and their export, and last the needs assessment. Changing the order changes every
file of every seed; the bundled demo (``tests/test_simulate.py``) holds it fixed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dpo_eval.core.codebook import Codebook
from dpo_eval.simulate.design import SimulationSpec, assign_waves, institutions, participants
from dpo_eval.simulate.exports import Exports
from dpo_eval.simulate.needs import needs_assessment
from dpo_eval.simulate.responses import latent_values, submissions
from dpo_eval.simulate.truth import ground_truth, skipped_cells, submission_ledger, write_truth
from dpo_eval.core.study import WAVES


def generate(spec: SimulationSpec, codebook: Codebook, out: Path, score_truth: bool = True) -> dict:
    """Write the raw exports of one study to ``out``; returns its ground truth."""
    rng = np.random.default_rng(spec.seed)
    schools = institutions(spec, rng)
    people = participants(spec, schools, rng)
    assign_waves(people, spec.contamination, rng)
    latent = latent_values(spec, people, schools, rng)
    names = {s["id"]: s["name"] for s in schools}
    out.mkdir(parents=True, exist_ok=True)
    exports = Exports(codebook, rng, out)
    exports.registry(schools)
    recorded: dict = {"submissions": [], "out_of_range": [], "skipped_cells": {}}
    typo_made: set[str] = set()
    for wave in WAVES:
        subs = submissions(people, wave, latent, spec, codebook, rng, typo_made)
        recorded["submissions"] += submission_ledger(wave, subs)
        recorded["skipped_cells"][wave] = skipped_cells(subs)
        if wave == "pre":
            exports.pre(subs, names)
        elif wave == "post":
            exports.post(subs, names)
        else:
            recorded["out_of_range"] = exports.followup(subs, names,
                                                        spec.contamination.out_of_range_cells)
    rows, recorded["needs"] = needs_assessment(spec.n_needs, codebook, schools, people, rng)
    exports.needs(rows)
    return ground_truth(spec, codebook, people, schools, recorded, score_truth)


def simulate_study(spec: SimulationSpec, codebook: Codebook, out: Path, truth_path: Path,
                   score_truth: bool = True) -> dict:
    """Write the raw exports of one simulated study to ``out`` and its ground truth to
    ``truth_path``. ``score_truth=False`` skips the Monte Carlo of the true effects on the
    score metric (for simulation studies that compute it once for many seeds)."""
    truth = generate(spec, codebook, Path(out), score_truth)
    write_truth(truth, truth_path)
    return truth
