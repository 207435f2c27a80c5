"""The latent model and the answers it produces: what each participant would truly answer.

Owns the data-generating model, per participant *i* in school *s* of municipality *m*, domain
*d* and wave *w*: ``theta = mu_d + u_m + u_s + u_id + time_d*[w=post] + did_d*[w=post]*[program]
+ e_iw``; the retrospective "then" value is the pre-wave value lowered by the cohort's response
shift, plus half an occasion's noise. Item answers are ``round(theta + b_k + e_ik)`` clipped to
the scale and mirrored for reverse-keyed items, with an item's intercept shifted at exit when
the spec injects non-invariance. ``submissions`` turns the answers of one wave into the
submissions a survey tool records, with the defects of ``dpo_eval.simulate.defects`` applied.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from dpo_eval.core.codebook import Codebook, Item
from dpo_eval.simulate.defects import careless_responding, resubmission, skip_items, typed_code
from dpo_eval.simulate.design import COMPETENCY_DOMAINS, MUNICIPALITIES, WAVE_DATES, SimulationSpec


def _item_offsets(items: list[Item]) -> np.ndarray:
    """Fixed item difficulties, spread symmetrically so that items differ but the scale is centred."""
    k = len(items)
    return np.linspace(-0.35, 0.35, k) if k > 1 else np.zeros(1)


def responses_from_latent(theta: np.ndarray, items: list[Item], sd_item: float,
                          rng: np.random.Generator, points: int = 5, shift: dict | None = None) -> np.ndarray:
    """Raw 1..``points`` answers (reverse-keyed items mirrored) for latent values ``theta`` (n,)
    on the 1-5 metric, stretched linearly onto a scale with other than 5 points; ``shift`` adds
    to the intercepts of the items it names (item id -> shift)."""
    offsets = _item_offsets(items)
    if shift:
        offsets = offsets + np.array([shift.get(item.id, 0.0) for item in items])
    x = theta[:, None] + offsets[None, :] + rng.normal(0.0, sd_item, (theta.size, len(items)))
    if points != 5:
        x = 1 + (x - 1) * (points - 1) / 4
    answers = np.clip(np.rint(x), 1, points).astype(int)
    reverse = np.array([item.reverse for item in items])
    answers[:, reverse] = points + 1 - answers[:, reverse]
    return answers


def keyed_scale_score(answers: np.ndarray, items: list[Item]) -> np.ndarray:
    """Scale scores of 1-5 answers (n, k): reverse-keyed items mirrored back, then the row mean."""
    reverse = np.array([item.reverse for item in items])
    keyed = answers.astype(float).copy()
    keyed[:, reverse] = 6 - keyed[:, reverse]
    return keyed.mean(axis=1)


def latent_values(spec: SimulationSpec, people: list[dict], schools: list[dict],
                  rng: np.random.Generator) -> dict:
    """Latent values per (participant code, domain): ``pre``, ``post``, ``then`` and ``followup``
    (which keeps ``spec.followup_retention_of_gain`` of the exit gain)."""
    muni_effect = {m[0]: rng.normal(0, spec.sd_municipality) for m in MUNICIPALITIES}
    school_effect = {s["id"]: rng.normal(0, spec.sd_institution) for s in schools}
    school_muni = {s["id"]: s["municipality"] for s in schools}
    latent = {}
    for domain, effect in spec.did.items():
        for person in people:
            level = (spec.baseline + muni_effect[school_muni[person["institution"]]]
                     + school_effect[person["institution"]] + rng.normal(0, spec.sd_participant))
            gain = spec.time_effect + (effect if person["cohort"] == "program" else 0.0)
            pre = level + rng.normal(0, spec.sd_occasion)
            post = level + gain + rng.normal(0, spec.sd_occasion)
            latent[(person["code"], domain)] = {
                "pre": pre,
                "post": post,
                "then": pre - spec.response_shift[person["cohort"]]
                + rng.normal(0, spec.sd_occasion / 2),
                "followup": level + spec.followup_retention_of_gain * gain
                + rng.normal(0, spec.sd_occasion),
            }
    return latent


def answers_of(person: dict, wave: str, latent: dict, domains: list[str], spec: SimulationSpec,
               codebook: Codebook, rng: np.random.Generator, retrospective: bool = False) -> dict[str, int]:
    """Item id -> raw answer of ``person`` in ``wave`` for the items of ``domains``; the
    retrospective ("then") answers are keyed ``then:<item id>``."""
    answers = {}
    for domain in domains:
        items = codebook.items_of(domain)
        theta = np.array([latent[(person["code"], domain)]["then" if retrospective else wave]])
        shift = spec.intercept_shift if wave == "post" and not retrospective else None
        values = responses_from_latent(theta, items, spec.sd_item, rng,
                                       codebook.scale_points(items[0].scale)[1], shift)[0]
        for item, value in zip(items, values):
            answers[("then:" if retrospective else "") + item.id] = int(value)
    return answers


def submissions(people: list[dict], wave: str, latent: dict, spec: SimulationSpec,
                codebook: Codebook, rng: np.random.Generator, typo_made: set[str]) -> list[dict]:
    """Who submits in this wave, with duplicates, careless answering and skips applied, in the
    order of submission. ``typo_made`` holds the codes already mistyped in an earlier wave."""
    c = spec.contamination
    domains = list(spec.did)
    teams: dict[str, list[str]] = {}
    for person in people:
        teams.setdefault(person["institution"], []).append(person["code"])
    result = []
    for person in people:
        if not person["waves"][wave]:
            continue
        answers = answers_of(person, wave, latent, domains, spec, codebook, rng)
        if wave == "post":
            answers.update(answers_of(person, wave, latent, list(COMPETENCY_DOMAINS), spec, codebook,
                                      rng, retrospective=True))
        answers, careless = careless_responding(answers, wave, c, rng)
        start = WAVE_DATES[wave] + timedelta(days=int(rng.integers(0, 10)),
                                             minutes=int(rng.integers(0, 600)))
        seconds_per_item = rng.uniform(0.8, 1.6) if careless == "speeding" else rng.uniform(5, 12)
        finish = start + timedelta(seconds=int(seconds_per_item * len(answers)) + 40)
        typed, defects = typed_code(person["code"], wave, teams[person["institution"]], typo_made, c, rng)
        sub = {"person": person, "answers": answers, "careless": careless, "started": start,
               "finished": finish, "typed": typed, "defects": defects}
        result.append(sub)
        if rng.random() < c.duplicates:
            result.append(resubmission(sub, rng))
    skip_items(result, c.skipped_item, rng)
    result.sort(key=lambda s: (s["finished"], s["person"]["code"]))
    return result
