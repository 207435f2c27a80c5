"""What the evaluation report shows: its context for the template, built table by table from
the tidy tables under ``results/tables``; the sentences come from the findings
(``findings.evaluation_findings`` worded by ``sentences``), the disclosure decisions from the
control of the whole release (results/audit/disclosure_control.csv, read through
``dpo_eval.release.view``)."""

from __future__ import annotations

import pandas as pd

from dpo_eval.release import manifest as release

from dpo_eval.release import cells as release_cells

from dpo_eval.release import view as release_view
from dpo_eval.core.codebook import load_codebook
from dpo_eval.reporting import design, sentences
from dpo_eval.reporting.findings import EvaluationFindings, evaluation_findings
from dpo_eval.reporting.report_figures import evaluation_figures
from dpo_eval.reporting.formatting import Numbering, format_ci, format_date, format_optional, format_p, format_share
from dpo_eval.reporting.labels import names as label_names
from dpo_eval.reporting.typography import counted, format_count
from dpo_eval.core.study import COHORTS, RATING_WAVES, WAVES

EVALUATION_ORDER = ("fig-flow", "tab-flow", "tab-flow-model", "tab-sample", "tab-municipalities",
                    "tab-reliability", "tab-invariance", "tab-needs", "fig-likert", "tab-formats", "fig-means",
                    "tab-descriptives", "tab-did", "fig-forest", "tab-effects", "tab-checks", "fig-qq",
                    "tab-sensitivity", "fig-sensitivity", "tab-shift", "tab-provenance")
SENSITIVITY_ROWS = ("primary", "careless_excluded", "completers", "then_baseline", "followup", "moderation_communication")
SECTIONS = ("summary", "design", "flow", "sample", "instrument", "invariance", "needs", "gains", "checks",
            "sensitivity", "interpretation", "limitations", "conclusions", "authors", "methods", "provenance")


FLOW_COUNTS = ("received", "duplicates", "participants", "unmatched", "careless", "excluded", "analysed")


def flow_rows(flow: pd.DataFrame, view: release_view.ReportCells, t: dict, names: dict) -> tuple[list[dict], list[dict], set]:
    """Participant flow per wave and cohort (a count the control hid printed as its mark, and
    named in the row's ``hidden``: the few people no wave assigns a cohort to), and down to each
    domain's model; also the statuses of the hidden counts (for the table's notes)."""
    waves, cohorts = t["waves"], t["cohorts"]
    per_wave_rows = flow[flow["wave"] != "pre+post"]
    status = release_view.flow_status(view, per_wave_rows, list(FLOW_COUNTS))
    per_wave = [{"wave": waves[r["wave"]], "cohort": cohorts.get(r["cohort"], t["unknown"]), "cohort_key": r["cohort"],
                 "wave_key": r["wave"], "hidden": tuple(k for k in FLOW_COUNTS if status.at[index, k] != release.SHOWN),
                 **{k: cell_text(status.at[index, k], view, str(int(r[k]))) for k in FLOW_COUNTS}}
                for index, r in per_wave_rows.iterrows()]
    per_model = [{"domain": names["domain"][r["domain"]], "cohort": cohorts[r["cohort"]],
                  **{k: int(r[k]) for k in ("participants", "insufficient_items", "excluded", "analysed")}}
                 for r in flow[flow["wave"] == "pre+post"].to_dict(orient="records")]
    return per_wave, per_model, set(status.to_numpy().ravel()) - {release.SHOWN}


def without_cohort_marks(flow: list[dict]) -> dict[str, str]:
    """Per wave, the mark printed instead of the count of excluded people without a cohort
    where the control hid it (``flow_rows``)."""
    return {row["wave_key"]: row["excluded"] for row in flow
            if row["cohort_key"] == "unknown" and "excluded" in row["hidden"]}


def cell_text(status: str, view: release_view.ReportCells, shown: str) -> str:
    """``shown`` where the control left the cell shown, else the mark of its reason."""
    return shown if status == release.SHOWN else view.marks[status]


