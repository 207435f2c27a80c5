"""What one school's report shows, built table by table: its participation, its scores (or a
pooled group's, where disclosure control allows: ``disclosure``), its needs, and the
evaluation's findings for it (``findings`` worded by ``sentences``)."""

from __future__ import annotations

import math

import pandas as pd

from dpo_eval.codebook import load_codebook
from dpo_eval.reporting import disclosure, sentences
from dpo_eval.reporting.formatting import Numbering, format_date, format_optional, join_words, quote, rounded
from dpo_eval.reporting.labels import names as label_names
from dpo_eval.typography import format_count, format_number

# Half the width of the participation chart's diamond, in per cent of the bar track (1.6 mm of 95 mm).
DIAMOND_HALF_WIDTH = 1.7
# Tables and figures in the order the template shows them (the profile figure and the scores
# table only where a level is shown), so that both are numbered from 1 without gaps.
INSTITUTION_ORDER = ("fig-participation", "fig-profile", "tab-scores", "tab-needs")


def participation_rows(bench: pd.DataFrame, registry: pd.DataFrame, institution: str, waves: dict) -> list[dict]:
    """The team's respondents per wave (not suppressed: the school knows who took part) and the
    mean per school of the region, positioned for the HTML/CSS bar chart."""
    own = bench[(bench["level"] == "institution") & (bench["institution"] == institution)]
    schools = bench[bench["level"] == "institution"]
    n_schools = len(registry[registry["type"] == "school"])
    rows = []
    for wave in ("pre", "post", "followup"):
        counts = own[own["wave"] == wave]["n"]
        per_school = schools[schools["wave"] == wave].groupby("institution")["n"].max()
        rows.append({"key": wave, "wave": waves[wave], "n": int(counts.max()) if len(counts) else 0,
                     "region_mean": float(per_school.sum() / n_schools)})
    # Bars scaled to the largest value: text stays text.
    scale = max([p["n"] for p in rows] + [p["region_mean"] for p in rows] + [1]) * 1.1
    for p in rows:
        bar, marker = round(100 * p["n"] / scale, 2), round(100 * p["region_mean"] / scale, 2)
        # The count goes after the bar, or after the region's diamond where that would cover it.
        value_at = max(bar, marker + DIAMOND_HALF_WIDTH) if marker > bar - 2 * DIAMOND_HALF_WIDTH else bar
        p.update(bar=bar, marker=marker, value_at=round(value_at, 2), region_text=None)
    return rows


def score_rows(shown: pd.DataFrame, region: pd.DataFrame, level: str, codebook, mark: str, t: dict, names: dict,
               lang: str) -> list[dict]:
    """Mean scores per domain and wave at the shown level, the region's, and (team level
    only) the difference of the two printed, rounded values, so that the columns add up."""
    rows = []
    for domain in codebook.domains:
        for wave in ("pre", "post", "followup"):
            cell = shown[(shown["domain"] == domain) & (shown["wave"] == wave)]
            reg = region[(region["domain"] == domain) & (region["wave"] == wave)]
            if cell.empty and reg.empty:
                continue
            visible = not cell.empty and bool(cell["shown"].iloc[0])
            mean = rounded(cell["mean"].iloc[0]) if visible else None
            region_mean = rounded(reg["mean"].iloc[0]) if not reg.empty else None
            rows.append({
                "domain": names["domain"][domain], "domain_key": domain, "wave_key": wave, "wave": t["waves"][wave],
                "mine": format_optional(mean, lang) if visible else (mark if not cell.empty else "—"),
                "mean": mean, "region_mean": region_mean,
                "n": format_count(cell["n"].iloc[0], lang) if visible else "",
                "region": format_optional(region_mean, lang),
                "difference": (format_optional(mean - region_mean, lang)
                               if visible and level == "team" and region_mean is not None else ""),
            })
    return rows


def profile_chart(scores: pd.DataFrame, region: pd.DataFrame, domain_names: dict, lang: str) -> dict:
    """Positions (per cent of the axis) of a school's profile chart, drawn in HTML/CSS by the
    template: per domain the shown level's and the region's mean at entry (hollow) and exit
    (filled), joined by a line, on a window of the 1-5 scale around the means (at least one
    point wide, so that small changes stay visible)."""
    values = pd.concat([scores["mean"], region["mean"]]).dropna()
    low = max(1.0, math.floor((values.min() - 0.25) * 2) / 2)
    high = min(5.0, max(low + 1.0, math.ceil((values.max() + 0.25) * 2) / 2))
    step = 0.25 if high - low <= 1.5 else 0.5
    position = lambda v: round(100 * (v - low) / (high - low), 2)  # noqa: E731
    ticks = [{"pos": position(low + i * step), "text": format_number(low + i * step, lang, 2 if step < 0.5 else 1)}
             for i in range(int(round((high - low) / step)) + 1)]
    rows = []
    for domain, name in domain_names.items():
        series = []
        for kind, frame in (("level", scores), ("region", region)):
            means = frame[frame["domain"] == domain].set_index("wave")["mean"]
            pre, post = means.get("pre"), means.get("post")
            if pre is None or post is None or pd.isna(pre) or pd.isna(post):
                continue
            series.append({"kind": kind, "pre": position(pre), "post": position(post),
                           "left": min(position(pre), position(post)), "width": abs(position(post) - position(pre))})
        if series:
            rows.append({"domain": name, "series": series})
    return {"rows": rows, "ticks": ticks}


