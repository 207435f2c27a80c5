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
import math
import os
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import jinja2
import pandas as pd
import yaml

from dpo_eval import __version__, figures
from dpo_eval.aggregates import suppress
from dpo_eval.codebook import load_codebook
from dpo_eval.io import read_csv, sha256_file, write_outputs

ALPHA = 0.05
PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_KEYS_NOT_DIGESTED = ("reproduce",)  # how a run is started, not what it computes


# --------------------------------------------------------------------------- formatting


def format_number(value: float, lang: str, digits: int = 2) -> str:
    """A number as the locale writes it: decimal comma in Russian, point in English."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError("a missing number reached the report; check the analysis tables")
    text = f"{value:.{digits}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return text.replace(".", ",") if lang == "ru" else text


def format_optional(value, lang: str, digits: int = 2, dash: str = "—") -> str:
    return dash if value is None or pd.isna(value) else format_number(float(value), lang, digits)


def format_p(p: float, lang: str) -> str:
    """APA-style p-value: "p < 0.001" below 0.001, otherwise three decimals."""
    if p < 0.001:
        return f"p < {format_number(0.001, lang, 3)}"
    return f"p = {format_number(p, lang, 3)}"


def format_ci(low: float, high: float, lang: str, digits: int = 2) -> str:
    separator = "; " if lang == "ru" else ", "
    return f"[{format_number(low, lang, digits)}{separator}{format_number(high, lang, digits)}]"


def format_date(iso_date: str, lang: str) -> str:
    year, month, day = iso_date.split("-")
    return f"{day}.{month}.{year}" if lang == "ru" else iso_date


def format_share(share: float, lang: str) -> str:
    return format_number(100 * share, lang, 0) + "%"


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


def verdict(did: pd.DataFrame, strings: dict, domain_names: dict, lang: str) -> tuple[str, list[str]]:
    """The verdict on the hypothesis, worded from the Holm-adjusted results, and one sentence
    per domain that states its estimate, interval and adjusted p-value."""
    lines, supported, opposite = [], [], []
    for row in did.itertuples():
        name = domain_names[row.domain]
        values = {"domain": name, "low": format_number(row.conf_low, lang),
                  "high": format_number(row.conf_high, lang), "p": format_p(row.p_holm, lang)}
        if row.p_holm < ALPHA and row.estimate > 0:
            supported.append(row.domain)
            lines.append(strings["domain_supported"].format(estimate=format_number(row.estimate, lang), **values))
        elif row.p_holm < ALPHA:
            opposite.append(name)
            lines.append(strings["domain_opposite"].format(estimate=format_number(-row.estimate, lang), **values))
        else:
            lines.append(strings["domain_not_significant"].format(estimate=format_number(row.estimate, lang), **values))
    if len(supported) == len(did):
        text = strings["verdict_supported"]
    elif supported:
        text = strings["verdict_partial"]
    else:
        text = strings["verdict_not_supported"]
    for name in opposite:
        text += " " + strings["verdict_opposite"].format(domain=name)
    return text, lines


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

    sample = tables["sample"]
    sample_rows = []
    for characteristic in ("participants", "institutions", "municipalities", "role", "settlement"):
        part = sample[sample["characteristic"] == characteristic]
        for level in dict.fromkeys(part["level"].fillna("")):
            cells = {}
            for cohort in ("program", "comparison"):
                row = part[(part["cohort"] == cohort) & (part["level"].fillna("") == level)]
                if row.empty:
                    cells[cohort] = "0"
                elif pd.notna(row["share"].iloc[0]):
                    cells[cohort] = f"{int(row['n'].iloc[0])} ({format_share(row['share'].iloc[0], lang)})"
                else:
                    cells[cohort] = str(int(row["n"].iloc[0]))
            label = t["sample_labels"][characteristic]
            if characteristic == "role":
                label += ": " + (names["role"].get(level) or t["unknown"])
            elif characteristic == "settlement":
                label += ": " + t["settlements"][level]
            sample_rows.append({"label": label, **cells})
    years = sample[sample["characteristic"] == "years_in_management"].set_index("cohort")
    sample_rows.append({"label": t["sample_labels"]["years_in_management"],
                        **{c: f"{fmt(years.loc[c, 'mean'], 1)} ({fmt(years.loc[c, 'sd'], 1)})" for c in ("program", "comparison")}})

    mark = t["suppressed_mark"].format(min_cell=config["reports"]["min_cell"])
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
    group_headers = [f"{t['stakeholder_short'][g]} (n = {int(group_sizes[g])})" for g in groups]

    descriptives = tables["descriptives"]
    desc_rows = []
    for domain in codebook.domains:
        for cohort in ("program", "comparison"):
            block = descriptives[(descriptives["domain"] == domain) & (descriptives["cohort"] == cohort)].set_index("wave")
            desc_rows.append({"domain": names["domain"][domain], "cohort": cohorts[cohort],
                              "cells": [f"{fmt(block.loc[w, 'mean'])} ({fmt(block.loc[w, 'sd'])}; {int(block.loc[w, 'n'])})"
                                        if w in block.index else "—" for w in ("pre", "then", "post", "followup")]})

    did_rows = [{"domain": dn[r["domain"]], "estimate": fmt(r["estimate"]),
                 "ci": format_ci(r["conf_low"], r["conf_high"], lang), "df": fmt(r["df"], 1),
                 "p_value": format_p(r["p_value"], lang), "p_holm": format_p(r["p_holm"], lang),
                 "d_ppc2": fmt(r["d_ppc2"]), "d_ci": format_ci(r["d_conf_low"], r["d_conf_high"], lang),
                 "n_participants": int(r["n_participants"]), "n_institutions": int(r["n_institutions"])}
                for r in did.to_dict(orient="records")]
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

    forest_rows = did.assign(label=did["domain"].map(dn))
    forest_rows = pd.concat([forest_rows, pd.DataFrame([{"label": t["analyses"]["combined"],
                                                         **combined[["estimate", "conf_low", "conf_high"]].to_dict()}])])
    sens_plot = sens[sens["analysis"].isin(analyses[:-1]) & sens["domain"].isin(domains)].dropna(subset=["estimate"])
    sens_plot = sens_plot.assign(label=[f"{dn[d]}: {t['analyses'][a]}" for d, a in zip(sens_plot["domain"], sens_plot["analysis"])])
    figs = {
        "flow": figures.flow_diagram(wave_rows, waves, cohorts, t["flow_words"]),
        "means": figures.means_plot(descriptives[descriptives["domain"].isin(domains)], dn, waves, cohorts, t["mean_score"]),
        "forest": figures.forest_plot(forest_rows, "label", t["no_difference"], t["did_axis"]),
        "sensitivity": figures.forest_plot(sens_plot, "label", t["no_difference"], t["did_axis"]),
        "likert": figures.diverging_likert(tables["needs_distribution"], names["area"],
                                           {g: names["stakeholder"][g] for g in groups}, names["importance"]),
        "qq": figures.qq_plots(tables["qq"], dn, t["qq_kinds"]),
    }
    sections = ["summary", "design", "flow", "sample", "instrument", "needs", "gains", "checks",
                "sensitivity", "limitations", "methods", "provenance"]
    n_participants = int(sample[sample["characteristic"] == "participants"]["n"].sum())
    n_institutions = int(sample[sample["characteristic"] == "institutions"]["n"].sum())
    return {
        "lang": lang, "t": t, "n": n,
        "title": config["study"]["title"][lang], "program": config["study"]["program"][lang],
        "report_date": config["study"]["report_date"],
        "report_date_text": format_date(config["study"]["report_date"], lang),
        "sections": [{"id": s, "title": t["sections"][s]} for s in sections],
        "verdict": verdict_text, "domain_lines": domain_lines,
        "sample_sentence": t["sample_sentence"].format(participants=n_participants, institutions=n_institutions),
        "flow": flow_table, "flow_model": flow_model, "sample_rows": sample_rows,
        "muni_rows": muni_rows, "muni_totals": muni_totals, "any_suppressed": any_suppressed,
        "min_cell": config["reports"]["min_cell"],
        "reliability": rel_rows, "group_headers": group_headers, "need_rows": need_rows,
        "format_rows": format_rows, "descriptives": desc_rows, "did": did_rows, "effects": effect_rows,
        "checks": check_rows, "nonconverged": nonconverged, "singular": singular,
        "nonidentifiable": nonidentifiable,
        "domain_headers": [dn[d] for d in domains], "sens_rows": sens_rows, "combined_text": combined_text,
        "shift_rows": shift_rows,
        "figures": {k: svg_image(v) for k, v in figs.items()},
        "provenance": prov,
    }


# --------------------------------------------------------------------------- institution report


def institution_context(config: dict, tables: dict[str, pd.DataFrame], registry: pd.DataFrame,
                        institution: str, strings: dict, lang: str) -> dict:
    """Its team's participation, its scores against its cohort and the region, its needs
    profile against the region; every aggregate of fewer than min_cell respondents hidden."""
    codebook = load_codebook(config["codebook"])
    names = _names(codebook, registry, lang)
    t = strings
    min_cell = config["reports"]["min_cell"]
    mark = t["suppressed_mark"].format(min_cell=min_cell)
    fmt = lambda v, digits=2: format_optional(v, lang, digits)  # noqa: E731
    entry = registry.set_index("id").loc[institution]
    bench = tables["score_benchmarks"]
    own = bench[(bench["level"] == "institution") & (bench["institution"] == institution)]
    cohort = own["cohort"].iloc[0] if not own.empty else None
    participation = []
    for wave in ("pre", "post", "followup"):
        counts = own[own["wave"] == wave]["n"]
        count = int(counts.max()) if len(counts) else 0
        participation.append({"wave": t["waves"][wave],
                              "n": f"< {min_cell}" if 0 < count < min_cell else count})
    score_rows, hidden_any = [], False
    for domain in codebook.domains:
        for wave in ("pre", "post", "followup"):
            mine = own[(own["domain"] == domain) & (own["wave"] == wave)]
            group = bench[(bench["level"] == "cohort") & (bench["cohort"] == cohort) & (bench["domain"] == domain) & (bench["wave"] == wave)]
            region = bench[(bench["level"] == "region") & (bench["domain"] == domain) & (bench["wave"] == wave)]
            if mine.empty and group.empty:
                continue
            n_mine = int(mine["n"].iloc[0]) if not mine.empty else 0
            hidden = n_mine < min_cell
            hidden_any |= hidden and n_mine > 0
            score_rows.append({
                "domain": names["domain"][domain], "wave": t["waves"][wave],
                "mine": (mark if hidden and n_mine > 0 else ("—" if n_mine == 0 else fmt(mine["mean"].iloc[0]))),
                "n_mine": n_mine if n_mine >= min_cell or n_mine == 0 else f"< {min_cell}",
                "cohort": fmt(group["mean"].iloc[0]) if not group.empty else "—",
                "region": fmt(region["mean"].iloc[0]) if not region.empty else "—",
            })
    needs = tables["needs_benchmarks"]
    mine_needs = needs[(needs["level"] == "institution") & (needs["institution"] == institution)].set_index("area")
    region_needs = needs[needs["level"] == "region"].set_index("area")
    need_rows, needs_hidden = [], False
    for area, label in names["area"].items():
        n_mine = int(mine_needs.loc[area, "n"]) if area in mine_needs.index else 0
        hidden = 0 < n_mine < min_cell
        needs_hidden |= hidden
        need_rows.append({"area": label,
                          "mine": mark if hidden else ("—" if n_mine == 0 else fmt(mine_needs.loc[area, "mean"])),
                          "region": fmt(region_needs.loc[area, "mean"]) if area in region_needs.index else "—"})
    return {
        "lang": lang, "t": t, "n": Numbering(),
        "title": t["institution_title"], "program": config["study"]["program"][lang],
        "institution_name": entry["name_en" if lang == "en" else "name"],
        "municipality": names["municipality"].get(entry["municipality"], entry["municipality"]),
        "cohort": t["cohorts"].get(cohort, "—") if cohort else "—",
        "report_date": config["study"]["report_date"],
        "report_date_text": format_date(config["study"]["report_date"], lang),
        "participation": participation, "score_rows": score_rows, "need_rows": need_rows,
        "scores_hidden": hidden_any, "needs_hidden": needs_hidden, "min_cell": min_cell,
        "no_participants": own.empty,
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


def render_pdf(html: str, base_url: str | Path, iso_date: str) -> bytes:
    """HTML -> PDF bytes, byte-stable: a document identifier derived from the content and font
    timestamps from the report date."""
    from weasyprint import HTML

    identifier = hashlib.sha256(html.encode("utf-8")).hexdigest()[:32].encode()
    with source_date_epoch(iso_date):
        return HTML(string=html, base_url=str(base_url)).write_pdf(pdf_identifier=identifier)


EVALUATION_TABLES = ("did", "flow", "descriptives", "sample", "municipalities", "reliability", "needs",
                     "needs_tests", "needs_formats", "needs_distribution", "effect_sizes", "model_checks",
                     "variance_components", "sensitivity", "response_shift", "qq")


def demo_secret_used(inputs: dict) -> bool:
    """Whether the participant keys were made with the public demo secret (written by ingest):
    every report then says so on its first page."""
    return bool(json.loads(Path(inputs["pseudonymisation"]).read_text(encoding="utf-8"))["demo_secret"])


def _tables(paths: list[str], names: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    by_name = {Path(p).stem: p for p in paths}
    return {name: read_csv(by_name[name]) for name in names}


def build_evaluation_report(config: dict, inputs: dict, lang: str, output: str | Path) -> None:
    tables = _tables(inputs["tables"], EVALUATION_TABLES)
    registry = pd.read_csv(inputs["institutions"], dtype=str, keep_default_na=False)
    strings = load_strings(inputs["i18n"], lang)
    prov = provenance(config, read_csv(inputs["manifest"]), inputs["lock"])
    templates_dir = Path(inputs["template"]).parent
    context = {**evaluation_context(config, tables, registry, lang, strings, prov),
               "demo_secret": demo_secret_used(inputs)}
    html = template_environment(templates_dir).get_template(Path(inputs["template"]).name).render(context)
    write_outputs({output: render_pdf(html, templates_dir, config["study"]["report_date"])})


INSTITUTION_TABLES = ("score_benchmarks", "needs_benchmarks")


def build_institution_report(config: dict, inputs: dict, institution: str, output: str | Path) -> None:
    registry = pd.read_csv(inputs["institutions"], dtype=str, keep_default_na=False)
    lang = registry.set_index("id").loc[institution, "language"]
    tables = _tables(inputs["tables"], INSTITUTION_TABLES)
    tables["score_benchmarks"]["institution"] = tables["score_benchmarks"]["institution"].fillna("")
    tables["needs_benchmarks"]["institution"] = tables["needs_benchmarks"]["institution"].fillna("")
    strings = load_strings(inputs["i18n"], lang)
    templates_dir = Path(inputs["template"]).parent
    context = {**institution_context(config, tables, registry, institution, strings, lang),
               "demo_secret": demo_secret_used(inputs)}
    html = template_environment(templates_dir).get_template(Path(inputs["template"]).name).render(context)
    write_outputs({output: render_pdf(html, templates_dir, config["study"]["report_date"])})
