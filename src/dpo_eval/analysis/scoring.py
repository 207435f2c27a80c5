"""Scale scores and descriptive statistics of the competency domains."""

from __future__ import annotations

import pandas as pd

from dpo_eval.core.study import COHORTS, MODEL_WAVES, WAVE_ORDER

CONTEXT = ["participant_key", "institution", "municipality", "settlement", "cohort", "role",
           "years_in_management", "careless"]


def scale_scores(responses: pd.DataFrame, items_per_domain: dict[str, int],
                 min_item_share: float) -> pd.DataFrame:
    """Mean of the answered (already reverse-keyed) items per participant, wave and domain.

    A score is computed only when at least ``min_item_share`` of the domain's items were
    answered (prorated mean, the usual rule for short Likert scales); otherwise it is missing.
    """
    # Ingest hands its tables over with labels as categoricals; scores use plain labels.
    responses = responses.astype({column: object for column in responses.columns
                                  if isinstance(responses[column].dtype, pd.CategoricalDtype)})
    grouped = responses.groupby(["participant_key", "wave", "domain"], sort=True)
    scores = grouped["value"].agg(score="mean", n_items="count").reset_index()
    scores["n_items_domain"] = scores["domain"].map(items_per_domain)
    scores = scores[scores["n_items"] >= min_item_share * scores["n_items_domain"]]
    context = (responses.drop_duplicates(["participant_key", "wave"])
               .set_index(["participant_key", "wave"])[CONTEXT[1:]])
    scores = scores.join(context, on=["participant_key", "wave"])
    scores["wave_order"] = scores["wave"].map(WAVE_ORDER)
    scores = scores.sort_values(["domain", "participant_key", "wave_order"]).drop(columns="wave_order")
    return scores[["participant_key", "wave", "domain", "score", "n_items", "n_items_domain",
                   *CONTEXT[1:]]].reset_index(drop=True)


def descriptives(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean, SD and n of the scale scores by domain, cohort and wave."""
    table = (scores.groupby(["domain", "cohort", "wave"])["score"]
             .agg(mean="mean", sd="std", n="count").reset_index())
    table["wave_order"] = table["wave"].map(WAVE_ORDER)
    return (table.sort_values(["domain", "cohort", "wave_order"]).drop(columns="wave_order")
            .reset_index(drop=True))


def model_flow(flow_waves: pd.DataFrame, scores: pd.DataFrame, domains: list[str],
               policy: str) -> pd.DataFrame:
    """The participant flow: the wave rows of ingest, then per domain and cohort the
    participants whose pre or post score enters the primary model ("pre+post" rows)."""
    rows = []
    eligible = scores[scores["wave"].isin(MODEL_WAVES)]
    for domain in domains:
        for cohort in sorted(COHORTS):  # alphabetical, like the wave rows of ingest
            people = eligible[(eligible["cohort"] == cohort)]
            in_domain = people[people["domain"] == domain]
            careless_rows = in_domain["careless"].astype(bool)
            participants = set(people["participant_key"])
            scored = set(in_domain["participant_key"])
            kept = in_domain[~careless_rows] if policy == "exclude" else in_domain
            analysed = set(kept["participant_key"])
            rows.append({"wave": "pre+post", "domain": domain, "cohort": cohort,
                         "participants": len(participants),
                         "insufficient_items": len(participants - scored),
                         "careless": in_domain.loc[careless_rows, "participant_key"].nunique(),
                         "excluded": len(scored - analysed), "analysed": len(analysed),
                         "reasons": (f"participants with a {domain} score at pre or post; "
                                     "insufficient_items: fewer than analysis.min_item_share of "
                                     f"the items answered at both waves; careless: {policy}")})
    waves = flow_waves.assign(domain="")
    return pd.concat([waves, pd.DataFrame(rows)], ignore_index=True)[
        ["wave", "domain", "cohort", "received", "duplicates", "participants", "unmatched",
         "insufficient_items", "careless", "excluded", "analysed", "set_missing", "reasons"]]