def sample_rows(sample: pd.DataFrame, view: release_view.ReportCells, t: dict, names: dict,
                lang: str) -> tuple[list, set]:
    """The sample by cohort, with the role and settlement cells the control hid marked; also
    the statuses of the hidden cells (for the table's notes)."""
    sample = sample.copy()
    sample["level"] = sample["level"].fillna("")
    sample["status"] = release_view.sample_status(view, sample)
    rows = []
    for characteristic in ("participants", "institutions", "municipalities", "role", "settlement"):
        part = sample[sample["characteristic"] == characteristic]
        for level in dict.fromkeys(part["level"]):
            cells = {}
            for cohort in COHORTS:
                row = part[(part["cohort"] == cohort) & (part["level"] == level)]
                if row.empty:
                    cells[cohort] = "0"
                elif pd.notna(row["share"].iloc[0]):
                    cells[cohort] = cell_text(row["status"].iloc[0], view,
                                              f"{format_count(row['n'].iloc[0], lang)} ({format_share(row['share'].iloc[0], lang)})")
                else:
                    cells[cohort] = cell_text(row["status"].iloc[0], view, format_count(row["n"].iloc[0], lang))
            label = t["sample_labels"][characteristic]
            if characteristic == "role":
                label += ": " + (names["role"].get(level) or t["unknown"])
            elif characteristic == "settlement":
                label += ": " + t["settlements"][level]
            rows.append({"label": label, **cells})
    years = sample[sample["characteristic"] == "years_in_management"].set_index("cohort")
    fmt = lambda v: format_optional(v, lang, 1)  # noqa: E731
    rows.append({"label": t["sample_labels"]["years_in_management"],
                 **{c: f"{fmt(years.loc[c, 'mean'])} ({fmt(years.loc[c, 'sd'])})" for c in COHORTS}})
    return rows, set(sample["status"]) - {release.SHOWN}


def municipality_rows(municipalities: pd.DataFrame, view: release_view.ReportCells, names: dict) -> dict:
    long = municipalities.copy()
    long["status"] = release_view.municipality_status(view, long)
    rows = []
    for muni in sorted(set(long["municipality"]), key=lambda m: names["municipality"].get(m, m)):
        cells = {}
        for cohort in COHORTS:
            row = long[(long["municipality"] == muni) & (long["cohort"] == cohort)]
            cells[cohort] = "0" if row.empty else cell_text(row["status"].iloc[0], view, str(int(row["n"].iloc[0])))
        rows.append({"municipality": names["municipality"].get(muni, muni), **cells})
    return {"muni_rows": rows, "muni_hidden": set(long["status"]) - {release.SHOWN},
            "muni_totals": {c: int(long.loc[long["cohort"] == c, "n"].sum()) for c in COHORTS}}


def disclosure_notes(hidden: set, t: dict, min_cell: int, low_threshold: bool = True) -> list[str]:
    """The legend of the marks in use: below the threshold, hidden so that others cannot be
    worked out; and (``low_threshold``) a threshold below the usual one."""
    notes = [t["suppression_note"].format(min_cell=min_cell)] * (release.PRIMARY in hidden)
    notes += [t["complementary_note"].format(min_cell=min_cell)] * (release.COMPLEMENTARY in hidden)
    low = release_view.low_threshold_note(t, min_cell) if low_threshold else None
    return notes + ([low] if low else [])


def descriptive_hidden(view: release_view.ReportCells, items: tuple[str, ...] = ("descriptives:mean",)) -> set:
    """The reasons for which cells of a table (the descriptives by default) were hidden."""
    rows = view.rows[view.rows["item"].str.startswith(items)]
    return set(rows["status"]) - {release.SHOWN}


def reliability_rows(reliability: pd.DataFrame, codebook, t: dict, names: dict, lang: str) -> list[dict]:
    fmt = lambda v: format_optional(v, lang)  # noqa: E731
    rows = []
    for domain in codebook.domains:
        for wave in WAVES:
            block = reliability[(reliability["domain"] == domain) & (reliability["wave"] == wave)]
            if block.empty:
                continue
            alpha = block[block["term"] == "alpha"].iloc[0]
            omega = block[block["term"] == "omega_total"].iloc[0]
            item_r = block[block["term"].str.startswith("item_total_r:")]["estimate"]
            rows.append({"domain": names["domain"][domain], "wave": t["waves"][wave], "n": int(alpha["n"]),
                         "k": int(alpha["k"]), "alpha": fmt(alpha["estimate"]),
                         "alpha_ci": format_ci(alpha["conf_low"], alpha["conf_high"], lang),
                         "omega": fmt(omega["estimate"]), "item_r": f"{fmt(item_r.min())}–{fmt(item_r.max())}"})
    return rows


