"""Figures of the reports as deterministic SVG (matplotlib), in a colour-blind-safe palette.

Text is drawn as paths with matplotlib's bundled DejaVu Sans, so a figure looks the same on
every machine and needs no font at render time; a fixed hash salt and no date make the SVG
bytes depend only on the data.
"""

from __future__ import annotations

import io
import textwrap

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dpo_eval.typography import format_count, tick_formatter  # noqa: E402

# Okabe & Ito (2008) palette, safe for the common colour-vision deficiencies.
OKABE_ITO = {"orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "grey": "#999999"}
COHORT_COLOURS = {"program": OKABE_ITO["blue"], "comparison": OKABE_ITO["orange"]}
# Diverging scale for 5-point ratings: low = vermillion side, high = blue side, middle grey.
LIKERT_COLOURS = ["#D55E00", "#F4A582", "#BBBBBB", "#92C5DE", "#0072B2"]

plt.rcParams.update({
    "svg.fonttype": "path", "svg.hashsalt": "dpo_eval", "font.family": "DejaVu Sans",
    "font.size": 8, "axes.titlesize": 8, "xtick.labelsize": 7.5, "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5, "axes.unicode_minus": True, "axes.spines.top": False, "axes.spines.right": False,
    "figure.dpi": 100, "savefig.bbox": "tight",
})


def to_svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "dpo_eval"})
    plt.close(figure)
    return buffer.getvalue()


# Characters per line of a forest plot's row label.
FOREST_LABEL_WIDTH = 44


def forest_plot(rows: pd.DataFrame, label_column: str, zero_label: str, x_label: str, lang: str) -> str:
    """Point estimates with 95% intervals, one row each, and a line at zero labelled beside
    (not across) the line, above the rows."""
    # Long labels are wrapped, not left to widen the figure: the PDF scales a figure to the text
    # width, so one wide label would shrink every label of the figure.
    labels = [textwrap.fill(str(label), FOREST_LABEL_WIDTH) for label in rows[label_column]]
    lines = max((label.count("\n") + 1 for label in labels), default=1)
    # A few rows get room to breathe; many rows (the sensitivity analyses) stay within a page.
    height = (0.45 if len(rows) <= 6 else 0.3 + 0.04 * (lines - 1)) * len(rows) + 0.9
    figure, axis = plt.subplots(figsize=(6.3, height))
    y = np.arange(len(rows))[::-1]
    axis.axvline(0, color=OKABE_ITO["grey"], linewidth=0.8)
    axis.hlines(y, rows["conf_low"], rows["conf_high"], color=OKABE_ITO["blue"], linewidth=1.6)
    axis.plot(rows["estimate"], y, "o", color=OKABE_ITO["blue"], markersize=5)
    axis.set_yticks(y, labels, fontsize=8)
    axis.set_xlabel(x_label)
    axis.xaxis.set_major_formatter(tick_formatter(lang))
    axis.set_ylim(-0.6, y.max() + 0.9)
    axis.annotate(zero_label, (0, y.max() + 0.9), xytext=(4, 2), textcoords="offset points",
                  ha="left", va="bottom", fontsize=7.5, color="#555555", annotation_clip=False)
    return to_svg(figure)


def means_plot(descriptives: pd.DataFrame, domain_names: dict, wave_names: dict,
               cohort_names: dict, y_label: str, lang: str) -> str:
    """Mean score by wave for each cohort, one panel per domain, with +-1.96 SE bars; wave
    names horizontal (wrapped, never rotated into the neighbouring panel), legend above."""
    domains = list(domain_names)
    waves = ["pre", "post", "followup"]
    figure, axes = plt.subplots(1, len(domains), figsize=(6.3, 2.6), sharey=True)
    for axis, domain in zip(np.atleast_1d(axes), domains):
        for offset, (cohort, colour) in zip((-0.06, 0.06), COHORT_COLOURS.items()):
            rows = descriptives[(descriptives["domain"] == domain) & (descriptives["cohort"] == cohort)]
            rows = rows.set_index("wave").reindex(waves).dropna(subset=["mean"])
            x = np.array([waves.index(w) for w in rows.index]) + offset
            se = rows["sd"] / np.sqrt(rows["n"])
            axis.errorbar(x, rows["mean"], yerr=1.96 * se, color=colour, marker="o", markersize=3.5,
                          linewidth=1.2, capsize=2, label=cohort_names[cohort])
        # Every other wave name one line lower: neighbouring labels never run into each other.
        axis.set_xticks(range(len(waves)), [("\n" if i % 2 else "") + wave_names[w] for i, w in enumerate(waves)],
                        fontsize=7.5)
        axis.set_xlim(-0.4, len(waves) - 0.6)
        axis.set_title(textwrap.fill(domain_names[domain], 26), fontsize=8)
        axis.yaxis.set_major_formatter(tick_formatter(lang, 1))
    np.atleast_1d(axes)[0].set_ylabel(y_label)
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    figure.tight_layout(w_pad=1.2)
    return to_svg(figure)


