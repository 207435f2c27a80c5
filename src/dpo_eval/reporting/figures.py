"""Figures of the reports as deterministic SVG (matplotlib) whose text is text.

- Labels, ticks and legends stay SVG ``<text>`` (``svg.fonttype: none``) in the family
  "Report Sans", which the report templates declare with ``@font-face`` from the fonts they ship
  (reports/fonts, DejaVu Sans): WeasyPrint embeds them, so a figure's words can be found, copied
  and read aloud, and look the same on every machine. matplotlib lays the text out with its own
  copy of the same font (DejaVu Sans), so the metrics agree.
- Figures are drawn at print size (``FIGURE_WIDTH``, within the text width of an A4 page; the
  templates never enlarge them), so a font size here is the printed size: no text under
  ``MIN_FONT_PT``.
- Colours have one meaning in every report (``COLOURS``, Okabe & Ito 2008, safe for the common
  colour-vision deficiencies) and series that share a figure also differ by marker or line
  style and by lightness, so that they stay apart in greyscale.
- A fixed hash salt and no date make the SVG bytes depend only on the data.
"""

from __future__ import annotations

import io
import re
import textwrap
from dataclasses import dataclass

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dpo_eval.reporting.typography import format_count, format_number, tick_formatter, typeset  # noqa: E402
from dpo_eval.core.study import COHORTS, WAVES

