"""What one school's report shows, built table by table: its participation, its scores (or a
pooled group's), its needs, and the evaluation's findings for it (``findings`` worded by
``sentences``). Every number comes from the disclosure control of the whole release
(results/audit/disclosure_control.csv, built by dpo_eval.release.cells before any report is
rendered), read through ``dpo_eval.release.view``."""

from __future__ import annotations

import pandas as pd

from dpo_eval.release import manifest as release

from dpo_eval.release import cells as release_cells

from dpo_eval.release import view as release_view
from dpo_eval.core.codebook import load_codebook
from dpo_eval.reporting.report_figures import institution_figures, profile_series
from dpo_eval.reporting import sentences
from dpo_eval.reporting.formatting import Numbering, format_date, format_optional, join_words, quote
from dpo_eval.release.cells import rounded
from dpo_eval.reporting.labels import names as label_names
from dpo_eval.reporting.typography import format_count, format_number
from dpo_eval.core.study import WAVES

# Tables and figures in the order the template shows them (the profile figure and the scores
# table only where a level is shown), so that both are numbered from 1 without gaps.
INSTITUTION_ORDER = ("fig-participation", "fig-profile", "tab-scores", "tab-needs")


def participation_rows(view: release_view.ReportCells, waves: dict) -> list[dict]:
    """The team's respondents per wave (not suppressed: the school knows who took part) and the
    mean per school of the region, both from the release view (drawn by report_figures)."""
    return [{"key": p["wave"], "wave": waves[p["wave"]], "n": p["n"], "region_mean": p["region_mean"]}
            for p in release_view.participation(view, WAVES)]


def score_rows(view: release_view.ReportCells, codebook, t: dict, names: dict, lang: str) -> list[dict]:
    """Mean scores per domain and wave at the shown level (or the mark of a hidden cell), the
    region's, and (team level only) the difference of the two printed, rounded values, so that
    the columns add up (the control records that difference as printed)."""
    fmt = lambda v: format_optional(v, lang)  # noqa: E731
    rows = release_view.score_rows(view, codebook.domains, WAVES, fmt,
                                   lambda n: format_count(n, lang))
    for row in rows:
        mean = view.value("scores", domain=row["domain"], wave=row["wave"])
        region = view.value("scores_region", domain=row["domain"], wave=row["wave"])
        row.update(domain_key=row["domain"], wave_key=row["wave"], domain=names["domain"][row["domain"]],
                   wave=t["waves"][row["wave"]], mean=rounded(mean) if mean is not None else None,
                   region_mean=rounded(region) if region is not None else None)
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
                        codebook=None, names: dict | None = None, entry: pd.Series | None = None) -> dict:
    """What one school's report shows, as the disclosure control of the whole release left it
    (``tables["disclosure_control"]``): its participation, its team's scores or the pooled
    group's the control chose (the schools of its municipality in its cohort, or its cohort)
    beside the region's, the needs of similar schools, the marks of hidden cells with their
    legend, and page 1 (``school_page``) worded from the school's own counts and the
    evaluation's findings. A batch of reports passes what is the same for all of them once:
    ``names`` (``labels.names`` in ``lang``), the school's ``entry`` of the registry and the
    control split by report (``release.view.ControlByReport``), so that no report reads the
    whole registry or release again."""
    codebook = codebook or load_codebook(config["codebook"])
    names = names or label_names(codebook, registry, lang)
    t = strings
    ti = t["institution"]
    min_cell = config["reports"]["min_cell"]
    view = release_view.ReportCells(tables["disclosure_control"], release_cells.school_report(institution),
                                    release_view.marks(t, min_cell))
    mark, complementary = view.marks[release.PRIMARY], view.marks[release.COMPLEMENTARY]
    entry = entry if entry is not None else registry.set_index("id").loc[institution]
    own = view.rows[view.rows["item"] == "participation"]
    cohort = own["cohort"].iloc[0] if len(own) and own["cohort"].iloc[0] != release.ALL else None
    municipality = names["municipality"].get(entry["municipality"], entry["municipality"])
    participation = participation_rows(view, t["waves"])
    for p in participation:
        p["region_text"] = format_number(p["region_mean"], lang, 1)
    level = view.level or "none"
    levels = level_names(t, municipality, cohort)
    scores = score_rows(view, codebook, t, names, lang)
    figs = school_figures(participation, release_view.profile_means(view, "scores"),
                          release_view.profile_means(view, "scores_region"), level, levels[level], codebook, t,
                          names, lang)
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
        "score_rows": scores, "any_score_hidden": any(not r["shown"] for r in scores),
        "figure": figs.get("profile"), "participation_figure": figs["participation"],
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
