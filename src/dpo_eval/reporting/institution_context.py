"""What one school's report shows, built table by table: its participation, its scores (or a
pooled group's, where disclosure control allows: ``disclosure``), its needs, and the
evaluation's findings for it (``findings`` worded by ``sentences``)."""

from __future__ import annotations

import pandas as pd

from dpo_eval.codebook import load_codebook
from dpo_eval.report_figures import institution_figures, profile_series
from dpo_eval.reporting import disclosure, sentences
from dpo_eval.reporting.formatting import Numbering, format_date, format_optional, join_words, quote, rounded
from dpo_eval.reporting.labels import names as label_names
from dpo_eval.typography import format_count, format_number

# Tables and figures in the order the template shows them (the profile figure and the scores
# table only where a level is shown), so that both are numbered from 1 without gaps.
INSTITUTION_ORDER = ("fig-participation", "fig-profile", "tab-scores", "tab-needs")


def participation_rows(bench: pd.DataFrame, registry: pd.DataFrame, institution: str, waves: dict) -> list[dict]:
    """The team's respondents per wave (not suppressed: the school knows who took part) and the
    mean per school of the region."""
    own = bench[(bench["level"] == "institution") & (bench["institution"] == institution)]
    schools = bench[bench["level"] == "institution"]
    n_schools = len(registry[registry["type"] == "school"])
    rows = []
    for wave in ("pre", "post", "followup"):
        counts = own[own["wave"] == wave]["n"]
        per_school = schools[schools["wave"] == wave].groupby("institution")["n"].max()
        rows.append({"key": wave, "wave": waves[wave], "n": int(counts.max()) if len(counts) else 0,
                     "region_mean": float(per_school.sum() / n_schools)})
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


def school_figures(participation: list[dict], shown: pd.DataFrame, region: pd.DataFrame, level: str, level_name: str,
                   codebook, t: dict, names: dict, lang: str) -> dict:
    """The school's participation figure and, where a level is shown, its profile (the shown
    level's and the region's means at entry and exit on the study's common score axis)."""
    ti = t["institution"]
    series = profile_series(shown, region, list(codebook.domains)) if level != "none" else None
    words = {"team": ti["legend_level"]["team"], "own": ti["legend_level"][level] if level != "none" else "",
             "region": ti["region"],
             "region_mean": ti["region_team_mean"], "pre": t["waves"]["pre"], "post": t["waves"]["post"],
             "wave": t["col"]["wave"], "respondents": ti["col"]["n"], "mean_score": t["mean_score"],
             "domain": t["col"]["domain"]}
    captions = {"participation": ti["captions"]["participation"], "profile": ti["captions"]["profile"].format(level=level_name)}
    return institution_figures(participation, series, {d: names["domain"][d] for d in codebook.domains}, words,
                               captions, lang)


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
    figs = school_figures(participation, shown, region, level, levels[level], codebook, t, names, lang)
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
        "score_rows": scores, "any_score_hidden": any(r["mine"] == mark for r in scores),
        "figure": figs.get("profile"), "participation_figure": figs["participation"],
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
