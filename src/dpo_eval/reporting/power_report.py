"""The power analysis for a grant application: the power curve and a two-page bilingual PDF
("how many schools do we need"), with the report machinery of ``dpo_eval.reporting``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from dpo_eval.reporting import figures
from dpo_eval.core.codebook import load_codebook
from dpo_eval.core.io import read_csv, write_outputs
from dpo_eval.simulation_studies.power import ALL_DOMAINS, design_from_config, schools_needed
from dpo_eval.reporting.formatting import svg_image
from dpo_eval.reporting.layout import load_terms
from dpo_eval.reporting.render import publish_pdf, quiet_font_loggers, template_environment
from dpo_eval.reporting.typography import format_number

DOMAIN_COLOURS = [figures.OKABE_ITO[name] for name in ("blue", "vermillion", "green", "purple", "sky")]
# A fixed date keeps the PDF's bytes stable (fonts and metadata are stamped with it).
REPORT_DATE = "2026-01-01"


def power_curve(table: pd.DataFrame, domain_names: dict[str, str], words: dict, target: float,
                kind: str = "svg") -> bytes:
    """Power against schools per arm, one line per domain with Clopper-Pearson 95% intervals,
    the analytic approximation dotted, all domains jointly in black, the target as a line."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.3, 4.2))
    grid = np.sort(table["schools_per_arm"].unique())
    # Series side by side at each grid point, so that their intervals do not hide each other.
    spacing = float(np.min(np.diff(grid))) if len(grid) > 1 else 1.0
    axis.axhline(target, color=figures.OKABE_ITO["grey"], linestyle="--", linewidth=0.9)
    axis.annotate(words["target"].format(share=f"{target:.0%}"), (1.0, target), xycoords=("axes fraction", "data"),
                  xytext=(0, 3), textcoords="offset points", ha="right", fontsize=7, color="#555555")
    series = [(domain, DOMAIN_COLOURS[i % len(DOMAIN_COLOURS)]) for i, domain in enumerate(domain_names)]
    series.append((ALL_DOMAINS, "#111111"))
    for index, (domain, colour) in enumerate(series):
        own = table[table["domain"] == domain].sort_values("schools_per_arm")
        if own.empty:
            continue
        x = own["schools_per_arm"].to_numpy() + spacing * 0.06 * (index - (len(series) - 1) / 2)
        label = words["all_domains"] if domain == ALL_DOMAINS else domain_names[domain]
        axis.errorbar(x, own["power"], yerr=[own["power"] - own["mc_low"], own["mc_high"] - own["power"]],
                      color=colour, marker="o", markersize=3.5, linewidth=1.4, capsize=2.5,
                      elinewidth=0.9, label=label)
        if domain != ALL_DOMAINS:
            axis.plot(own["schools_per_arm"], own["analytic_power"], color=colour, linestyle=":",
                      linewidth=1.0)
    axis.plot([], [], color="#555555", linestyle=":", linewidth=1.0, label=words["analytic"])
    axis.set_xlabel(words["x_label"])
    axis.set_ylabel(words["y_label"])
    axis.set_ylim(0, 1.02)
    axis.set_yticks(np.linspace(0, 1, 6), [f"{v:.0%}" for v in np.linspace(0, 1, 6)])
    axis.set_xticks(grid)
    total = axis.secondary_xaxis("top", functions=(lambda n: 2 * n, lambda n: n / 2))
    total.set_xticks(2 * grid)
    total.set_xlabel(words["x_total"])
    axis.grid(axis="y", color="#dddddd", linewidth=0.5)
    handles, labels = axis.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i] == words["analytic"])
    axis.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper center",
                bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=7, frameon=False)
    if kind == "svg":
        return figures.to_svg(figure).encode("utf-8")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=300, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _percent(value: float, lang: str) -> str:
    return format_number(100 * value, lang, 0) + "%" if not pd.isna(value) else "—"


