"""The ground truth of a simulated study: what the tests compare the pipeline against.

Owns the true effects on the scale-score metric (rounding and clipping bend the scale, so they
are computed by Monte Carlo with common random numbers and stored next to the latent ones), the
ledger of submissions (each row of each file: the true code, its typed form and defects, whether
it is the kept one of its participant, careless answering, skipped items), the counts per wave,
the matched pairs, and the truth JSON itself.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from dpo_eval.core.codebook import Codebook
from dpo_eval.simulate.design import COMPETENCY_DOMAINS, SimulationSpec
from dpo_eval.simulate.exports import FILES
from dpo_eval.simulate.responses import keyed_scale_score, responses_from_latent
from dpo_eval.core.study import COHORTS, WAVES


def true_score_effects(spec: SimulationSpec, codebook: Codebook, n: int = 200_000) -> dict:
    """True effects on the scale-score metric, by Monte Carlo with common random numbers.

    Returns, per domain, the difference-in-differences of expected scale scores (program minus
    comparison, post minus pre), and the response shift (then minus pre) per cohort.
    """
    rng = np.random.default_rng([spec.seed, 7])
    total_sd = np.sqrt(spec.sd_municipality**2 + spec.sd_institution**2
                       + spec.sd_participant**2 + spec.sd_occasion**2)
    did, shift = {}, {}
    for domain, effect in spec.did.items():
        items = codebook.items_of(domain)
        base = spec.baseline + rng.normal(0.0, total_sd, n)
        noise_seed = int(rng.integers(2**31))

        # The retrospective rating carries extra latent noise (see responses.latent_values).
        then_noise = rng.normal(0.0, spec.sd_occasion / 2, n)

        def mean_score(shift_value: float, extra: np.ndarray | float = 0.0) -> float:
            # The same item noise for every condition: differences are then nearly noise-free.
            answers = responses_from_latent(base + shift_value + extra, items, spec.sd_item,
                                            np.random.default_rng(noise_seed))
            return float(keyed_scale_score(answers, items).mean())

        pre = mean_score(0.0)
        did[domain] = round((mean_score(spec.time_effect + effect) - pre)
                            - (mean_score(spec.time_effect) - pre), 4)
        if domain in COMPETENCY_DOMAINS:
            shift[domain] = {cohort: round(mean_score(-value, then_noise) - pre, 4)
                             for cohort, value in spec.response_shift.items()}
    return {"did": did, "response_shift": shift}


def _complete(sub: dict) -> bool:
    return all(v is not None for v in sub["answers"].values())


def submission_ledger(wave: str, subs: list[dict]) -> list[dict]:
    """Ground truth per submission, with the row number a spreadsheet would show. A participant's
    kept submission is the latest complete one (the latest one when none is complete)."""
    latest_complete: dict[str, int] = {}
    for index, sub in enumerate(subs):
        previous = latest_complete.get(sub["person"]["code"])
        if previous is None or _complete(sub) or not _complete(subs[previous]):
            latest_complete[sub["person"]["code"]] = index
    return [{
        "wave": wave, "file": FILES[wave], "row": index + 2, "code": sub["person"]["code"],
        "typed_code": sub["typed"], "code_defects": sub["defects"],
        "institution": sub["person"]["institution"], "cohort": sub["person"]["cohort"],
        "kept": latest_complete[sub["person"]["code"]] == index, "careless": sub["careless"],
        "skipped": sum(v is None for v in sub["answers"].values()),
    } for index, sub in enumerate(subs)]


def skipped_cells(subs: list[dict]) -> int:
    """Blank item cells of a wave's file."""
    return sum(v is None for s in subs for v in s["answers"].values())


def wave_counts(ledger: list[dict]) -> dict:
    """Rows, duplicates, participants, careless and near-miss codes per wave (kept rows only
    for the last three), participants per cohort."""
    counts = {}
    for wave in WAVES:
        rows = [s for s in ledger if s["wave"] == wave]
        counts[wave] = {
            "rows": len(rows),
            "duplicates": sum(not s["kept"] for s in rows),
            "participants": len({s["code"] for s in rows}),
            "straightlining": sum(s["careless"] == "straightlining" for s in rows if s["kept"]),
            "speeding": sum(s["careless"] == "speeding" for s in rows if s["kept"]),
            "near_miss_codes": sum("typo" in s["code_defects"] for s in rows if s["kept"]),
            "by_cohort": {cohort: len({s["code"] for s in rows if s["cohort"] == cohort})
                          for cohort in COHORTS},
        }
    return counts


def _spec_and_non_invariance(spec: SimulationSpec, codebook: Codebook) -> tuple[dict, dict]:
    """The spec as stored in the truth, and the injected non-invariance apart from it. Only a
    study with injected non-invariance records it: the demo's truth stays as it was."""
    spec_dict = asdict(spec)
    non_invariance = spec_dict.pop("intercept_shift")
    extra = {"non_invariance": {
        "wave": "post", "intercept_shift": non_invariance,
        "domain": {i.id: i.domain for i in codebook.items if i.id in non_invariance}}
    } if non_invariance else {}
    return spec_dict, extra


def ground_truth(spec: SimulationSpec, codebook: Codebook, people: list[dict], schools: list[dict],
                 recorded: dict, score_truth: bool = True) -> dict:
    """The truth JSON of a study; ``recorded`` holds what the writing recorded (``submissions``,
    ``out_of_range``, ``skipped_cells``, ``needs``). ``score_truth=False`` leaves the
    score-metric effects out (None)."""
    present = {w: {p["code"] for p in people if p["waves"][w]} for w in WAVES}
    effects = (true_score_effects(spec, codebook) if score_truth
               else {"did": None, "response_shift": None})
    spec_dict, extra = _spec_and_non_invariance(spec, codebook)
    return {
        **extra,
        "generator": "dpo_eval.simulate",
        "spec": spec_dict,
        "files": FILES,
        "true_effects": {
            "latent_did": spec.did,
            "score_did": effects["did"],
            "time_effect_latent": spec.time_effect,
            "response_shift_latent": spec.response_shift,
            "response_shift_score": effects["response_shift"],
        },
        "variance_components_latent": {
            "municipality_sd": spec.sd_municipality, "institution_sd": spec.sd_institution,
            "participant_sd": spec.sd_participant, "occasion_sd": spec.sd_occasion,
            "item_sd": spec.sd_item},
        "institutions": {"schools": len(schools),
                         "with_participants": len({p["institution"] for p in people}),
                         "cohort": {s["id"]: s["cohort"] for s in schools}},
        "participants": {"enrolled": len(people),
                         "by_cohort": {c: sum(p["cohort"] == c for p in people) for c in COHORTS}},
        "waves": wave_counts(recorded["submissions"]),
        "matched": {"pre_post": len(present["pre"] & present["post"]),
                    "pre_followup": len(present["pre"] & present["followup"]),
                    "post_only": len(present["post"] - present["pre"]),
                    "pre_only": len(present["pre"] - present["post"])},
        "submissions": recorded["submissions"],
        "out_of_range": recorded["out_of_range"],
        "skipped_cells": recorded["skipped_cells"],
        "needs": recorded["needs"],
    }


def write_truth(truth: dict, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(truth, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                    encoding="utf-8")