# Okabe & Ito (2008) palette, safe for the common colour-vision deficiencies.
OKABE_ITO = {"orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "grey": "#999999"}
# What a colour means, the same in the evaluation report and in every school report.
COLOURS = {
    "program": OKABE_ITO["blue"],          # the program cohort
    "comparison": OKABE_ITO["orange"],     # the comparison cohort
    "own": OKABE_ITO["vermillion"],        # a school's own team (or the pooled schools shown for it)
    "region": "#404040",                   # all schools of the region (dark grey)
    "difference": "#000000",               # program minus comparison, and pooled estimates
    "reference": "#AAAAAA",                # reference lines: zero, the identity line
}
# Marker and line style of each series: a second cue besides colour (greyscale, colour vision).
MARKERS = {"program": "o", "comparison": "s", "own": "o", "region": "D"}
LINES = {"program": "-", "comparison": "--", "own": "-", "region": "--"}
COHORT_COLOURS = {"program": COLOURS["program"], "comparison": COLOURS["comparison"]}
# Ratings 1-5 of importance (ColorBrewer BrBG, colour-blind safe): brown = low, grey = middle,
# teal = high; neither end uses a cohort's colour.
LIKERT_COLOURS = ["#A6611A", "#DFC27D", "#D9D9D9", "#80CDC1", "#018571"]

# The printed width of a figure: within the 174 mm text width of the reports' A4 pages.
FIGURE_WIDTH = 6.6
MIN_FONT_PT = 8
FONT_FAMILY = "Report Sans"  # declared by the report templates (@font-face, reports/fonts)

plt.rcParams.update({
    "svg.fonttype": "none", "svg.hashsalt": "dpo_eval", "font.family": "DejaVu Sans",
    "font.size": 8.5, "axes.titlesize": 8.5, "axes.labelsize": 8.5, "xtick.labelsize": 8, "ytick.labelsize": 8,
    "legend.fontsize": 8, "figure.titlesize": 9, "axes.unicode_minus": True, "axes.spines.top": False,
    "axes.spines.right": False, "figure.dpi": 100, "savefig.bbox": "tight",
    "figure.constrained_layout.use": True, "figure.constrained_layout.h_pad": 0.03,
    "figure.constrained_layout.w_pad": 0.03,
})

_MATPLOTLIB_FONT = re.compile(r"font-family: 'DejaVu Sans'")


def to_svg(figure) -> str:
    """The figure as SVG text, its words in the reports' font family."""
    buffer = io.StringIO()
    # Constrained layout fits everything into the figure's print size: no tight bounding box,
    # which could make the figure wider than the text and so shrink its type when placed.
    with plt.rc_context({"savefig.bbox": "standard"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "dpo_eval"})
    plt.close(figure)
    return _MATPLOTLIB_FONT.sub(f"font-family: '{FONT_FAMILY}'", buffer.getvalue())


def wrap(text: str, width: int, lang: str) -> str:
    """A label set by the language's rules (``typeset``: its no-break spaces keep a preposition
    with its word) and wrapped to ``width`` characters."""
    return textwrap.fill(typeset(str(text), lang), width, break_long_words=False)


# --------------------------------------------------------------------------- forest plots

# Characters per line of a forest plot's row label.
FOREST_LABEL_WIDTH = 44


@dataclass(frozen=True)
class ForestRow:
    label: str
    estimate: float | None = None
    low: float | None = None
    high: float | None = None
    heading: bool = False


def forest_rows(rows: pd.DataFrame, label_column: str, group_column: str | None) -> list[ForestRow]:
    """Rows of a forest plot in their order; with ``group_column``, a heading row before each
    group (in order of first appearance) and the group's rows under it."""
    def row(r) -> ForestRow:
        return ForestRow(str(r[label_column]), float(r["estimate"]), float(r["conf_low"]), float(r["conf_high"]))

    if group_column is None:
        return [row(r) for _, r in rows.iterrows()]
    out = []
    for group in dict.fromkeys(rows[group_column]):
        out.append(ForestRow(str(group), heading=True))
        out.extend(row(r) for _, r in rows[rows[group_column] == group].iterrows())
    return out


def forest_plot(rows: pd.DataFrame, label_column: str, zero_label: str, x_label: str, lang: str,
                group_column: str | None = None, y_label: str | None = None) -> str:
    """Point estimates with their intervals, one row each (grouped under headings by
    ``group_column``, e.g. the domain), and a line at zero labelled beside (not across) it."""
    entries = forest_rows(rows, label_column, group_column)
    labels = [wrap(e.label, FOREST_LABEL_WIDTH, lang) for e in entries]
    lines = sum(label.count("\n") + 1 for label in labels)
    height = 0.22 * lines + 0.08 * len(entries) + 0.9
    figure, axis = plt.subplots(figsize=(FIGURE_WIDTH, height))
    y = np.arange(len(entries))[::-1]
    axis.axvline(0, color=COLOURS["reference"], linewidth=0.8)
    for position, entry in zip(y, entries):
        if entry.heading:
            continue
        axis.hlines(position, entry.low, entry.high, color=COLOURS["difference"], linewidth=1.5)
        axis.plot(entry.estimate, position, "o", color=COLOURS["difference"], markersize=5)
    axis.set_yticks(y, labels, fontsize=MIN_FONT_PT)
    for tick, entry in zip(axis.get_yticklabels(), entries):
        if entry.heading:
            tick.set_fontweight("bold")
    axis.tick_params(axis="y", length=0)
    axis.set_xlabel(x_label)
    if y_label:
        axis.set_ylabel(y_label)
    axis.xaxis.set_major_formatter(tick_formatter(lang))
    axis.set_ylim(-0.6, y.max() + 0.9)
    axis.annotate(typeset(zero_label, lang), (0, y.max() + 0.9), xytext=(4, 2), textcoords="offset points",
                  ha="left", va="bottom", fontsize=MIN_FONT_PT, color="#444444", annotation_clip=False)
    return to_svg(figure)


# --------------------------------------------------------------------------- means by wave



def means_plot(descriptives: pd.DataFrame, domain_names: dict, wave_names: dict,
               cohort_names: dict, y_label: str, lang: str, x_label: str | None = None) -> str:
    """Mean score by wave for each cohort, one panel per domain, with +-1.96 SE bars; the
    comparison cohort dashed with square markers; wave names horizontal, legend above."""
    domains = list(domain_names)
    figure, axes = plt.subplots(1, len(domains), figsize=(FIGURE_WIDTH, 2.9), sharey=True, squeeze=False)
    for axis, domain in zip(axes[0], domains):
        for offset, cohort in zip((-0.06, 0.06), COHORTS):
            rows = descriptives[(descriptives["domain"] == domain) & (descriptives["cohort"] == cohort)]
            rows = rows.set_index("wave").reindex(WAVES).dropna(subset=["mean"])
            x = np.array([WAVES.index(w) for w in rows.index]) + offset
            se = rows["sd"] / np.sqrt(rows["n"])
            axis.errorbar(x, rows["mean"], yerr=1.96 * se, color=COLOURS[cohort], marker=MARKERS[cohort],
                          linestyle=LINES[cohort], markersize=4, linewidth=1.2, capsize=2,
                          label=typeset(cohort_names[cohort], lang))
        # Every other wave name one line lower: neighbouring labels never run into each other.
        axis.set_xticks(range(len(WAVES)), [("\n" if i % 2 else "") + wrap(wave_names[w], 16, lang)
                                            for i, w in enumerate(WAVES)])
        axis.set_xlim(-0.4, len(WAVES) - 0.6)
        axis.set_title(wrap(domain_names[domain], 26, lang))
        axis.yaxis.set_major_formatter(tick_formatter(lang, 1))
        if x_label:
            axis.set_xlabel(x_label)
    axes[0][0].set_ylabel(y_label)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper center", ncol=2, frameon=False)
    return to_svg(figure)


# --------------------------------------------------------------------------- needs

def diverging_likert(distribution: pd.DataFrame, area_names: dict, groups: dict, labels: list[str],
                     lang: str, x_label: str | None = None) -> str:
    """Diverging stacked bars: ratings 1-2 to the left of zero, 4-5 to the right, 3 centred;
    one panel per group of respondents side by side (small multiples sharing the need areas'
    rows, so that a row compares across groups), the legend above the panels."""
    areas = list(area_names)
    label_lines = [wrap(area_names[a], 30, lang) for a in areas]
    height = 1.3 + sum(0.13 * (label.count("\n") + 1) + 0.12 for label in label_lines)
    figure, axes = plt.subplots(1, len(groups), figsize=(FIGURE_WIDTH, height), sharey=True, squeeze=False)
    y = np.arange(len(areas))[::-1]
    for axis, (group, group_name) in zip(axes[0], groups.items()):
        shares = (distribution[distribution["stakeholder"] == group]
                  .pivot_table(index="area", columns="value", values="share", fill_value=0.0)
                  .reindex(index=areas, columns=[1, 2, 3, 4, 5], fill_value=0.0))
        left = -(shares[1] + shares[2] + shares[3] / 2)
        for value in [1, 2, 3, 4, 5]:
            axis.barh(y, shares[value], left=left, color=LIKERT_COLOURS[value - 1], height=0.7,
                      edgecolor="white", linewidth=0.4, label=typeset(labels[value - 1], lang))
            left = left + shares[value]
        axis.axvline(0, color="#333333", linewidth=0.6)
        axis.set_title(wrap(group_name, 18, lang), fontweight="bold")
        axis.set_xlim(-1, 1)
        axis.set_xticks([-0.5, 0, 0.5])
        axis.xaxis.set_major_formatter(tick_formatter(lang, percent=True))
        axis.tick_params(axis="y", length=0)
    axes[0][0].set_yticks(y, label_lines)
    if x_label:
        figure.supxlabel(typeset(x_label, lang), fontsize=plt.rcParams["axes.labelsize"])
    handles, names = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, [textwrap.fill(n, 20) for n in names], loc="outside upper center", ncol=5,
                  frameon=False, handlelength=1.2, columnspacing=1.0)
    return to_svg(figure)


