"""Reports: tables of results/tables -> Jinja2 HTML in the reader's language -> PDF (WeasyPrint).

The evaluation report (Russian and English) and one report per institution read only the tidy
tables under ``results/tables`` and the pseudonymised registry; numbers are formatted for the
locale; the verdict on the hypothesis is worded from the Holm-adjusted results.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import platform
import shutil
import warnings
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import jinja2
import pandas as pd
import yaml

from dpo_eval import __version__, aggregates
from dpo_eval.accessibility import DocumentInfo, organisations
from dpo_eval.aggregates import suppress
from dpo_eval.layout import load_terms, render_report
from dpo_eval.report_figures import evaluation_figures, formula_figure, institution_figures, profile_series
from dpo_eval.codebook import load_codebook
from dpo_eval.io import read_csv, sha256_file, write_outputs
from dpo_eval.study import EVALUATION_TABLES, INSTITUTION_TABLES
from dpo_eval.typography import counted, format_count, format_number, plural, with_unit

ALPHA = 0.05
PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_KEYS_NOT_DIGESTED = ("reproduce",)  # how a run is started, not what it computes


# --------------------------------------------------------------------------- formatting


def format_optional(value, lang: str, digits: int = 2, dash: str = "—") -> str:
    return dash if value is None or pd.isna(value) else format_number(float(value), lang, digits)


def format_p(p: float, lang: str) -> str:
    """APA-style p-value: "p < 0.001" below 0.001, otherwise three decimals."""
    if p < 0.001:
        return f"p\u00a0<\u00a0{format_number(0.001, lang, 3)}"
    return f"p\u00a0=\u00a0{format_number(p, lang, 3)}"


def format_ci(low: float, high: float, lang: str, digits: int = 2) -> str:
    separator = "; " if lang == "ru" else ", "
    return f"[{format_number(low, lang, digits)}{separator}{format_number(high, lang, digits)}]"


def format_date(iso_date: str, lang: str) -> str:
    year, month, day = iso_date.split("-")
    return f"{day}.{month}.{year}" if lang == "ru" else iso_date


def format_share(share: float, lang: str) -> str:
    """A share in per cent: "25 %" with a narrow no-break space in Russian (GOST 8.417), "25%" in English."""
    return format_number(100 * share, lang, 0) + ("\u202f%" if lang == "ru" else "%")


# --------------------------------------------------------------------------- provenance


def code_digest() -> str:
    """SHA-256 over the package's source files: identifies the code without needing git."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*")):
        if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts:
            digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def config_digest(config: dict) -> str:
    digested = {k: v for k, v in config.items() if k not in CONFIG_KEYS_NOT_DIGESTED}
    return hashlib.sha256(json.dumps(digested, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def provenance(config: dict, manifest: pd.DataFrame, lock_file: str | Path) -> dict:
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in
                         ("pandas", "numpy", "scipy", "statsmodels", "matplotlib", "weasyprint", "jinja2"))
    python = ".".join(platform.python_version_tuple()[:2])
    return {
        "code_version": __version__,
        "code_sha256": code_digest(),
        "config_sha256": config_digest(config),
        # The configuration the tables were computed with (dpo_eval.settings.computed_with).
        "settings": [{"key": key, "value": value if isinstance(value, str)
                      else json.dumps(value, ensure_ascii=False)}
                     for key, value in config.get("computed_with", {}).items()],
        "lock_sha256": sha256_file(lock_file),
        "software": f"Python {python}; {versions}",
        "inputs": manifest.to_dict(orient="records"),
    }


# --------------------------------------------------------------------------- helpers


def load_strings(i18n_dir: str | Path, lang: str) -> dict:
    with open(Path(i18n_dir) / f"{lang}.yaml", encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def svg_image(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


class Numbering:
    """Numbers of tables and figures in document order, for captions and cross-references:
    ``order`` lists the ids as they appear, so a reference before the object gets its number."""

    def __init__(self, order: tuple[str, ...] = ()) -> None:
        self.numbers: dict[str, int] = {}
        self.counts = {"tab": 0, "fig": 0}
        for key in order:
            self[key]

    def __getitem__(self, key: str) -> int:
        if key not in self.numbers:
            kind = key.split("-")[0]
            self.counts[kind] += 1
            self.numbers[key] = self.counts[kind]
        return self.numbers[key]


def holm_intervals(did: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Confidence intervals on the footing of the Holm-adjusted p-values.

    Holm's step-down procedure multiplies domain k's p-value by an effective factor
    c_k = p_Holm,k / p_k (between 1 and the number of domains m: (m - j + 1) at the step j that
    decides it, Holm 1979). Inverting the same Satterthwaite t-test at the level alpha / c_k,

        estimate ± t(1 − alpha / (2 c_k); df) · SE,

    gives an interval that excludes zero exactly when the Holm-adjusted p is below alpha, so a
    "not significant" verdict never stands next to an interval off zero. Each interval is at
    least as wide as the unadjusted one and at most as wide as the Bonferroni interval
    (level 1 − alpha / m). Adds columns conf_low_holm, conf_high_holm and level_holm.
    """
    from scipy import stats

    m = len(did)
    table = did.copy()
    factor = (table["p_holm"] / table["p_value"]).where(table["p_value"] > 0, m).clip(lower=1, upper=m)
    table["level_holm"] = 1 - alpha / factor
    quantile = stats.t.ppf(1 - alpha / (2 * factor), table["df"])
    table["conf_low_holm"] = table["estimate"] - quantile * table["std_error"]
    table["conf_high_holm"] = table["estimate"] + quantile * table["std_error"]
    return table


def verdict(did: pd.DataFrame, strings: dict, domain_names: dict, lang: str) -> tuple[str, list[str]]:
    """The verdict on the hypothesis and one sentence per domain, worded from the Holm-adjusted
    p-values with the Holm-compatible intervals (``holm_intervals``) beside them.

    A non-significant difference is "not demonstrated", never "rejected"; the comparison is
    quasi-experimental, so the wording is descriptive ("the program cohort gained more"), not
    causal ("the program raised")."""
    did = holm_intervals(did)
    lines, supported, opposite = [], [], []
    for row in did.itertuples():
        name = domain_names[row.domain]
        values = {"domain": name, "low": format_number(row.conf_low_holm, lang),
                  "high": format_number(row.conf_high_holm, lang), "p": format_p(row.p_holm, lang)}
        if row.p_holm < ALPHA and row.estimate > 0:
            supported.append(row.domain)
            lines.append(strings["domain_supported"].format(estimate=points(row.estimate, strings, lang), **values))
        elif row.p_holm < ALPHA:
            opposite.append(name)
            lines.append(strings["domain_opposite"].format(estimate=points(-row.estimate, strings, lang), **values))
        else:
            lines.append(strings["domain_not_significant"].format(estimate=points(row.estimate, strings, lang), **values))
    if len(supported) == len(did):
        text = strings["verdict_supported"]
    elif supported:
        text = strings["verdict_partial"]
    else:
        text = strings["verdict_not_demonstrated"]
    for name in opposite:
        text += " " + strings["verdict_opposite"].format(domain=name)
    return text + " " + strings["verdict_design"], lines


def points(value: float, strings: dict, lang: str, digits: int = 2) -> str:
    """A difference on the score scale with its unit: "0,50 балла", "1.00 points"."""
    number = format_number(value, lang, digits)
    quantity = Decimal(f"{abs(value):.{digits}f}")
    return with_unit(number, plural(quantity, strings["nouns"]["point"], lang))


def join_words(words: list[str], strings: dict) -> str:
    """"a, b и c": commas between the items, the language's "and" before the last."""
    words = list(words)
    if len(words) < 2:
        return "".join(words)
    return ", ".join(words[:-1]) + strings["and"] + words[-1]


def excludes_zero(low: float, high: float) -> bool:
    return low > 0 or high < 0


def effect_size_word(d: float, strings: dict) -> str:
    """Cohen's (1988) conventional benchmarks for a standardised difference: below 0.2
    negligible, 0.2 small, 0.5 medium, 0.8 large."""
    size = abs(d)
    key = "negligible" if size < 0.2 else "small" if size < 0.5 else "medium" if size < 0.8 else "large"
    return strings["effect_size_words"][key]


def interpretation(tables: dict[str, pd.DataFrame], domains: list[str], strings: dict, names: dict,
                   lang: str) -> dict[str, list[str]]:
    """Hedged, rule-based sentences on the results: the gain, its persistence at follow-up,
    moderation by communication quality, the response shift of the retrospective ratings,
    agreement of the sensitivity analyses, and the needs priorities per stakeholder group;
    then conclusions and recommendations that follow from the same rules."""
    t = strings["interpretation"]
    dn = names["domain"]
    ci = lambda low, high: format_ci(low, high, lang)  # noqa: E731
    did = holm_intervals(tables["did"].set_index("domain").loc[domains].reset_index())
    sens = tables["sensitivity"]
    out = {"gain": [], "followup": [], "moderation": [], "shift": [], "sensitivity": [], "needs": [],
           "conclusions": [], "recommendations": []}
    shown_gain = [r for r in did.itertuples() if r.p_holm < ALPHA and r.estimate > 0]
    quote = ("«{}»" if lang == "ru" else "\u201c{}\u201d").format
    for r in did.itertuples():
        size = effect_size_word(r.d_ppc2, strings)
        key = "gain_shown" if (r.p_holm < ALPHA and r.estimate > 0) else (
            "gain_opposite" if r.p_holm < ALPHA else "gain_not_shown")
        out["gain"].append(t[key].format(domain=dn[r.domain], estimate=points(abs(r.estimate), strings, lang),
                                         d=format_number(r.d_ppc2, lang), size=size))

    def sens_row(analysis, domain):
        row = sens[(sens["analysis"] == analysis) & (sens["domain"] == domain)]
        return None if row.empty or pd.isna(row["estimate"].iloc[0]) else row.iloc[0]

    def sentence_values(row, domain):
        return {"domain": dn[domain], "estimate": points(row["estimate"], strings, lang),
                "ci": ci(row["conf_low"], row["conf_high"])}

    persisting, fading = [], []
    for domain in domains:
        r = sens_row("followup", domain)
        if r is None:
            continue
        values = sentence_values(r, domain)
        if r["conf_low"] > 0:
            persisting.append(dn[domain])
            out["followup"].append(t["followup_persists"].format(**values))
        else:
            fading.append(dn[domain])
            out["followup"].append(t["followup_not_shown"].format(**values))
    moderated = []
    for domain in domains:
        r = sens_row("moderation_communication", domain)
        if r is None:
            continue
        values = sentence_values(r, domain)
        if excludes_zero(r["conf_low"], r["conf_high"]):
            moderated.append(dn[domain])
            out["moderation"].append(t["moderation_larger" if r["estimate"] > 0 else "moderation_smaller"].format(**values))
    if not moderated and len(sens[sens["analysis"] == "moderation_communication"]):
        out["moderation"].append(t["moderation_none"])
    shift = tables["response_shift"]
    shifted = []
    for domain in domains:
        row = shift[(shift["domain"] == domain) & (shift["cohort"] == "program")]
        if row.empty:
            continue
        r = row.iloc[0]
        if excludes_zero(r["conf_low"], r["conf_high"]):
            shifted.append(dn[domain])
            out["shift"].append(t["shift_lower" if r["estimate"] < 0 else "shift_higher"].format(
                **sentence_values(r, domain)))
    if not shifted:
        out["shift"].append(t["shift_none"])
    agree, disagree = [], []
    for r in did.itertuples():
        for analysis in ("careless_excluded", "completers", "then_baseline"):
            s = sens_row(analysis, r.domain)
            if s is None:
                continue
            same = (s["conf_low"] > 0) == (r.p_holm < ALPHA and r.estimate > 0) and (s["estimate"] > 0) == (r.estimate > 0)
            (agree if same else disagree).append(f"{dn[r.domain]}: {strings['analyses'][analysis].lower()}")
    out["sensitivity"].append(t["sensitivity_agree"] if not disagree else
                              t["sensitivity_disagree"].format(analyses="; ".join(disagree)))
    needs = tables["needs"]
    for group in [g for g in ("school", "iro", "university") if g in set(needs["stakeholder"])]:
        top = needs[needs["stakeholder"] == group].sort_values(["rank", "area"]).head(2)
        out["needs"].append(t["needs_top"].format(
            group=strings["stakeholder_plural"][group],
            areas=join_words([f"«{names['area'][a]}»" if lang == "ru" else f'"{names["area"][a]}"'
                              for a in top["area"]], strings)))
    tests = tables["needs_tests"]
    different = [names["area"][a] for a in tests.loc[tests["p_holm"] < ALPHA, "area"]]
    out["needs"].append(t["needs_differ"].format(areas=", ".join(different)) if different else t["needs_agree"])

    if shown_gain:
        out["conclusions"].append(t["conclusion_gain"].format(domains=join_words([quote(dn[r.domain]) for r in shown_gain],
                                                                                  strings)))
    else:
        out["conclusions"].append(t["conclusion_no_gain"])
    out["conclusions"].append(t["conclusion_design"])
    if fading:
        out["conclusions"].append(t["conclusion_followup"].format(domains=join_words([quote(d) for d in fading], strings)))
    school_top = needs[needs["stakeholder"] == "school"].sort_values(["rank", "area"]).head(2)["area"]
    if len(school_top):
        out["recommendations"].append(t["recommend_needs"].format(
            areas=join_words([names["area"][a] for a in school_top], strings)))
    if fading:
        out["recommendations"].append(t["recommend_followup"])
    if moderated:
        out["recommendations"].append(t["recommend_communication"])
    if shifted:
        out["recommendations"].append(t["recommend_retrospective"])
    out["recommendations"].append(t["recommend_design"])
    return out


def overall_findings(did: pd.DataFrame, config: dict, strings: dict, names: dict, lang: str) -> list[str]:
    """The evaluation's result in two plain sentences for a school's report."""
    domains = config["analysis"]["domains"]
    table = holm_intervals(did.set_index("domain").loc[domains].reset_index())
    shown = [names["domain"][r.domain].lower() if lang == "ru" else names["domain"][r.domain].lower()
             for r in table.itertuples() if r.p_holm < ALPHA and r.estimate > 0]
    ti = strings["institution"]
    first = (ti["finding_all"] if len(shown) == len(table) else
             ti["finding_some"].format(domains=", ".join(shown)) if shown else ti["finding_none"])
    return [first, ti["finding_design"]]


# --------------------------------------------------------------------------- evaluation report

EVALUATION_ORDER = ("fig-flow", "tab-flow", "tab-flow-model", "tab-sample", "tab-municipalities",
                    "tab-reliability", "tab-needs", "fig-likert", "tab-formats", "fig-means",
                    "tab-descriptives", "tab-did", "fig-forest", "tab-effects", "tab-checks", "fig-qq",
                    "tab-sensitivity", "fig-sensitivity", "tab-shift", "tab-provenance")


def _names(codebook, registry: pd.DataFrame, lang: str) -> dict:
    suffix = "_en" if lang == "en" else ""
    return {
        "domain": {d: spec[lang] for d, spec in codebook.domains.items()},
        "area": {a["id"]: a[lang] for a in codebook.need_areas},
        "role": {code: spec[lang] for code, spec in codebook.fields["role"]["labels"].items()},
        "format": {code: spec[lang] for code, spec in codebook.fields["formats"]["labels"].items()},
        "stakeholder": {code: spec[lang] for code, spec in codebook.fields["stakeholder"]["labels"].items()},
        "municipality": dict(zip(registry["municipality"], registry["municipality" + suffix])),
        "institution": dict(zip(registry["id"], registry["name" + suffix])),
        "importance": [codebook.scales["importance5"][v][lang] for v in range(1, 6)],
    }


def evaluation_context(config: dict, tables: dict[str, pd.DataFrame], registry: pd.DataFrame,
                       lang: str, strings: dict, prov: dict) -> dict:
    codebook = load_codebook(config["codebook"])
    names = _names(codebook, registry, lang)
    t = strings
    n = Numbering(EVALUATION_ORDER)
    domains = config["analysis"]["domains"]
    dn = {d: names["domain"][d] for d in domains}
    fmt = lambda v, digits=2: format_optional(v, lang, digits)  # noqa: E731
    waves, cohorts = t["waves"], t["cohorts"]

    did = tables["did"].set_index("domain").loc[domains].reset_index()
    verdict_text, domain_lines = verdict(did, t, names["domain"], lang)

    flow = tables["flow"]
    wave_rows = flow[flow["wave"] != "pre+post"]
    flow_table = [{"wave": waves[r["wave"]], "cohort": cohorts[r["cohort"]],
                   **{k: int(r[k]) for k in ("received", "duplicates", "participants", "unmatched",
                                             "careless", "excluded", "analysed")}}
                  for r in wave_rows.to_dict(orient="records")]
    model_rows = flow[flow["wave"] == "pre+post"]
    flow_model = [{"domain": names["domain"][r["domain"]], "cohort": cohorts[r["cohort"]],
                   **{k: int(r[k]) for k in ("participants", "insufficient_items", "excluded", "analysed")}}
                  for r in model_rows.to_dict(orient="records")]

    min_cell = config["reports"]["min_cell"]
    mark = t["suppressed_mark"].format(min_cell=min_cell)
    sample = tables["sample"].copy()
    sample["level"] = sample["level"].fillna("")
    # Categories of role and settlement add up to the published cohort totals: hide small
    # cells and, where one alone would be hidden, its complement.
    sample["hidden"] = False
    for characteristic in ("role", "settlement"):
        part = sample[sample["characteristic"] == characteristic]
        sample.loc[part.index, "hidden"] = suppress(part, "n", min_cell, within=["cohort"])
    sample_hidden = bool(sample["hidden"].any())
    sample_rows = []
    for characteristic in ("participants", "institutions", "municipalities", "role", "settlement"):
        part = sample[sample["characteristic"] == characteristic]
        for level in dict.fromkeys(part["level"]):
            cells = {}
            for cohort in ("program", "comparison"):
                row = part[(part["cohort"] == cohort) & (part["level"] == level)]
                if row.empty:
                    cells[cohort] = "0"
                elif row["hidden"].iloc[0]:
                    cells[cohort] = mark
                elif pd.notna(row["share"].iloc[0]):
                    cells[cohort] = f"{format_count(row['n'].iloc[0], lang)} ({format_share(row['share'].iloc[0], lang)})"
                else:
                    cells[cohort] = format_count(row["n"].iloc[0], lang)
            label = t["sample_labels"][characteristic]
            if characteristic == "role":
                label += ": " + (names["role"].get(level) or t["unknown"])
            elif characteristic == "settlement":
                label += ": " + t["settlements"][level]
            sample_rows.append({"label": label, **cells})
    years = sample[sample["characteristic"] == "years_in_management"].set_index("cohort")
    sample_rows.append({"label": t["sample_labels"]["years_in_management"],
                        **{c: f"{fmt(years.loc[c, 'mean'], 1)} ({fmt(years.loc[c, 'sd'], 1)})" for c in ("program", "comparison")}})

    long = tables["municipalities"].copy()
    long["hidden"] = suppress(long, "n", config["reports"]["min_cell"], within=["cohort"])
    muni_rows = []
    for muni in sorted(set(long["municipality"]), key=lambda m: names["municipality"].get(m, m)):
        cells = {}
        for cohort in ("program", "comparison"):
            row = long[(long["municipality"] == muni) & (long["cohort"] == cohort)]
            cells[cohort] = ("0" if row.empty else
                             mark if row["hidden"].iloc[0] else str(int(row["n"].iloc[0])))
        muni_rows.append({"municipality": names["municipality"].get(muni, muni), **cells})
    muni_totals = {c: int(long.loc[long["cohort"] == c, "n"].sum()) for c in ("program", "comparison")}
    any_suppressed = bool(long["hidden"].any())

    reliability = tables["reliability"]
    rel_rows = []
    for domain in codebook.domains:
        for wave in ("pre", "post", "followup"):
            block = reliability[(reliability["domain"] == domain) & (reliability["wave"] == wave)]
            if block.empty:
                continue
            alpha = block[block["term"] == "alpha"].iloc[0]
            omega = block[block["term"] == "omega_total"].iloc[0]
            item_r = block[block["term"].str.startswith("item_total_r:")]["estimate"]
            rel_rows.append({"domain": names["domain"][domain], "wave": waves[wave], "n": int(alpha["n"]),
                             "k": int(alpha["k"]), "alpha": fmt(alpha["estimate"]),
                             "alpha_ci": format_ci(alpha["conf_low"], alpha["conf_high"], lang),
                             "omega": fmt(omega["estimate"]),
                             "item_r": f"{fmt(item_r.min())}–{fmt(item_r.max())}"})

    needs = tables["needs"]
    tests = tables["needs_tests"].set_index("area")
    groups = [g for g in ("university", "iro", "school") if g in set(needs["stakeholder"])]
    need_rows = []
    for area in names["area"]:
        cells = {}
        for group in groups:
            row = needs[(needs["stakeholder"] == group) & (needs["area"] == area)]
            cells[group] = (f"{fmt(row['estimate'].iloc[0])} ({int(row['rank'].iloc[0])})"
                            if not row.empty else "—")
        test = tests.loc[area]
        need_rows.append({"area": names["area"][area], "cells": [cells[g] for g in groups],
                          "p_holm": format_p(test["p_holm"], lang) if pd.notna(test["p_holm"]) else "—",
                          "epsilon": fmt(test["epsilon_squared"], 3)})
    formats = tables["needs_formats"]
    format_rows = []
    for code, label in names["format"].items():
        cells = []
        for group in groups:
            row = formats[(formats["stakeholder"] == group) & (formats["format"] == code)]
            cells.append(f"{int(row['count'].iloc[0])} ({format_share(row['share'].iloc[0], lang)})" if not row.empty else "—")
        format_rows.append({"format": label, "cells": cells})
    group_sizes = needs.groupby("stakeholder")["n"].max().to_dict()
    group_headers = [f"{t['stakeholder_short'][g]} (n\u00a0=\u00a0{format_count(group_sizes[g], lang)})" for g in groups]

    descriptives = tables["descriptives"]
    desc_rows = []
    for domain in codebook.domains:
        for cohort in ("program", "comparison"):
            block = descriptives[(descriptives["domain"] == domain) & (descriptives["cohort"] == cohort)].set_index("wave")
            desc_rows.append({"domain": names["domain"][domain], "cohort": cohorts[cohort],
                              "cells": [f"{fmt(block.loc[w, 'mean'])} ({fmt(block.loc[w, 'sd'])}; {int(block.loc[w, 'n'])})"
                                        if w in block.index else "—" for w in ("pre", "then", "post", "followup")]})

    did_rows = [{"domain": dn[r["domain"]], "estimate": fmt(r["estimate"]),
                 "ci": format_ci(r["conf_low"], r["conf_high"], lang),
                 "ci_holm": format_ci(r["conf_low_holm"], r["conf_high_holm"], lang), "df": fmt(r["df"], 1),
                 "p_value": format_p(r["p_value"], lang), "p_holm": format_p(r["p_holm"], lang),
                 "d_ppc2": fmt(r["d_ppc2"]), "d_ci": format_ci(r["d_conf_low"], r["d_conf_high"], lang),
                 "n_participants": int(r["n_participants"]), "n_institutions": int(r["n_institutions"])}
                for r in holm_intervals(did).to_dict(orient="records")]
    effects = tables["effect_sizes"]
    effect_rows = []
    for domain in domains:
        block = effects[effects["domain"] == domain]
        get = lambda measure, cohort: block[(block["measure"] == measure) & (block["cohort"] == cohort)].iloc[0]  # noqa: E731
        dz_p, dz_c = get("d_z", "program"), get("d_z", "comparison")
        effect_rows.append({"domain": dn[domain],
                            "dz_program": f"{fmt(dz_p['estimate'])} {format_ci(dz_p['conf_low'], dz_p['conf_high'], lang)}",
                            "dz_comparison": f"{fmt(dz_c['estimate'])} {format_ci(dz_c['conf_low'], dz_c['conf_high'], lang)}",
                            "dav_program": fmt(get("d_av", "program")["estimate"]),
                            "dav_comparison": fmt(get("d_av", "comparison")["estimate"]),
                            "d_model": fmt(get("d_model", "program vs comparison")["estimate"])})

    checks = tables["model_checks"].set_index("domain").loc[domains].reset_index()
    variance = tables["variance_components"]
    check_rows = []
    for r in checks.to_dict(orient="records"):
        v = variance[variance["domain"] == r["domain"]].set_index("component")["variance"]
        check_rows.append({"domain": dn[r["domain"]], "converged": t["answer_yes"] if r["converged"] else t["answer_no"],
                           "singular": t["answer_yes"] if r["singular"] else t["answer_no"],
                           "var_institution": fmt(v["institution"], 3),
                           "var_participant": fmt(v["institution:participant"], 3),
                           "var_residual": fmt(v["residual"], 3),
                           "icc_institution": fmt(r["icc_institution"]), "icc_participant": fmt(r["icc_participant"]),
                           "r2m": fmt(r["r2_marginal"]), "r2c": fmt(r["r2_conditional"])})
    nonconverged = [dn[r["domain"]] for r in checks.to_dict(orient="records") if not r["converged"]]
    singular = [dn[r["domain"]] for r in checks.to_dict(orient="records") if r["singular"]]
    nonidentifiable = [dn[r["domain"]] for r in checks.to_dict(orient="records")
                       if not r.get("variance_components_identifiable", True)]

    sens = tables["sensitivity"]
    analyses = ["primary", "careless_excluded", "completers", "then_baseline", "followup", "moderation_communication"]
    sens_rows = []
    for analysis in analyses:
        cells = []
        for domain in domains:
            row = sens[(sens["analysis"] == analysis) & (sens["domain"] == domain)]
            if row.empty or pd.isna(row["estimate"].iloc[0]):
                cells.append("—")
            else:
                r = row.iloc[0]
                cells.append(f"{fmt(r['estimate'])} {format_ci(r['conf_low'], r['conf_high'], lang)}")
        sens_rows.append({"analysis": t["analyses"][analysis], "cells": cells})
    combined = sens[sens["analysis"] == "combined"].iloc[0]
    combined_text = t["combined_text"].format(estimate=fmt(combined["estimate"]),
                                              ci=format_ci(combined["conf_low"], combined["conf_high"], lang),
                                              p=format_p(combined["p_value"], lang))
    shift = tables["response_shift"]
    shift_rows = []
    for domain in [d for d in domains if d in set(shift["domain"])]:
        for cohort in ("program", "comparison", "program - comparison"):
            row = shift[(shift["domain"] == domain) & (shift["cohort"] == cohort)]
            if row.empty:
                continue
            r = row.iloc[0]
            shift_rows.append({"domain": dn[domain], "cohort": cohorts.get(cohort, t["cohort_difference"]),
                               "estimate": fmt(r["estimate"]), "ci": format_ci(r["conf_low"], r["conf_high"], lang),
                               "p": format_p(r["p_value"], lang), "n": int(r["n"])})

    figs = evaluation_figures(tables, holm_intervals(did), combined, t, names, groups, domains, lang)
    sections = ["summary", "design", "flow", "sample", "instrument", "needs", "gains", "checks",
                "sensitivity", "interpretation", "limitations", "conclusions", "authors", "methods", "provenance"]
    section_titles = {**t["sections"], **t["sections_extra"]}
    n_participants = int(sample[sample["characteristic"] == "participants"]["n"].sum())
    n_institutions = int(sample[sample["characteristic"] == "institutions"]["n"].sum())
    methods = [{**item, "formulas": [formula_figure(tex) for tex in item["formulas"]],
                "symbols": [{"symbol": formula_figure(symbol, size=9), "meaning": meaning}
                            for symbol, meaning in item["symbols"]]}
               for item in t["methods"]]
    authors = config["reports"].get("authors", [])
    return {
        "lang": lang, "t": t, "n": n,
        "title": config["study"]["title"][lang], "program": config["study"]["program"][lang],
        "report_date": config["study"]["report_date"],
        "report_date_text": format_date(config["study"]["report_date"], lang),
        "sections": [{"id": s, "title": section_titles[s]} for s in sections], "section_titles": section_titles,
        "verdict": verdict_text, "domain_lines": domain_lines,
        "sample_sentence": t["sample_sentence"].format(
            participants=counted(n_participants, t["nouns"]["participant"], lang),
            institutions=counted(n_institutions, t["nouns"]["institution_genitive"], lang)),
        "sample_hidden": sample_hidden,
        "interpretation": interpretation(tables, domains, t, names, lang),
        "methods": methods,
        "authors": [{"name": a["name"][lang], "affiliation": a["affiliation"][lang]} for a in authors],
        "contact": config["reports"].get("contact"),
        "flow": flow_table, "flow_model": flow_model, "sample_rows": sample_rows,
        "muni_rows": muni_rows, "muni_totals": muni_totals, "any_suppressed": any_suppressed,
        "min_cell": config["reports"]["min_cell"],
        "reliability": rel_rows, "group_headers": group_headers, "need_rows": need_rows,
        "format_rows": format_rows, "descriptives": desc_rows, "did": did_rows, "effects": effect_rows,
        "checks": check_rows, "nonconverged": nonconverged, "singular": singular,
        "nonidentifiable": nonidentifiable,
        "domain_headers": [dn[d] for d in domains], "sens_rows": sens_rows, "combined_text": combined_text,
        "shift_rows": shift_rows,
        "figures": figs,
        "provenance": prov,
    }


# --------------------------------------------------------------------------- institution report




def institution_context(config: dict, tables: dict[str, pd.DataFrame], registry: pd.DataFrame,
                        institution: str, strings: dict, lang: str, findings: list[str] | None = None,
                        codebook=None) -> dict:
    """What one school's report shows, with no aggregate of fewer than ``min_cell`` respondents
    of anyone else:

    - its team's participation per wave (the school knows who took part, so these counts are
      not suppressed in its own report);
    - its team's mean scores where every entry and exit cell holds at least ``min_cell``
      members, otherwise the pooled schools of its municipality and cohort, of its
      municipality, or of its cohort (``aggregates.team_scores``), named as such, with a figure;
    - the region's means beside them, and the team's difference from the region where the team
      itself is shown;
    - the needs of schools of the same settlement type, and its own where it has enough ratings;
    - two sentences of the evaluation's overall findings and how to read the report.
    """
    codebook = codebook or load_codebook(config["codebook"])
    names = _names(codebook, registry, lang)
    t = strings
    ti = t["institution"]
    min_cell = config["reports"]["min_cell"]
    mark = t["suppressed_mark"].format(min_cell=min_cell)
    fmt = lambda v, digits=2: format_optional(v, lang, digits)  # noqa: E731
    entry = registry.set_index("id").loc[institution]
    bench = tables["score_benchmarks"]
    own = bench[(bench["level"] == "institution") & (bench["institution"] == institution)]
    cohort = own["cohort"].iloc[0] if not own.empty else None
    municipality = names["municipality"].get(entry["municipality"], entry["municipality"])
    participation = []
    schools = bench[bench["level"] == "institution"]
    for wave in ("pre", "post", "followup"):
        counts = own[own["wave"] == wave]["n"]
        per_school = schools[schools["wave"] == wave].groupby("institution")["n"].max()
        participation.append({"wave": t["waves"][wave], "n": int(counts.max()) if len(counts) else 0,
                              "region_mean": float(per_school.sum() / len(registry[registry["type"] == "school"]))})
    for p in participation:
        p["region_text"] = format_number(p["region_mean"], lang, 1)

    level, shown = aggregates.team_scores(bench, registry, institution, min_cell, config["analysis"]["domains"])
    level_names = {"team": ti["level_team"],
                   "municipality_cohort": ti["level_municipality_cohort"].format(
                       municipality=municipality, cohort=t["cohorts_genitive"].get(cohort, "")),
                   "municipality": ti["level_municipality"].format(municipality=municipality),
                   "cohort": ti["level_cohort"].format(cohort=t["cohorts_genitive"].get(cohort, "")),
                   "none": ""}
    region = bench[bench["level"] == "region"]
    score_rows = []
    for domain in codebook.domains:
        for wave in ("pre", "post", "followup"):
            cell = shown[(shown["domain"] == domain) & (shown["wave"] == wave)]
            reg = region[(region["domain"] == domain) & (region["wave"] == wave)]
            if cell.empty and reg.empty:
                continue
            visible = not cell.empty and bool(cell["shown"].iloc[0])
            mean = cell["mean"].iloc[0] if visible else None
            region_mean = reg["mean"].iloc[0] if not reg.empty else None
            score_rows.append({
                "domain": names["domain"][domain], "wave": t["waves"][wave],
                "mine": fmt(mean) if visible else (mark if not cell.empty else "—"),
                "n": format_count(cell["n"].iloc[0], lang) if visible else "",
                "region": fmt(region_mean),
                "difference": (fmt(mean - region_mean) if visible and level == "team" and region_mean is not None
                               else ""),
            })
    any_score_hidden = any(r["mine"] == mark for r in score_rows)
    domain_names = {d: names["domain"][d] for d in codebook.domains}
    series = profile_series(shown, region, list(codebook.domains)) if level != "none" else None
    figure_names = {"own": ti["legend_level"][level] if level != "none" else ti["your_team"], "region": ti["region"],
                    "region_mean": ti["region_team_mean"], "pre": t["waves"]["pre"], "post": t["waves"]["post"],
                    "wave": t["col"]["wave"], "respondents": ti["col"]["n"], "mean_score": t["mean_score"],
                    "domain": t["col"]["domain"]}
    level_name = level_names[level]
    figs = institution_figures(participation, series, domain_names, figure_names,
                               {"participation": ti["captions"]["participation"],
                                "profile": ti["captions"]["profile"].format(level=level_name)}, lang)
    figure = figs.get("profile")

    needs = aggregates.similar_schools_needs(tables["needs_benchmarks"], registry, institution, min_cell)
    region_needs = tables["needs_benchmarks"]
    region_needs = region_needs[region_needs["level"] == "region"].set_index("area")
    need_rows = []
    for area, label in names["area"].items():
        row = needs[needs["area"] == area]
        if row.empty:
            continue
        r = row.iloc[0]
        need_rows.append({"area": label,
                          "own": fmt(r["own"]) if r["own_shown"] else (mark if r["n_own"] else "—"),
                          "similar": fmt(r["similar"]) if r["similar_shown"] else mark,
                          "region": fmt(region_needs.loc[area, "mean"]) if area in region_needs.index else "—",
                          "sort": -r["similar"] if r["similar_shown"] else 0})
    quote = "«{}»" if lang == "ru" else "\u201c{}\u201d"
    top_needs = [quote.format(row["area"]) for row in sorted(need_rows, key=lambda row: row["sort"])[:3] if row["sort"]]
    any_need_hidden = any(mark in (r["own"], r["similar"]) for r in need_rows)
    settlement = t["settlement_schools"][entry["settlement"]]
    name = entry["name_en" if lang == "en" else "name"]
    return {
        "lang": lang, "t": t, "ti": ti, "n": Numbering(("fig-participation", "tab-participation", "fig-profile", "tab-scores", "tab-needs")),
        "title": f"{ti['title']}: {name}", "running_title": name,
        "program": config["study"]["program"][lang],
        "institution_name": name, "municipality": municipality,
        "cohort": t["cohorts"].get(cohort, "—") if cohort else "—",
        "report_date": config["study"]["report_date"],
        "report_date_text": format_date(config["study"]["report_date"], lang),
        "participation": participation,
        "no_participants": own.empty,
        "level": level, "level_name": level_names[level],
        "level_sentence": ti["level_sentences"][level].format(
            min_cell=min_cell, level=level_names[level], team=ti["your_team"]),
        "score_rows": score_rows, "any_score_hidden": any_score_hidden, "figure": figure,
        "participation_figure": figs["participation"],
        "need_rows": need_rows, "settlement_schools": settlement, "top_needs": top_needs,
        "any_need_hidden": any_need_hidden, "top_needs_text": join_words(top_needs, t), "mark": mark, "min_cell": min_cell,
        "findings": findings if findings is not None else overall_findings(tables["did"], config, t, names, lang),
        "authors": config.get("reports", {}).get("authors", {}),
    }


# --------------------------------------------------------------------------- rendering


def template_environment(templates_dir: str | Path) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir)),
                              autoescape=jinja2.select_autoescape(["html"]),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


@contextlib.contextmanager
def source_date_epoch(iso_date: str):
    """Set SOURCE_DATE_EPOCH for the duration: fontTools stamps it, instead of the current
    time, into the 'head' table of every font subset it embeds."""
    epoch = int(datetime.fromisoformat(iso_date).replace(tzinfo=timezone.utc).timestamp())
    previous = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ.update(SOURCE_DATE_EPOCH=str(epoch))
    try:
        yield
    finally:
        if previous is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ.update(SOURCE_DATE_EPOCH=previous)


@contextlib.contextmanager
def fonttools_subsetting():
    """Subset embedded fonts with fontTools (pure Python, pinned in the lock file) even where
    the system has HarfBuzz's subsetting library (Debian: libharfbuzz-subset0), which WeasyPrint
    prefers when it finds it. The two subsetters write different font bytes, so a PDF that
    reviewers rebuild byte for byte (the evaluation reports) must not depend on whether that
    library is installed; the school reports use HarfBuzz where it is, three times faster."""
    from weasyprint.pdf import fonts

    if not hasattr(fonts, "harfbuzz_subset"):
        raise RuntimeError("weasyprint.pdf.fonts.harfbuzz_subset is gone (WeasyPrint upgraded?): "
                           "fonttools_subsetting() must be adapted to keep the PDFs reproducible")
    saved = fonts.harfbuzz_subset
    fonts.harfbuzz_subset = None
    try:
        yield
    finally:
        fonts.harfbuzz_subset = saved


def render_pdf(html: str, base_url: str | Path, iso_date: str, font_config=None, portable: bool = False,
               info: DocumentInfo | None = None, terms: dict | None = None) -> bytes:
    """HTML -> PDF bytes, byte-stable: a document identifier derived from the content and font
    timestamps from the report date. ``font_config`` (a WeasyPrint FontConfiguration) lets
    successive documents of one process share the fonts they load. ``portable``: fonts subset
    by fontTools whatever the system libraries (``fonttools_subsetting``), for PDFs that are
    rebuilt byte for byte on other machines."""
    identifier = hashlib.sha256(html.encode("utf-8")).hexdigest()[:32].encode()
    with source_date_epoch(iso_date), (fonttools_subsetting() if portable else contextlib.nullcontext()):
        return render_report(html, base_url, info, identifier, font_config, terms)


def demo_secret_used(inputs: dict) -> bool:
    """Whether the participant keys were made with the public demo secret (written by ingest):
    every report then says so on its first page."""
    return bool(json.loads(Path(inputs["pseudonymisation"]).read_text(encoding="utf-8"))["demo_secret"])


def _tables(paths: list[str], names: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    by_name = {Path(p).stem: p for p in paths}
    return {name: read_csv(by_name[name]) for name in names}


def build_evaluation_report(config: dict, inputs: dict, lang: str, output: str | Path) -> None:
    quiet_font_loggers()
    tables = _tables(inputs["tables"], EVALUATION_TABLES)
    registry = pd.read_csv(inputs["institutions"], dtype=str, keep_default_na=False)
    strings = load_strings(inputs["i18n"], lang)
    prov = provenance(config, read_csv(inputs["manifest"]), inputs["lock"])
    templates_dir = Path(inputs["template"]).parent
    context = {**evaluation_context(config, tables, registry, lang, strings, prov),
               "demo_secret": demo_secret_used(inputs)}
    html = template_environment(templates_dir).get_template(Path(inputs["template"]).name).render(context)
    info = DocumentInfo(context["title"], lang, organisations(config, lang))
    write_outputs({output: render_pdf(html, templates_dir, config["study"]["report_date"], portable=True, info=info,
                                      terms=load_terms(inputs["i18n"], lang))})


# Loggers whose INFO/DEBUG chatter (one line per font table read) would bury the real warnings.
QUIET_LOGGERS = ("fontTools", "weasyprint.progress")
# The levels at which a school's report shows a figure of its own (its team or its municipality).
OWN_FIGURE_LEVELS = ("team", "municipality_cohort", "municipality")


def quiet_font_loggers() -> None:
    """Keep fontTools' per-table DEBUG lines out of the step logs. WeasyPrint raises the
    fontTools logger to DEBUG while it subsets a font and re-logs its warnings under its own
    name, so the records are stopped from reaching the log's handler instead."""
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        logger.propagate = False


def load_institution_inputs(inputs: dict) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    registry = pd.read_csv(inputs["institutions"], dtype=str, keep_default_na=False)
    tables = _tables(inputs["tables"], INSTITUTION_TABLES)
    for name in ("score_benchmarks", "needs_benchmarks"):
        tables[name]["institution"] = tables[name]["institution"].fillna("")
    return tables, registry


# State of a rendering process: loaded once by ``_start_renderer`` (per pool worker), so that
# every report after the first reuses the imported libraries, templates and fonts.
_RENDERER: dict = {}


def _start_renderer(config: dict, tables: dict, registry: pd.DataFrame, i18n_dir: str, template: str,
                    demo_secret: bool = False) -> None:
    from weasyprint.text.fonts import FontConfiguration

    quiet_font_loggers()
    templates_dir = Path(template).parent
    strings = {lang: load_strings(i18n_dir, lang) for lang in ("ru", "en")}
    codebook = load_codebook(config["codebook"])
    findings = {lang: overall_findings(tables["did"], config, strings[lang], _names(codebook, registry, lang), lang)
                for lang in strings}
    _RENDERER.update(config=config, tables=tables, registry=registry, templates_dir=templates_dir, codebook=codebook,
                     strings=strings, findings=findings, demo_secret=demo_secret,
                     terms={lang: load_terms(i18n_dir, lang) for lang in strings},
                     template=template_environment(templates_dir).get_template(Path(template).name),
                     font_config=FontConfiguration())


def _render_institution(institution: str) -> tuple[str, bytes, dict, list[str]]:
    """One school's PDF, its row of the index, and the warnings raised while making it."""
    r = _RENDERER
    messages: list[str] = []
    handler = _ListHandler(messages)
    logging.getLogger().addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lang = r["registry"].set_index("id").loc[institution, "language"]
            context = {**institution_context(r["config"], r["tables"], r["registry"], institution, r["strings"][lang],
                                             lang, r["findings"][lang], r["codebook"]),
                       "demo_secret": r["demo_secret"]}
            html = r["template"].render(context)
            info = DocumentInfo(context["title"], lang, organisations(r["config"], lang))
            pdf = render_pdf(html, r["templates_dir"], r["config"]["study"]["report_date"], r["font_config"],
                             info=info, terms=r["terms"][lang])
        messages.extend(f"{w.category.__name__}: {w.message}" for w in caught)
    finally:
        logging.getLogger().removeHandler(handler)
    row = {"institution": institution, "language": lang, "title": context["title"],
           "scores_level": context["level"], "scores_figure": context["level"] in OWN_FIGURE_LEVELS,
           "warnings": len(messages)}
    return institution, pdf, row, [f"{institution}: {m}" for m in messages]


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(f"{record.name}: {record.getMessage()}")


def build_institution_reports(config: dict, inputs: dict, output_dir: str | Path, threads: int = 1,
                              institutions: list[str] | None = None) -> list[str]:
    """Every school's report into ``output_dir`` ({id}.pdf), rendered by a pool of ``threads``
    processes that each load the libraries, templates and fonts once, plus ``index.csv``: per
    report its language, PDF title (for the e-mail subject), the level its scores are shown at
    (``scores_level``) and ``scores_figure`` (False: the report carries no score figure of the
    school's team or municipality, only its participation; the delivery plan can flag it).

    All files are written to a temporary sibling folder first and moved into place together.
    Returns the warnings raised while rendering, one line each, for the console summary.
    """
    tables, registry = load_institution_inputs(inputs)
    schools = sorted(institutions if institutions is not None else registry.loc[registry["type"] == "school", "id"])
    setup = (config, tables, registry, str(inputs["i18n"]), str(inputs["template"]), demo_secret_used(inputs))
    workers = max(1, min(int(threads), len(schools)))
    import scipy.stats  # noqa: F401  (imported once here, inherited by forked workers)
    import weasyprint  # noqa: F401
    if workers > 1:
        # Each worker starts from a fresh interpreter state only when the platform has no fork;
        # either way it is initialised once and renders a chunk of schools.
        with ProcessPoolExecutor(max_workers=workers, initializer=_start_renderer, initargs=setup) as pool:
            results = list(pool.map(_render_institution, schools, chunksize=max(1, len(schools) // (4 * workers))))
    else:
        _start_renderer(*setup)
        results = [_render_institution(school) for school in schools]
    output_dir = Path(output_dir)
    staging = output_dir.with_name(f".{output_dir.name}.part")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    payloads = {staging / f"{school}.pdf": pdf for school, pdf, _, _ in results}
    index = pd.DataFrame([row for _, _, row, _ in results])
    payloads[staging / "index.csv"] = index
    write_outputs(payloads)
    for path in staging.iterdir():
        os.chmod(path, 0o644)
    shutil.rmtree(output_dir, ignore_errors=True)
    os.replace(staging, output_dir)
    problems = [message for _, _, _, messages in results for message in messages]
    without = index.loc[~index["scores_figure"], "institution"].tolist()
    log = logging.getLogger("dpo_eval")
    log.info("institution reports: %d written with %d process(es)", len(results), workers)
    if without:
        log.warning("%d report(s) carry no score figure of their own team or municipality "
                    "(too few respondents around them): %s", len(without), ", ".join(without))
    for message in problems:
        log.warning("%s", message)
    return problems + ([f"{len(without)} report(s) without a score figure of their own team or municipality "
                        f"(see index.csv): {', '.join(without)}"] if without else [])
