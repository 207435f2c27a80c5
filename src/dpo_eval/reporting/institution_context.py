"""What one school's report shows, built table by table: its participation, its scores (or a
pooled group's), its needs, and the evaluation's findings for it (``findings`` worded by
``sentences``). Every number comes from the disclosure control of the whole release
(results/audit/disclosure_control.csv, built by dpo_eval.release_cells before any report is
rendered), read through ``dpo_eval.release_view``."""

from __future__ import annotations

import math

import pandas as pd

from dpo_eval import release, release_cells, release_view
from dpo_eval.codebook import load_codebook
from dpo_eval.reporting import sentences
from dpo_eval.reporting.formatting import Numbering, format_date, format_optional, join_words, quote, rounded
from dpo_eval.reporting.labels import names as label_names
from dpo_eval.typography import format_count, format_number

# Half the width of the participation chart's diamond, in per cent of the bar track (1.6 mm of 95 mm).
DIAMOND_HALF_WIDTH = 1.7
# Tables and figures in the order the template shows them (the profile figure and the scores
# table only where a level is shown), so that both are numbered from 1 without gaps.
INSTITUTION_ORDER = ("fig-participation", "fig-profile", "tab-scores", "tab-needs")


def participation_rows(view: release_view.ReportCells, waves: dict) -> list[dict]:
    """The team's respondents per wave (not suppressed: the school knows who took part) and the
    mean per school of the region, positioned for the HTML/CSS bar chart."""
    rows = [{"key": p["wave"], "wave": waves[p["wave"]], "n": p["n"], "region_mean": p["region_mean"]}
            for p in release_view.participation(view, ("pre", "post", "followup"))]
    # Bars scaled to the largest value: text stays text.
    scale = max([p["n"] for p in rows] + [p["region_mean"] for p in rows] + [1]) * 1.1
    for p in rows:
        bar, marker = round(100 * p["n"] / scale, 2), round(100 * p["region_mean"] / scale, 2)
        # The count goes after the bar, or after the region's diamond where that would cover it.
        value_at = max(bar, marker + DIAMOND_HALF_WIDTH) if marker > bar - 2 * DIAMOND_HALF_WIDTH else bar
        p.update(bar=bar, marker=marker, value_at=round(value_at, 2), region_text=None)
    return rows


def score_rows(view: release_view.ReportCells, codebook, t: dict, names: dict, lang: str) -> list[dict]:
    """Mean scores per domain and wave at the shown level (or the mark of a hidden cell), the
    region's, and (team level only) the difference of the two printed, rounded values, so that
    the columns add up (the control records that difference as printed)."""
    fmt = lambda v: format_optional(v, lang)  # noqa: E731
    rows = release_view.score_rows(view, codebook.domains, ("pre", "post", "followup"), fmt,
                                   lambda n: format_count(n, lang))
    for row in rows:
        mean = view.value("scores", domain=row["domain"], wave=row["wave"])
        region = view.value("scores_region", domain=row["domain"], wave=row["wave"])
        row.update(domain_key=row["domain"], wave_key=row["wave"], domain=names["domain"][row["domain"]],
                   wave=t["waves"][row["wave"]], mean=rounded(mean) if mean is not None else None,
                   region_mean=rounded(region) if region is not None else None)
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


def need_rows(view: release_view.ReportCells, names: dict, lang: str) -> list[dict]:
    """The school's own needs, the similar schools' and all schools', per area (or marks)."""
    return release_view.need_rows(view, names["area"], lambda v: format_optional(v, lang))


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
    """What one school's report shows, as the disclosure control of the whole release left it
    (``tables["disclosure_control"]``): its participation, its team's scores or the pooled
    group's the control chose (the schools of its municipality in its cohort, or its cohort)
    beside the region's, the needs of similar schools, the marks of hidden cells with their
    legend, and page 1 (``school_page``) worded from the school's own counts and the
    evaluation's findings."""
    codebook = codebook or load_codebook(config["codebook"])
    names = label_names(codebook, registry, lang)
    t = strings
    ti = t["institution"]
    min_cell = config["reports"]["min_cell"]
    view = release_view.ReportCells(tables["disclosure_control"], release_cells.school_report(institution),
                                    release_view.marks(t, min_cell))
    mark, complementary = view.marks[release.PRIMARY], view.marks[release.COMPLEMENTARY]
    entry = registry.set_index("id").loc[institution]
    own = view.rows[view.rows["item"] == "participation"]
    cohort = own["cohort"].iloc[0] if len(own) and own["cohort"].iloc[0] != release.ALL else None
    municipality = names["municipality"].get(entry["municipality"], entry["municipality"])
    participation = participation_rows(view, t["waves"])
    for p in participation:
        p["region_text"] = format_number(p["region_mean"], lang, 1)
    level = view.level or "none"
    levels = level_names(t, municipality, cohort)
    scores = score_rows(view, codebook, t, names, lang)
    figure = None
    if level != "none":
        figure = profile_chart(release_view.profile_means(view, "scores"),
                               release_view.profile_means(view, "scores_region"),
                               {d: names["domain"][d] for d in codebook.domains}, lang)
    needs = need_rows(view, names, lang)
    top_needs = [quote(row["area"], lang) for row in sorted(needs, key=lambda row: row["sort"])[:3] if row["sort"]]
    reading = [sentence.format(mark=mark, min_cell=min_cell) for sentence in ti["reading"]]
    if view.any_hidden(release.COMPLEMENTARY):
        reading.append(ti["reading_complementary"].format(complementary=complementary))
    reading += [note for note in [release_view.low_threshold_note(t, min_cell)] if note]
    protected = bool(len(view.rows)) and view.rows["level_reason"].iloc[0] == "protected"
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
        "level_sentence": level_sentence(level, participation, scores, min_cell, levels, t, protected),
        "score_rows": scores, "any_score_hidden": any(not r["shown"] for r in scores), "figure": figure,
        "need_rows": needs, "settlement_schools": t["settlement_schools"][entry["settlement"]],
        "top_needs": top_needs,
        "any_need_hidden": any({mark, complementary} & {r["own"], r["similar"]} for r in needs),
        "top_needs_text": join_words(top_needs, t), "mark": mark, "min_cell": min_cell, "reading": reading,
        "findings": sentences.school_summary(domain_findings, t, names, lang),
        "page_one": sentences.school_page(participation, scores, level, levels, cohort, domain_findings, config,
                                          t, names, lang, protected),
        "authors": config.get("reports", {}).get("authors", {}),
    }


def level_sentence(level: str, participation: list[dict], scores: list[dict], min_cell: int, levels: dict,
                   t: dict, protected: bool = False) -> str:
    """Why the scores are shown at this level, true to the team's own counts and to the
    control: a level below what the team's counts allow says that the pool in between was
    hidden to protect others (``protected``); at team level the waves whose cells are shown are
    named, and a follow-up below ``min_cell`` is said to be hidden."""
    ti = t["institution"]
    if level != "team":
        sentences = ti["level_sentences_protected"] if protected else ti["level_sentences"]
        key = "none_small" if level == "none" and not protected and any(p["n"] for p in participation) else level
        return sentences[key].format(min_cell=min_cell, level=levels[level], team=ti["your_team"])
    counts = {p["key"]: p["n"] for p in participation}
    text = ti["level_sentences"]["team"].format(min_cell=min_cell, level=levels[level], team=ti["your_team"])
    if counts.get("followup", 0) and any(r["wave_key"] == "followup" and r["mean"] is None for r in scores):
        text += " " + ti["followup_hidden"].format(n=counts["followup"], min_cell=min_cell)
    return text