# --------------------------------------------------------------------------- model checks

# Points of one Q-Q panel at most: above this, ``thinned_quantiles`` keeps both tails whole and
# evenly spaced ranks in between. A panel of 500 points looks the same as one of 50,000, which
# made the evaluation report's layout and size grow with the number of participants.
QQ_MAX_POINTS = 500
QQ_TAIL_POINTS = 50


def thinned_quantiles(rows: pd.DataFrame, limit: int = QQ_MAX_POINTS, tail: int = QQ_TAIL_POINTS) -> pd.DataFrame:
    """The points of a Q-Q panel to draw: all of them up to ``limit``; beyond, in order of the
    theoretical quantile, the ``tail`` most extreme at each end and ``limit - 2 * tail`` at
    evenly spaced ranks between them (the table keeps every point)."""
    if len(rows) <= limit:
        return rows
    ordered = rows.sort_values("theoretical", kind="stable")
    middle = np.linspace(tail, len(ordered) - tail - 1, limit - 2 * tail).round().astype(int)
    keep = np.unique(np.concatenate([np.arange(tail), middle, np.arange(len(ordered) - tail, len(ordered))]))
    return ordered.iloc[keep]


def qq_plots(qq: pd.DataFrame, domain_names: dict, kind_names: dict, lang: str,
             x_label: str | None = None, y_label: str | None = None) -> str:
    """Normal Q-Q plots of residuals and random effects, a row per domain; every panel's
    axes titled (theoretical and sample quantiles); at most ``QQ_MAX_POINTS`` points a panel
    (``thinned_quantiles``)."""
    domains = list(domain_names)
    kinds = list(kind_names)
    figure, axes = plt.subplots(len(domains), len(kinds), figsize=(FIGURE_WIDTH, 2.1 * len(domains)), squeeze=False)
    for r, domain in enumerate(domains):
        for c, kind in enumerate(kinds):
            axis = axes[r, c]
            rows = thinned_quantiles(qq[(qq["domain"] == domain) & (qq["kind"] == kind)])
            axis.plot(rows["theoretical"], rows["sample"], ".", markersize=2.5, color=COLOURS["difference"])
            limit = 3.5
            axis.plot([-limit, limit], [-limit, limit], color=COLOURS["reference"], linewidth=0.8)
            axis.set_xlim(-limit, limit)
            axis.set_ylim(-limit, limit)
            axis.set_title(wrap(f"{domain_names[domain]}: {kind_names[kind]}", 24, lang))
            axis.xaxis.set_major_formatter(tick_formatter(lang))
            axis.yaxis.set_major_formatter(tick_formatter(lang))
    # One title per axis direction for the whole grid: every panel shares them.
    if x_label:
        figure.supxlabel(typeset(x_label, lang), fontsize=plt.rcParams["axes.labelsize"])
    if y_label:
        figure.supylabel(typeset(y_label, lang), fontsize=plt.rcParams["axes.labelsize"])
    return to_svg(figure)