def invariance_rows(table: pd.DataFrame, domains: list[str], t: dict, names: dict, lang: str) -> list[dict]:
    """Blocks of Table "invariance": per domain and group a heading, then a row per model with
    its fit, the change from the model below it and the decision, or the reason for no numbers."""
    s = t["invariance"]
    fmt = lambda v, digits=3: format_optional(v, lang, digits)  # noqa: E731
    blocks = []
    for domain in domains:
        for group, rows in table[table["domain"] == domain].groupby("group", sort=False):
            heading = f"{names['domain'][domain]}: {s['groups'][group]} (n = {format_count(int(rows['n'].iloc[0]), lang)})"
            if (rows["status"] == "too_few").all():
                note = s["row_too_few"].format(n=counted(int(rows["n"].iloc[0]), t["nouns"]["participant"], lang))
                blocks.append({"heading": heading, "rows": [{"model": "—", "note": note}]})
                continue
            lines = []
            for row in rows.itertuples():
                model = s["models"][row.model]
                if isinstance(row.freed_items, str) and row.freed_items:
                    model += " (" + s["freed"].format(items=", ".join(row.freed_items.split(";"))) + ")"
                if row.status != "ok":
                    note = s["row_" + row.status].format(n=counted(int(row.n), t["nouns"]["participant"], lang))
                    lines.append({"model": model, "note": note})
                    continue
                lines.append({"model": model, "chisq": f"{fmt(row.chisq, 2)} ({int(row.df)})", "cfi": fmt(row.cfi),
                              "rmsea": f"{fmt(row.rmsea)} {format_ci(row.rmsea_low, row.rmsea_high, lang, 3)}",
                              "srmr": fmt(row.srmr), "delta_cfi": fmt(row.delta_cfi), "delta_rmsea": fmt(row.delta_rmsea),
                              "p": "—" if pd.isna(row.lr_p_value_scaled) else
                              format_p(row.lr_p_value_scaled, lang).removeprefix("p\u00a0").removeprefix("=\u00a0"),
                              "decision": s["decisions"][row.decision], "note": ""})
            blocks.append({"heading": heading, "rows": lines})
    return blocks


def needs_rows(tables: dict, view: release_view.ReportCells, t: dict, names: dict, lang: str) -> dict:
    """The needs by stakeholder group (mean and rank), their tests and the preferred formats; a
    group's cells the control hid (a group below the threshold) carry its mark."""
    fmt = lambda v, digits=2: format_optional(v, lang, digits)  # noqa: E731
    needs, formats = tables["needs"], tables["needs_formats"]
    tests = tables["needs_tests"].set_index("area")
    groups = [g for g in ("university", "iro", "school") if g in set(needs["stakeholder"])]
    need_rows = []
    for area in names["area"]:
        cells = {}
        for group in groups:
            row = needs[(needs["stakeholder"] == group) & (needs["area"] == area)]
            status = view.status("needs:estimate", domain=release_cells.need_domain(area), role=group)
            cells[group] = ("—" if row.empty else
                            cell_text(status or release.SHOWN, view,
                                      f"{fmt(row['estimate'].iloc[0])} ({int(row['rank'].iloc[0])})"))
        test = tests.loc[area]
        need_rows.append({"area": names["area"][area], "cells": [cells[g] for g in groups],
                          "p_holm": format_p(test["p_holm"], lang) if pd.notna(test["p_holm"]) else "—",
                          "epsilon": fmt(test["epsilon_squared"], 3)})
    format_rows = []
    for code, label in names["format"].items():
        cells = []
        for group in groups:
            row = formats[(formats["stakeholder"] == group) & (formats["format"] == code)]
            status = view.status(f"needs_formats:{code}:count", role=group)
            cells.append("—" if row.empty else cell_text(
                status or release.SHOWN, view, f"{int(row['count'].iloc[0])} ({format_share(row['share'].iloc[0], lang)})"))
        format_rows.append({"format": label, "cells": cells})
    sizes = needs.groupby("stakeholder")["n"].max().to_dict()
    headers = [f"{t['stakeholder_short'][g]} (n\u00a0=\u00a0{format_count(sizes[g], lang)})" for g in groups]
    return {"need_rows": need_rows, "format_rows": format_rows, "group_headers": headers, "groups": groups}