def diverging_likert(distribution: pd.DataFrame, area_names: dict, groups: dict, labels: list[str],
                     lang: str) -> str:
    """Diverging stacked bars: ratings 1-2 to the left of zero, 4-5 to the right, 3 centred;
    the legend directly above the first panel."""
    areas = list(area_names)
    figure, axes = plt.subplots(len(groups), 1, figsize=(6.3, 0.6 + 0.3 * len(areas) * len(groups)), sharex=True)
    for axis, (group, group_name) in zip(np.atleast_1d(axes), groups.items()):
        shares = (distribution[distribution["stakeholder"] == group]
                  .pivot_table(index="area", columns="value", values="share", fill_value=0.0)
                  .reindex(index=areas, columns=[1, 2, 3, 4, 5], fill_value=0.0))
        y = np.arange(len(areas))[::-1]
        left = -(shares[1] + shares[2] + shares[3] / 2)
        for value in [1, 2, 3, 4, 5]:
            axis.barh(y, shares[value], left=left, color=LIKERT_COLOURS[value - 1], height=0.7,
                      label=labels[value - 1])
            left = left + shares[value]
        axis.axvline(0, color="#333333", linewidth=0.6)
        axis.set_yticks(y, [textwrap.fill(area_names[a], 42) for a in areas], fontsize=7.5)
        axis.set_title(group_name, fontsize=8.5, loc="left", fontweight="bold")
        axis.set_xlim(-1, 1)
    last = np.atleast_1d(axes)[-1]
    last.set_xticks([-1, -0.5, 0, 0.5, 1])
    last.xaxis.set_major_formatter(tick_formatter(lang, percent=True))
    handles, names = last.get_legend_handles_labels()
    figure.tight_layout(h_pad=0.6)
    first = np.atleast_1d(axes)[0]
    first.legend(handles, [textwrap.fill(n, 18) for n in names], loc="lower left", ncol=5, frameon=False,
                 fontsize=7, bbox_to_anchor=(0.0, 1.12), borderaxespad=0, handlelength=1.2, columnspacing=1.0)
    return to_svg(figure)


def qq_plots(qq: pd.DataFrame, domain_names: dict, kind_names: dict, lang: str) -> str:
    """Normal QQ plots of residuals and random effects, a row per domain."""
    domains = list(domain_names)
    kinds = list(kind_names)
    figure, axes = plt.subplots(len(domains), len(kinds), figsize=(6.3, 1.9 * len(domains)), squeeze=False)
    for r, domain in enumerate(domains):
        for c, kind in enumerate(kinds):
            axis = axes[r, c]
            rows = qq[(qq["domain"] == domain) & (qq["kind"] == kind)]
            axis.plot(rows["theoretical"], rows["sample"], ".", markersize=2.5, color=OKABE_ITO["blue"])
            limit = 3.5
            axis.plot([-limit, limit], [-limit, limit], color=OKABE_ITO["grey"], linewidth=0.8)
            axis.set_xlim(-limit, limit)
            axis.set_ylim(-limit, limit)
            axis.set_title(textwrap.fill(f"{domain_names[domain]}: {kind_names[kind]}", 30), fontsize=7)
            axis.tick_params(labelsize=7)
            axis.xaxis.set_major_formatter(tick_formatter(lang))
            axis.yaxis.set_major_formatter(tick_formatter(lang))
    figure.tight_layout()
    return to_svg(figure)


def flow_diagram(flow: pd.DataFrame, wave_names: dict, cohort_names: dict, words: dict, lang: str) -> str:
    """Participant flow: per cohort a column of boxes, received -> participants -> analysed,
    for every wave, with duplicates, unmatched and exclusions beside them."""
    waves = [w for w in ("pre", "post", "followup") if w in set(flow["wave"])]
    figure, axis = plt.subplots(figsize=(6.3, 1.05 * len(waves) + 0.5))
    axis.set_axis_off()
    axis.set_xlim(0, 2)
    axis.set_ylim(-len(waves), 0.45)
    for column, cohort in enumerate(("program", "comparison")):
        axis.text(column + 0.5, 0.3, cohort_names[cohort], ha="center", va="center", fontsize=9,
                  fontweight="bold", color=COHORT_COLOURS[cohort])
        for row, wave in enumerate(waves):
            record = flow[(flow["wave"] == wave) & (flow["cohort"] == cohort)].iloc[0]
            y = -row - 0.45
            main = (f"{wave_names[wave]}: {words['received']} {format_count(record['received'], lang)}\n"
                    f"{words['participants']} {format_count(record['participants'], lang)}, "
                    f"{words['analysed']} {format_count(record['analysed'], lang)}")
            side = (f"{words['duplicates']} {format_count(record['duplicates'], lang)}, "
                    f"{words['unmatched']} {format_count(record['unmatched'], lang)}, "
                    f"{words['careless']} {format_count(record['careless'], lang)}")
            axis.text(column + 0.5, y + 0.1, main, ha="center", va="center", fontsize=7.5,
                      bbox={"boxstyle": "round,pad=0.4", "facecolor": "#F2F2F2",
                            "edgecolor": COHORT_COLOURS[cohort], "linewidth": 1})
            axis.text(column + 0.5, y - 0.28, side, ha="center", va="center", fontsize=6.5, color="#444444")
            if row > 0:
                axis.annotate("", xy=(column + 0.5, y + 0.33), xytext=(column + 0.5, y + 0.62),
                              arrowprops={"arrowstyle": "->", "color": "#666666", "linewidth": 0.8})
    return to_svg(figure)


def formula(tex: str, size: float = 11) -> str:
    """A formula typeset by matplotlib's mathtext (a TeX subset; no LaTeX installation
    needed) as an SVG with a tight bounding box."""
    figure = plt.figure(figsize=(0.01, 0.01))
    figure.text(0, 0, f"${tex}$", fontsize=size, math_fontfamily="dejavusans")
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", pad_inches=0.02, transparent=True,
                   metadata={"Date": None, "Creator": "dpo_eval"})
    plt.close(figure)
    return buffer.getvalue()
