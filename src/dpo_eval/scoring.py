"""Scale scores and descriptive statistics of the competency domains."""

from __future__ import annotations

import pandas as pd

WAVE_ORDER = {"pre": 0, "then": 1, "post": 2, "followup": 3}
CONTEXT = ["participant_key", "institution", "municipality", "settlement", "cohort", "role",
           "years_in_management", "careless"]


def scale_scores(responses: pd.DataFrame, items_per_domain: dict[str, int],
                 min_item_share: float) -> pd.DataFrame:
    """Mean of the answered (already reverse-keyed) items per participant, wave and domain.

    A score is computed only when at least ``min_item_share`` of the domain's items were
    answered (prorated mean, the usual rule for short Likert scales); otherwise it is missing.
    """
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