# --------------------------------------------------------------------------- participant flow

def flow_diagram(flow: pd.DataFrame, wave_names: dict, cohort_names: dict, words: dict, lang: str) -> str:
    """Participant flow: per cohort a column of boxes, received -> participants -> analysed,
    for every wave, with duplicates, unmatched and exclusions beside them."""
    waves = [w for w in WAVES if w in set(flow["wave"])]
    figure, axis = plt.subplots(figsize=(FIGURE_WIDTH, 1.2 * len(waves) + 0.5))
    axis.set_axis_off()
    axis.set_xlim(0, 2)
    axis.set_ylim(-len(waves), 0.45)
    for column, cohort in enumerate(COHORTS):
        axis.text(column + 0.5, 0.3, typeset(cohort_names[cohort], lang), ha="center", va="center", fontsize=9,
                  fontweight="bold", color="#111111")
        axis.plot([column + 0.15, column + 0.85], [0.18, 0.18], color=COLOURS[cohort], linewidth=2.5,
                  linestyle=LINES[cohort])
        for row, wave in enumerate(waves):
            record = flow[(flow["wave"] == wave) & (flow["cohort"] == cohort)].iloc[0]
            y = -row - 0.45
            count = lambda key: format_count(record[key], lang)  # noqa: E731
            # Labels before their counts ("участников: 118"), each line closed by punctuation, so
            # that no count reads as the numeral of the next line's noun.
            main = typeset(f"{wave_names[wave]}: {words['received']}: {count('received')};\n"
                           f"{words['participants']}: {count('participants')}, "
                           f"{words['analysed']}: {count('analysed')}", lang)
            side = typeset(f"{words['duplicates']}: {count('duplicates')}, {words['unmatched']}: {count('unmatched')},\n"
                           f"{words['careless']}: {count('careless')}", lang)
            axis.text(column + 0.5, y + 0.12, main, ha="center", va="center", fontsize=MIN_FONT_PT,
                      bbox={"boxstyle": "round,pad=0.4", "facecolor": "#F2F2F2",
                            "edgecolor": COLOURS[cohort], "linewidth": 1,
                            "linestyle": LINES[cohort]})
            axis.text(column + 0.5, y - 0.3, side, ha="center", va="center", fontsize=MIN_FONT_PT, color="#333333")
            if row > 0:
                axis.annotate("", xy=(column + 0.5, y + 0.36), xytext=(column + 0.5, y + 0.6),
                              arrowprops={"arrowstyle": "->", "color": "#666666", "linewidth": 0.8})
    return to_svg(figure)


# --------------------------------------------------------------------------- school reports

@dataclass(frozen=True)
class ScoreAxis:
    """The score axis of every school report of a study: one window of the 1-5 scale."""
    low: float
    high: float
    step: float


def score_axis(scale_low: float = 1.0, scale_high: float = 5.0) -> ScoreAxis:
    """The axis of every school report of a study: the whole response scale, ticks every half
    point. Not a window around the means: a window fitted to the means shown would differ
    between studies' batches of reports only through the data, and one fitted to all schools'
    means would let its bounds tell something about cells too small to be shown."""
    return ScoreAxis(float(scale_low), float(scale_high), 0.5)