def descriptive_rows(descriptives: pd.DataFrame, view: release_view.ReportCells, codebook, t: dict, names: dict,
                     lang: str) -> list[dict]:
    """Mean (SD; n) per domain, cohort and wave, or the mark of a cell the control hid."""
    fmt = lambda v: format_optional(v, lang)  # noqa: E731
    descriptives = descriptives.assign(status=release_view.descriptive_status(view, descriptives).to_numpy())
    rows = []
    for domain in codebook.domains:
        for cohort in COHORTS:
            block = descriptives[(descriptives["domain"] == domain) & (descriptives["cohort"] == cohort)].set_index("wave")
            rows.append({"domain": names["domain"][domain], "cohort": t["cohorts"][cohort],
                         "cells": [cell_text(block.loc[w, "status"], view,
                                             f"{fmt(block.loc[w, 'mean'])} ({fmt(block.loc[w, 'sd'])}; {int(block.loc[w, 'n'])})")
                                   if w in block.index else "—" for w in RATING_WAVES]})
    return rows


def did_rows(findings: EvaluationFindings, did: pd.DataFrame, names: dict, lang: str) -> list[dict]:
    """The primary DiD per domain: unadjusted and Holm-consistent intervals (the latter from
    the findings, the same numbers as the summary)."""
    raw = did.set_index("domain")
    fmt = lambda v, digits=2: format_optional(v, lang, digits)  # noqa: E731
    return [{"domain": names["domain"][f.domain], "estimate": fmt(f.estimate),
             "ci": format_ci(raw.loc[f.domain, "conf_low"], raw.loc[f.domain, "conf_high"], lang),
             "ci_holm": format_ci(f.conf_low, f.conf_high, lang), "df": fmt(raw.loc[f.domain, "df"], 1),
             "p_value": format_p(f.p_value, lang), "p_holm": format_p(f.p_holm, lang),
             "d_ppc2": fmt(f.d), "d_ci": format_ci(f.d_conf_low, f.d_conf_high, lang),
             "n_participants": f.n_participants, "n_institutions": f.n_institutions}
            for f in findings.domains]


def effect_rows(effects: pd.DataFrame, domains: list[str], names: dict, lang: str) -> list[dict]:
    fmt = lambda v: format_optional(v, lang)  # noqa: E731
    rows = []
    for domain in domains:
        block = effects[effects["domain"] == domain]
        get = lambda measure, cohort: block[(block["measure"] == measure) & (block["cohort"] == cohort)].iloc[0]  # noqa: E731
        dz_p, dz_c = get("d_z", "program"), get("d_z", "comparison")
        rows.append({"domain": names["domain"][domain],
                     "dz_program": f"{fmt(dz_p['estimate'])} {format_ci(dz_p['conf_low'], dz_p['conf_high'], lang)}",
                     "dz_comparison": f"{fmt(dz_c['estimate'])} {format_ci(dz_c['conf_low'], dz_c['conf_high'], lang)}",
                     "dav_program": fmt(get("d_av", "program")["estimate"]),
                     "dav_comparison": fmt(get("d_av", "comparison")["estimate"]),
                     "d_model": fmt(get("d_model", "program vs comparison")["estimate"])})
    return rows


def check_rows(checks: pd.DataFrame, variance: pd.DataFrame, domains: list[str], t: dict, names: dict,
               lang: str) -> list[dict]:
    fmt = lambda v, digits=2: format_optional(v, lang, digits)  # noqa: E731
    rows = []
    for r in checks.set_index("domain").loc[domains].reset_index().to_dict(orient="records"):
        v = variance[variance["domain"] == r["domain"]].set_index("component")["variance"]
        rows.append({"domain": names["domain"][r["domain"]],
                     "converged": t["answer_yes"] if r["converged"] else t["answer_no"],
                     "singular": t["answer_yes"] if r["singular"] else t["answer_no"],
                     "var_institution": fmt(v["institution"], 3), "var_participant": fmt(v["institution:participant"], 3),
                     "var_residual": fmt(v["residual"], 3), "icc_institution": fmt(r["icc_institution"]),
                     "icc_participant": fmt(r["icc_participant"]), "r2m": fmt(r["r2_marginal"]),
                     "r2c": fmt(r["r2_conditional"])})
    return rows


def sensitivity_rows(findings: EvaluationFindings, sens: pd.DataFrame, domains: list[str], t: dict,
                     lang: str) -> list[dict]:
    """Estimate [unadjusted 95% CI] per analysis and domain; "—" with a mark where the analysis
    was not estimable, "n. c." where it did not converge."""
    status = {(f.analysis, f.domain): f.status for group in (*findings.sensitivity.values(), findings.followup,
                                                              findings.moderation) for f in group}
    rows = []
    for analysis in SENSITIVITY_ROWS:
        cells = []
        for domain in domains:
            row = sens[(sens["analysis"] == analysis) & (sens["domain"] == domain)]
            state = status.get((analysis, domain))
            if state in ("not_estimable", "not_converged") or row.empty or pd.isna(row["estimate"].iloc[0]):
                cells.append(t["cell_status"].get(state or "not_estimable"))
            else:
                r = row.iloc[0]
                cells.append(f"{format_optional(r['estimate'], lang)} {format_ci(r['conf_low'], r['conf_high'], lang)}")
        label = t["analyses"][analysis] + (t["exploratory_mark"] if analysis in ("followup", "moderation_communication")
                                           else "")
        rows.append({"analysis": label, "cells": cells})
    return rows


