"""The needs assessment (instrument B): respondents of the university, the IRO and the schools,
their importance ratings of the need areas and their preferred training formats.

Owns the true profile of each stakeholder group (a mean importance per area on the latent 1-5
metric), the probability of each format per group, the respondents drawn from them and the
rows of their answers; ``dpo_eval.simulate.exports`` writes the rows.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from dpo_eval.core.codebook import Codebook
from dpo_eval.simulate.design import PARTNERS, ROLE_SHARES, ROLES, WAVE_DATES, person
from dpo_eval.core.study import STAKEHOLDER_GROUPS

# Share of each stakeholder group among the respondents.
GROUP_SHARES = dict(zip(STAKEHOLDER_GROUPS, (0.13, 0.12, 0.75)))
# Probability that a respondent of the group chooses each format, in the codebook's order.
FORMAT_PROBABILITY = {"university": [0.6, 0.5, 0.3, 0.3, 0.7], "iro": [0.7, 0.6, 0.4, 0.5, 0.5],
                      "school": [0.5, 0.7, 0.5, 0.6, 0.4]}


def needs_assessment(n_needs: int, codebook: Codebook, schools: list[dict], people: list[dict],
                     rng: np.random.Generator) -> tuple[list[list], dict]:
    """``n_needs`` answer rows (time stamp, e-mail, group, organisation, role, municipality,
    one importance label per area, the chosen formats joined by ", ") and their truth: the
    respondents per group, the true mean importances and the format probabilities. E-mails
    differ from the participants' (``people``)."""
    areas = codebook.need_areas
    # Each group has its own profile: a true mean importance per area (latent 1-5 metric).
    profiles = {g: np.clip(3.6 + rng.normal(0, 0.45, len(areas)), 2.2, 4.7) for g in GROUP_SHARES}
    format_codes = list(codebook.fields["formats"]["labels"])
    school_names = [s["name"] for s in schools]
    partner_names = {"university": PARTNERS[0]["name"], "iro": PARTNERS[1]["name"]}
    muni_of = {s["name"]: s["municipality"] for s in schools}
    stakeholder_labels = codebook.fields["stakeholder"]["labels"]
    draws = rng.choice(list(GROUP_SHARES), n_needs, p=list(GROUP_SHARES.values()))
    rows, used = [], {p["email"] for p in people}
    truth_groups = {g: 0 for g in GROUP_SHARES}
    for index, group in enumerate(draws):
        group = str(group)
        truth_groups[group] += 1
        respondent = person(rng, used)
        organisation = (str(rng.choice(school_names)) if group == "school"
                        else partner_names[group])
        municipality = muni_of.get(organisation, PARTNERS[0 if group == "university" else 1]["municipality"])
        role = (codebook.label("role", str(rng.choice(ROLES, p=ROLE_SHARES)), "ru")
                if group == "school" else "Другое")
        values = np.clip(np.rint(profiles[group] + rng.normal(0, 0.8, len(areas))), 1, 5)
        labels = [codebook.scales["importance5"][int(v)]["ru"] for v in values]
        chosen = [codebook.fields["formats"]["labels"][code]["ru"]
                  for code, prob in zip(format_codes, FORMAT_PROBABILITY[group]) if rng.random() < prob]
        stamp = WAVE_DATES["needs"] + timedelta(minutes=int(index * 37 + rng.integers(0, 30)))
        rows.append([stamp.strftime("%d.%m.%Y %H:%M:%S"), respondent["email"],
                     stakeholder_labels[group]["ru"], organisation, role, municipality,
                     *labels, ", ".join(chosen)])
    truth = {
        "respondents": truth_groups,
        "true_mean_importance": {g: {a["id"]: round(float(v), 4) for a, v in zip(areas, p)}
                                 for g, p in profiles.items()},
        "format_probability": {g: dict(zip(format_codes, p)) for g, p in FORMAT_PROBABILITY.items()},
    }
    return rows, truth
