"""Alternative texts of the figures: what each figure shows, with its key numbers, computed from
the same data the figure is drawn from (a screen reader reads them instead of the picture).

Each function returns the figure's caption followed by its data in a linear form, numbers
written as the tables write them (``dpo_eval.reporting.typography``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dpo_eval.reporting.figures import ForestRow, forest_rows
from dpo_eval.reporting.typography import format_count, format_number, percent, typeset
from dpo_eval.core.study import COHORTS, WAVES

ARROW = " \u2192 "


def _ci(low: float, high: float, lang: str) -> str:
    separator = "; " if lang == "ru" else ", "
    return f"[{format_number(low, lang)}{separator}{format_number(high, lang)}]"


def _join(caption: str, parts: list[str], lang: str) -> str:
    caption = caption.rstrip(". ")
    return typeset(f"{caption}. " + "; ".join(p for p in parts if p) + ".", lang)


def forest_alt(rows: pd.DataFrame, label_column: str, caption: str, lang: str, group_column: str | None = None) -> str:
    """"Caption. Group: label 0,33 [0,20; 0,45], ..." for every row of a forest plot."""
    parts: list[str] = []
    for entry in forest_rows(rows, label_column, group_column):
        if entry.heading:
            parts.append(f"{entry.label}:")
            continue
        text = f"{entry.label} {format_number(entry.estimate, lang)} {_ci(entry.low, entry.high, lang)}"
        if parts and parts[-1].endswith(":"):
            parts[-1] = f"{parts[-1]} {text}"
        else:
            parts.append(text)
    return _join(caption, parts, lang)


def means_alt(descriptives: pd.DataFrame, domain_names: dict, wave_names: dict, cohort_names: dict,
              caption: str, lang: str) -> str:
    """Per domain and cohort the mean score at each wave: "Domain: program 3,10 → 3,62 → 3,55"."""
    order = ", ".join(wave_names[w] for w in WAVES)
    parts = [f"({order})"]
    for domain, name in domain_names.items():
        cohorts = []
        for cohort in COHORTS:
            rows = descriptives[(descriptives["domain"] == domain) & (descriptives["cohort"] == cohort)]
            means = rows.set_index("wave")["mean"].reindex(list(WAVES))
            values = ARROW.join("—" if pd.isna(v) else format_number(v, lang) for v in means)
            cohorts.append(f"{cohort_names[cohort]} {values}")
        parts.append(f"{name}: " + ", ".join(cohorts))
    return _join(caption, parts, lang)


def likert_alt(distribution: pd.DataFrame, area_names: dict, groups: dict, caption: str, lang: str) -> str:
    """Per group and area the shares of low (1-2), middle (3) and high (4-5) ratings."""
    parts = []
    for group, group_name in groups.items():
        shares = (distribution[distribution["stakeholder"] == group]
                  .pivot_table(index="area", columns="value", values="share", fill_value=0.0)
                  .reindex(index=list(area_names), columns=[1, 2, 3, 4, 5], fill_value=0.0))
        share = lambda v: percent(format_number(100 * v, lang, 0), lang)  # noqa: E731
        areas = [f"{area_names[a]} 1–2: {share(r[1] + r[2])}, 3: {share(r[3])}, 4–5: {share(r[4] + r[5])}"
                 for a, r in shares.iterrows()]
        parts.append(f"{group_name}: " + ", ".join(areas))
    return _join(caption, parts, lang)


def qq_alt(qq: pd.DataFrame, domain_names: dict, kind_names: dict, caption: str, lang: str) -> str:
    """Per panel the correlation of the sample with the normal quantiles (1 = on the line) and
    the number of points: "Domain: residuals r = 0,998 (n = 740)"."""
    parts = []
    for domain, name in domain_names.items():
        panels = []
        for kind, kind_name in kind_names.items():
            rows = qq[(qq["domain"] == domain) & (qq["kind"] == kind)]
            if len(rows) < 3:
                continue
            r = float(np.corrcoef(rows["theoretical"], rows["sample"])[0, 1])
            panels.append(f"{kind_name} r = {format_number(r, lang, 3)} (n = {format_count(len(rows), lang)})")
        parts.append(f"{name}: " + ", ".join(panels))
    return _join(caption, parts, lang)


def flow_alt(flow: pd.DataFrame, wave_names: dict, cohort_names: dict, words: dict, caption: str, lang: str) -> str:
    """Per cohort and wave the counts of the flow diagram."""
    parts = []
    for cohort in COHORTS:
        waves = []
        for wave in [w for w in WAVES if w in set(flow["wave"])]:
            record = flow[(flow["wave"] == wave) & (flow["cohort"] == cohort)].iloc[0]
            counts = ", ".join(f"{words[key]} {format_count(record[key], lang)}"
                               for key in ("received", "duplicates", "participants", "unmatched", "careless",
                                           "analysed"))
            waves.append(f"{wave_names[wave]}: {counts}")
        parts.append(f"{cohort_names[cohort]}: " + "; ".join(waves))
    return _join(caption, parts, lang)


def profile_alt(series: list[dict], domain_names: dict, names: dict, caption: str, lang: str) -> str:
    """Per series and domain the mean at entry and exit: "Your team: Universal 3,10 → 3,62"."""
    parts = []
    for kind in ("own", "region"):
        rows = [f"{domain_names[s['domain']]} {format_number(s['pre'], lang)}{ARROW}{format_number(s['post'], lang)}"
                for s in series if s["kind"] == kind]
        if rows:
            parts.append(f"{names[kind]} ({names['pre']}{ARROW}{names['post']}): " + ", ".join(rows))
    return _join(caption, parts, lang)


def participation_alt(participation: list[dict], names: dict, caption: str, lang: str) -> str:
    """Per wave the school's participants and the region's mean per school."""
    parts = [f"{p['wave']}: {names['own']} {format_count(p['n'], lang)}, "
             f"{names['region']} {format_number(p['region_mean'], lang, 1)}" for p in participation]
    return _join(caption, parts, lang)


__all__ = ["ForestRow", "flow_alt", "forest_alt", "likert_alt", "means_alt", "participation_alt", "profile_alt",
           "qq_alt"]