def shift_rows(shift: pd.DataFrame, domains: list[str], t: dict, names: dict, lang: str) -> list[dict]:
    rows = []
    for domain in [d for d in domains if d in set(shift["domain"])]:
        for cohort in ("program", "comparison", "program - comparison"):
            row = shift[(shift["domain"] == domain) & (shift["cohort"] == cohort)]
            if row.empty:
                continue
            r = row.iloc[0]
            rows.append({"domain": names["domain"][domain], "cohort": t["cohorts"].get(cohort, t["cohort_difference"]),
                         "estimate": format_optional(r["estimate"], lang),
                         "ci": format_ci(r["conf_low"], r["conf_high"], lang), "p": format_p(r["p_value"], lang),
                         "n": int(r["n"])})
    return rows


def report_figures(findings: EvaluationFindings, tables: dict, domains: list[str], groups: list[str], t: dict,
                   names: dict, lang: str) -> dict:
    dn = {d: names["domain"][d] for d in domains}
    forest = pd.DataFrame([{"label": dn[f.domain], "estimate": f.estimate, "conf_low": f.conf_low,
                            "conf_high": f.conf_high} for f in findings.domains])
    if findings.combined.usable:
        combined = tables["sensitivity"].query("analysis == 'combined'").iloc[0]
        forest = pd.concat([forest, pd.DataFrame([{"label": t["analyses"]["combined"],
                                                   **combined[["estimate", "conf_low", "conf_high"]].to_dict()}])])
    usable = {(f.analysis, f.domain) for group in (*findings.sensitivity.values(), findings.followup)
              for f in group if f.usable} | {("primary", d) for d in domains}
    sens = tables["sensitivity"]
    sens_plot = sens[[(a, d) in usable for a, d in zip(sens["analysis"], sens["domain"])]]
    # The means and needs figures show only what the control left shown (the data is main's
    # release view; the drawing and the alternative texts are report_figures').
    view = release_view.ReportCells(tables["disclosure_control"], release_cells.evaluation_report(lang), {})
    descriptives = tables["descriptives"]
    descriptives = descriptives[release_view.descriptive_status(view, descriptives).to_numpy() == release.SHOWN]
    shown = {**tables, "descriptives": descriptives,
             "needs_distribution": shown_distribution(tables["needs_distribution"], view)}
    return evaluation_figures(shown, forest, sens_plot, t, names, groups, domains, lang)


def shown_distribution(distribution: pd.DataFrame, view: release_view.ReportCells) -> pd.DataFrame:
    """The rating distribution of the needs figure without the groups the control hid."""
    rows = view.rows[view.rows["item"].str.startswith("figure_likert:")]
    hidden = rows[rows["status"] != release.SHOWN]
    hidden_pairs = set(zip(hidden["role"], hidden["domain"]))
    keep = [(g, release_cells.need_domain(a)) not in hidden_pairs
            for g, a in zip(distribution["stakeholder"], distribution["area"])]
    return distribution[keep]


def methods_items(t: dict) -> list[dict]:
    """The methods appendix: each formula and symbol as TeX, which the template writes between
    dollars and the typesetting pass sets as text (``formulas.formula_html``)."""
    return [{**item, "formulas": list(item["formulas"]),
             "symbols": [{"symbol": symbol, "meaning": meaning}
                         for symbol, meaning in item["symbols"]]}
            for item in t["methods"]]