def need_rows(tables: dict, registry: pd.DataFrame, institution: str, min_cell: int, mark: str, names: dict,
              lang: str) -> list[dict]:
    needs = disclosure.similar_schools_needs(tables["needs_benchmarks"], registry, institution, min_cell)
    region = tables["needs_benchmarks"]
    region = region[region["level"] == "region"].set_index("area")
    fmt = lambda v: format_optional(v, lang)  # noqa: E731
    rows = []
    for area, label in names["area"].items():
        row = needs[needs["area"] == area]
        if row.empty:
            continue
        r = row.iloc[0]
        rows.append({"area": label, "own": fmt(r["own"]) if r["own_shown"] else (mark if r["n_own"] else "—"),
                     "similar": fmt(r["similar"]) if r["similar_shown"] else mark,
                     "region": fmt(region.loc[area, "mean"]) if area in region.index else "—",
                     "sort": -r["similar"] if r["similar_shown"] else 0})
    return rows


def level_names(t: dict, municipality: str, cohort: str | None) -> dict:
    ti = t["institution"]
    return {"team": ti["level_team"],
            "municipality_cohort": ti["level_municipality_cohort"].format(
                municipality=municipality, cohort=t["cohorts_genitive"].get(cohort, "")),
            "municipality": ti["level_municipality"].format(municipality=municipality),
            "cohort": ti["level_cohort"].format(cohort=t["cohorts_genitive"].get(cohort, "")),
            "none": ""}


def institution_context(config: dict, tables: dict[str, pd.DataFrame], registry: pd.DataFrame,
                        institution: str, strings: dict, lang: str, domain_findings: tuple,
                        codebook=None) -> dict:
    """What one school's report shows, with no aggregate of fewer than ``min_cell`` respondents
    of anyone else: its participation, its team's scores or a pooled group's
    (``disclosure.team_scores``) beside the region's, the needs of similar schools, and page 1
    (``school_page``) worded from the school's own counts and the evaluation's findings."""
    codebook = codebook or load_codebook(config["codebook"])
    names = label_names(codebook, registry, lang)
    t = strings
    ti = t["institution"]
    min_cell = config["reports"]["min_cell"]
    mark = t["suppressed_mark"].format(min_cell=min_cell)
    entry = registry.set_index("id").loc[institution]
    bench = tables["score_benchmarks"]
    own = bench[(bench["level"] == "institution") & (bench["institution"] == institution)]
    cohort = own["cohort"].iloc[0] if not own.empty else None
    municipality = names["municipality"].get(entry["municipality"], entry["municipality"])
    participation = participation_rows(bench, registry, institution, t["waves"])
    for p in participation:
        p["region_text"] = format_number(p["region_mean"], lang, 1)
    level, shown = disclosure.team_scores(bench, registry, institution, min_cell, config["analysis"]["domains"])
    levels = level_names(t, municipality, cohort)
    region = bench[bench["level"] == "region"]
    scores = score_rows(shown, region, level, codebook, mark, t, names, lang)
    figure = None
    if level != "none":
        pre_post = shown[shown["shown"] & shown["wave"].isin(["pre", "post"])]
        figure = profile_chart(pre_post, region[region["wave"].isin(["pre", "post"])],
                               {d: names["domain"][d] for d in codebook.domains}, lang)
    needs = need_rows(tables, registry, institution, min_cell, mark, names, lang)
    top_needs = [quote(row["area"], lang) for row in sorted(needs, key=lambda row: row["sort"])[:3] if row["sort"]]
    name = entry["name_en" if lang == "en" else "name"]
    return {
        "lang": lang, "t": t, "ti": ti,
        "n": Numbering(INSTITUTION_ORDER if level != "none" else ("fig-participation", "tab-needs")),
        "title": f"{ti['title']}: {name}", "running_title": name,
        "program": config["study"]["program"][lang] if cohort == "program" else None,
        "institution_name": name, "municipality": municipality,
        "cohort": t["cohorts"].get(cohort, "—") if cohort else "—",
        "report_date": config["study"]["report_date"],
        "report_date_text": format_date(config["study"]["report_date"], lang),
        "participation": participation, "no_participants": own.empty,
        "level": level, "level_name": levels[level],
        "level_sentence": level_sentence(level, participation, scores, min_cell, levels, t),
        "score_rows": scores, "any_score_hidden": any(r["mine"] == mark for r in scores), "figure": figure,
        "need_rows": needs, "settlement_schools": t["settlement_schools"][entry["settlement"]],
        "top_needs": top_needs, "any_need_hidden": any(mark in (r["own"], r["similar"]) for r in needs),
        "top_needs_text": join_words(top_needs, t), "mark": mark, "min_cell": min_cell,
        "findings": sentences.school_summary(domain_findings, t, names, lang),
        "page_one": sentences.school_page(participation, scores, level, levels, cohort, domain_findings, config,
                                          t, names, lang),
        "authors": config.get("reports", {}).get("authors", {}),
    }


def level_sentence(level: str, participation: list[dict], scores: list[dict], min_cell: int, levels: dict,
                   t: dict) -> str:
    """Why the scores are shown at this level, true to the team's own counts: at team level the
    waves whose cells are shown are named, and a follow-up below ``min_cell`` is said to be
    hidden."""
    ti = t["institution"]
    if level != "team":
        return ti["level_sentences"][level].format(min_cell=min_cell, level=levels[level], team=ti["your_team"])
    counts = {p["key"]: p["n"] for p in participation}
    text = ti["level_sentences"]["team"].format(min_cell=min_cell, level=levels[level], team=ti["your_team"])
    if counts.get("followup", 0) and any(r["wave_key"] == "followup" and r["mean"] is None for r in scores):
        text += " " + ti["followup_hidden"].format(n=counts["followup"], min_cell=min_cell)
    return text
