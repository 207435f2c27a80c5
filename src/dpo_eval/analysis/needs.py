"""Needs assessment (instrument B): importance of need areas and preferred formats by
stakeholder group, and tests of differences between the groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from dpo_eval.analysis.multiplicity import holm
from dpo_eval.core.study import STAKEHOLDER_GROUPS as GROUP_ORDER


def importance_summary(needs: pd.DataFrame) -> pd.DataFrame:
    """Per stakeholder group and need area: n, mean with t-based 95% CI, SD, the share rating
    it 4-5 ("important"), and the rank of the area within the group (1 = highest mean)."""
    grouped = needs.groupby(["stakeholder", "area"])["value"]
    table = grouped.agg(n="count", estimate="mean", sd="std").reset_index()
    table["std_error"] = table["sd"] / np.sqrt(table["n"])
    quantile = stats.t.ppf(0.975, table["n"] - 1)
    table["conf_low"] = table["estimate"] - quantile * table["std_error"]
    table["conf_high"] = table["estimate"] + quantile * table["std_error"]
    table["share_important"] = grouped.apply(lambda v: float((v >= 4).mean())).to_numpy()
    table["rank"] = table.groupby("stakeholder")["estimate"].rank(ascending=False, method="min").astype(int)
    table["group_order"] = table["stakeholder"].map({g: i for i, g in enumerate(GROUP_ORDER)})
    return (table.sort_values(["group_order", "rank", "area"]).drop(columns="group_order")
            .reset_index(drop=True))


def likert_distribution(needs: pd.DataFrame) -> pd.DataFrame:
    """Share of each rating 1-5 per group and area, for diverging stacked bars."""
    counts = needs.groupby(["stakeholder", "area", "value"]).size().rename("count").reset_index()
    counts["share"] = counts["count"] / counts.groupby(["stakeholder", "area"])["count"].transform("sum")
    return counts.sort_values(["stakeholder", "area", "value"]).reset_index(drop=True)


def group_differences(needs: pd.DataFrame) -> pd.DataFrame:
    """Kruskal-Wallis test of the ratings across stakeholder groups, per area (ordinal data),
    with epsilon-squared = H (n + 1) / (n^2 - 1) (Tomczak & Tomczak, 2014) and Holm-adjusted p."""
    rows = []
    for area, group in needs.groupby("area", sort=True):
        samples = [g["value"].to_numpy() for _, g in group.groupby("stakeholder") if len(g) > 0]
        n = sum(len(s) for s in samples)
        if len(samples) < 2 or len({v for s in samples for v in s}) < 2:
            rows.append({"area": area, "statistic": np.nan, "df": len(samples) - 1,
                         "p_value": np.nan, "epsilon_squared": np.nan, "n": n})
            continue
        h, p = stats.kruskal(*samples)
        rows.append({"area": area, "statistic": float(h), "df": len(samples) - 1, "p_value": float(p),
                     "epsilon_squared": float(h * (n + 1) / (n**2 - 1)), "n": n})
    table = pd.DataFrame(rows)
    table["p_holm"] = holm(table["p_value"])
    table["test"] = "Kruskal-Wallis"
    return table[["area", "test", "statistic", "df", "p_value", "p_holm", "epsilon_squared", "n"]]


def format_preferences(formats: pd.DataFrame) -> pd.DataFrame:
    """Per stakeholder group and format: respondents, how many chose it, and the share."""
    table = formats.groupby(["stakeholder", "format"])["chosen"].agg(n="count", count="sum").reset_index()
    table["count"] = table["count"].astype(int)
    table["share"] = table["count"] / table["n"]
    table["group_order"] = table["stakeholder"].map({g: i for i, g in enumerate(GROUP_ORDER)})
    return (table.sort_values(["group_order", "share", "format"], ascending=[True, False, True])
            .drop(columns="group_order").reset_index(drop=True))