def evaluation_context(config: dict, tables: dict[str, pd.DataFrame], registry: pd.DataFrame,
                       lang: str, strings: dict, prov: dict) -> dict:
    codebook = load_codebook(config["codebook"])
    names = label_names(codebook, registry, lang)
    t = strings
    domains = list(config["analysis"]["domains"])
    findings = evaluation_findings(tables, config)
    verdict_text, domain_lines = sentences.verdict(findings.domains, t, names, lang)
    min_cell = config["reports"]["min_cell"]
    view = release_view.ReportCells(tables["disclosure_control"], release_cells.evaluation_report(lang),
                                    release_view.marks(t, min_cell))
    release_view.check_evaluation_shown(view)
    flow, flow_model, flow_hidden = flow_rows(tables["flow"], view, t, names)
    sample, sample_hidden = sample_rows(tables["sample"], view, t, names, lang)
    municipalities = municipality_rows(tables["municipalities"], view, names)
    descriptives = descriptive_rows(tables["descriptives"], view, codebook, t, names, lang)
    needs = needs_rows(tables, view, t, names, lang)
    section_titles = {**t["sections"], **t["sections_extra"]}
    n_participants = sum(n for _, n in findings.study.participants)
    n_institutions = sum(n for _, n in findings.study.schools)
    numbering = Numbering(EVALUATION_ORDER)
    return {
        "lang": lang, "t": t, "n": numbering,
        "title": config["study"]["title"][lang], "program": config["study"]["program"][lang],
        "report_date": config["study"]["report_date"],
        "report_date_text": format_date(config["study"]["report_date"], lang),
        "sections": [{"id": s, "title": section_titles[s]} for s in SECTIONS], "section_titles": section_titles,
        "verdict": verdict_text, "domain_lines": domain_lines,
        "hypothesis_lines": design.hypothesis_sentences(findings, config, t, lang),
        "design_lines": design.design_sentences(findings, config, t, names, lang),
        "limitations": design.limitation_sentences(findings, t, names, lang,
                                                   Numbering(EVALUATION_ORDER)["tab-sensitivity"]),
        "sample_sentence": t["sample_sentence"].format(
            participants=counted(n_participants, t["nouns"]["participant"], lang),
            institutions=counted(n_institutions, t["nouns"]["institution_genitive"], lang)),
        "interpretation": sentences.interpretation(findings, t, names, lang),
        "checks_lines": sentences.checks_sentences(findings, t, names, lang),
        "methods": methods_items(t),
        "authors": [{"name": a["name"][lang], "affiliation": a["affiliation"][lang]}
                    for a in config["reports"].get("authors", [])],
        "contact": config["reports"].get("contact"),
        "flow": flow, "flow_model": flow_model, "sample_rows": sample,
        "cleaning_notes": sentences.cleaning_notes(tables["flow"][tables["flow"]["wave"] != "pre+post"], t, lang,
                                                   table=numbering["tab-flow"], marks=without_cohort_marks(flow))
        + disclosure_notes(flow_hidden, t, min_cell, low_threshold=False),
        "muni_rows": municipalities["muni_rows"], "muni_totals": municipalities["muni_totals"],
        "disclosure_notes": disclosure_notes(sample_hidden | municipalities["muni_hidden"], t, min_cell),
        "min_cell": min_cell,
        "reliability": reliability_rows(tables["reliability"], codebook, t, names, lang),
        "instrument_sentence": design.instrument_sentence(codebook, domains, Numbering(EVALUATION_ORDER)["tab-reliability"],
                                                          t, names, lang),
        "needs_sentence": design.needs_sentence(
            needs["groups"], tables["needs"].groupby("stakeholder")["n"].max().to_dict(),
            {k: Numbering(EVALUATION_ORDER)[v] for k, v in (("table", "tab-needs"), ("figure", "fig-likert"),
                                                             ("table2", "tab-formats"))}, t, lang),
        "invariance_lines": sentences.invariance_sentences(findings, t, names, lang),
        "invariance": invariance_rows(tables["invariance"], domains, t, names, lang),
        "group_headers": needs["group_headers"], "need_rows": needs["need_rows"], "format_rows": needs["format_rows"],
        "descriptives": descriptives,
        "descriptive_notes": disclosure_notes(descriptive_hidden(view), t, min_cell, low_threshold=False),
        "needs_notes": disclosure_notes(descriptive_hidden(view, ("needs:", "needs_formats:")), t, min_cell,
                                        low_threshold=False),
        "did": did_rows(findings, tables["did"], names, lang),
        "effects": effect_rows(tables["effect_sizes"], domains, names, lang),
        "checks": check_rows(tables["model_checks"], tables["variance_components"], domains, t, names, lang),
        "domain_headers": [names["domain"][d] for d in domains],
        "sens_rows": sensitivity_rows(findings, tables["sensitivity"], domains, t, lang),
        "combined_text": sentences.combined_sentence(findings, t, names, lang),
        "shift_rows": shift_rows(tables["response_shift"], domains, t, names, lang),
        "figures": report_figures(findings, tables, domains, needs["groups"], t, names, lang),
        "provenance": prov,
    }