def power_context(settings: dict, table: pd.DataFrame, domain_names: dict[str, str], strings: dict,
                  lang: str, figure_svg: str) -> dict:
    design = design_from_config(settings["design"])
    target = settings["target_power"]
    needed = schools_needed(table, target)
    grid = sorted(table["schools_per_arm"].unique())
    columns = [*design.did, ALL_DOMAINS]
    names = {**domain_names, ALL_DOMAINS: strings["all_domains"]}
    rows = []
    for schools in grid:
        at = table[table["schools_per_arm"] == schools].set_index("domain")
        rows.append({
            "schools": f"{schools} ({2 * schools})",
            "participants": format_number(at["mean_participants"].iloc[0], lang, 0),
            "cells": [{"power": _percent(at.loc[d, "power"], lang),
                       "interval": f"{_percent(at.loc[d, 'mc_low'], lang)}–{_percent(at.loc[d, 'mc_high'], lang)}",
                       "analytic": _percent(at.loc[d, "analytic_power"], lang)} for d in columns],
        })
    answer = needed[ALL_DOMAINS]
    verdict = (strings["verdict"].format(n=answer, total=2 * answer, share=_percent(target, lang),
                                         k=len(design.did))
               if answer is not None else
               strings["verdict_none"].format(n=grid[-1], share=_percent(target, lang)))
    per_domain = [strings["domain_needs"].format(domain=names[d], n=needed[d]) if needed[d] is not None
                  else strings["domain_never"].format(domain=names[d], n=grid[-1]) for d in design.did]
    t = strings
    parameters = [
        (t["p_did"], "; ".join(f"{names[d]}: {format_number(v, lang, 3)}" for d, v in design.did.items())),
        (t["p_team"], format_number(design.team_size, lang, 1) + " "
         + t["team_" + design.team_size_distribution]),
        (t["p_missing_pre"], _percent(design.missing_pre, lang)),
        (t["p_attrition"], _percent(design.attrition_post, lang)),
        (t["p_icc_institution"], format_number(design.icc_institution, lang, 3)),
        (t["p_icc_participant"], format_number(design.icc_participant, lang, 3)),
        (t["p_residual_sd"], format_number(design.residual_sd, lang, 3)),
        (t["p_covariates"], ", ".join(t["covariate_" + c] for c in design.covariates) or "—"),
        (t["p_alpha"], format_number(design.alpha, lang, 2) + " " + t["adjust_" + design.p_adjust]
         .format(k=len(design.did))),
        (t["p_replicates"], format_number(int(table["replicates"].iloc[0]), lang, 0)),
    ]
    # demo_secret: base.html's notice on pseudonymised study data; a power analysis has none.
    return {"lang": lang, "t": t, "title": t["title"], "report_date": REPORT_DATE, "demo_secret": False,
            "verdict": verdict, "per_domain": per_domain, "parameters": parameters,
            "headers": [names[d] for d in columns], "rows": rows,
            "figure": svg_image(figure_svg), "figure_alt": curve_alt(table, grid, verdict, t, lang),
            "target": _percent(target, lang)}


def curve_alt(table: pd.DataFrame, grid: list, verdict: str, t: dict, lang: str) -> str:
    """The power curve's alternative text: what it shows and its key numbers, the joint power
    of all domains at every number of schools, and the verdict."""
    joint = table[table["domain"] == ALL_DOMAINS].set_index("schools_per_arm")["power"]
    points = "; ".join(t["alt_point"].format(n=n, share=_percent(joint.loc[n], lang)) for n in grid if n in joint.index)
    return t["alt_curve"].format(low=grid[0], high=grid[-1], points=points, verdict=verdict)


def build_power_report(settings: dict, reports: dict, inputs, lang: str, outputs) -> None:
    """power.csv -> the power curve (SVG and PNG) and the PDF in ``lang``, made like every
    report (``render.publish_pdf``): typeset, tagged, and with the organisations of the
    pipeline configuration's ``reports`` section (``reports``) as its Author."""
    quiet_font_loggers()
    table = read_csv(inputs["table"])
    with open(inputs["strings"], encoding="utf-8") as stream:
        strings = yaml.safe_load(stream)[lang]
    codebook = load_codebook(inputs["codebook"])
    design = design_from_config(settings["design"])
    domain_names = {d: codebook.domains[d][lang] if d in codebook.domains else d for d in design.did}
    target = settings["target_power"]
    svg = power_curve(table, domain_names, strings["figure"], target, "svg")
    png = power_curve(table, domain_names, strings["figure"], target, "png")
    templates = Path(inputs["template"]).parent
    context = power_context(settings, table, domain_names, strings, lang, svg.decode("utf-8"))
    html = template_environment(templates).get_template(Path(inputs["template"]).name).render(context)
    pdf = publish_pdf(html, templates, REPORT_DATE, {"reports": reports}, lang, context["title"],
                      load_terms(inputs["i18n"], lang), portable=True)
    write_outputs({outputs["svg"]: svg, outputs["png"]: png, outputs["pdf"]: pdf})
