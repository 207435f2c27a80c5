"""The two charts of a school report as HTML: the shapes in one background SVG without any text,
the words as text boxes placed over it.

A school report is rendered thousands of times per study, and WeasyPrint draws the text of an
SVG image glyph by glyph (a text layout and a fill per letter): the same charts drawn by
matplotlib as SVG were a third of a report's rendering time. Here every label is an HTML text
box (one layout per label) in the reports' font, so the words stay text that can be found,
copied and read, and the chart (a ``div`` with ``role="img"``) is tagged as one ``Figure`` with
its alternative text (``accessibility.tagged_roles``). Both charts keep the look and the rules of
``figures``: print size (``figures.FIGURE_WIDTH``), no text under ``figures.MIN_FONT_PT``,
colours with one meaning (``figures.COLOURS``) and a second cue by marker and line style, one
score axis for every school of a study (``figures.score_axis``).

Coordinates are in points from the chart's top left corner; text widths (to make room for the
longest label and to centre the legend) come from the advance widths of the font the reports
ship (DejaVu Sans, the same font matplotlib uses).
"""

from __future__ import annotations

import base64
import functools
import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dpo_eval.reporting.figures import COLOURS, FIGURE_WIDTH, LINES, MARKERS, MIN_FONT_PT, ScoreAxis, wrap
from dpo_eval.reporting.typography import format_count, format_number, typeset

WIDTH = FIGURE_WIDTH * 72
FONT = float(MIN_FONT_PT)
LINE_HEIGHT = 1.2        # of a label of several lines, in ems
AXIS_COLOUR = "#333333"
GRID_COLOUR = "#E0E0E0"
TEXT_COLOUR = "#111111"
TICK = 3.5               # length of an axis tick
GAP = 4.0                # between a tick label and its axis, and around the legend
LEGEND_HEIGHT = 16.0
MARKER = 3.0             # radius of a marker (6 pt across, as the figures' markersize 6)
KEY = 18.0               # width of a legend key


@functools.lru_cache(maxsize=2)
def _advances(bold: bool) -> tuple[dict[int, int], int, int]:
    """Advance widths by code point of DejaVu Sans (matplotlib's copy of the font the reports
    ship), with the width of a missing glyph and the font's units per em."""
    import matplotlib
    from fontTools.ttLib import TTFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    with TTFont(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name) as font:
        metrics, cmap = font["hmtx"].metrics, font.getBestCmap()
        return {code: metrics[glyph][0] for code, glyph in cmap.items()}, metrics[".notdef"][0], font["head"].unitsPerEm


def text_width(text: str, size: float = FONT, bold: bool = False) -> float:
    """The printed width (points) of one line of ``text`` at ``size`` points, without kerning
    (which makes no difference a layout margin would show)."""
    advances, missing, units = _advances(bold)
    return sum(advances.get(ord(c), missing) for c in text) * size / units


@dataclass(frozen=True)
class Label:
    """A text box: its ``anchor`` ("start", "middle", "end") at ``x``, its lines centred on ``y``;
    ``rotated``: read from bottom to top, centred on (``x``, ``y``)."""
    x: float
    y: float
    text: str
    anchor: str = "start"
    colour: str = TEXT_COLOUR
    rotated: bool = False


@dataclass
class Chart:
    """A chart under construction: its height, its shapes (SVG elements) and its labels."""
    height: float
    shapes: list[str] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)

    def line(self, x1: float, y1: float, x2: float, y2: float, colour: str, width: float, dashed: bool = False) -> None:
        dash = f' stroke-dasharray="{4.4 * width:.2f} {1.9 * width:.2f}"' if dashed else ""
        self.shapes.append(f'<line x1="{x1:.2f}" y1="{y1:.2f}" x2="{x2:.2f}" y2="{y2:.2f}" stroke="{colour}" '
                           f'stroke-width="{width:.2f}"{dash}/>')

    def rect(self, x: float, y: float, width: float, height: float, colour: str) -> None:
        self.shapes.append(f'<rect x="{x:.2f}" y="{y:.2f}" width="{width:.2f}" height="{height:.2f}" fill="{colour}"/>')

    def marker(self, kind: str, x: float, y: float, colour: str, hollow: bool = False) -> None:
        """A circle ("o") or a diamond ("D"), filled or hollow (white inside, ``colour`` edge)."""
        fill, edge = ("#FFFFFF", 1.2) if hollow else (colour, 0.0)
        stroke = f' stroke="{colour}" stroke-width="{edge:.2f}"' if hollow else ""
        if kind == "o":
            self.shapes.append(f'<circle cx="{x:.2f}" cy="{y:.2f}" r="{MARKER:.2f}" fill="{fill}"{stroke}/>')
        else:
            r = MARKER * 1.15
            points = f"{x:.2f},{y - r:.2f} {x + r:.2f},{y:.2f} {x:.2f},{y + r:.2f} {x - r:.2f},{y:.2f}"
            self.shapes.append(f'<polygon points="{points}" fill="{fill}"{stroke}/>')

    def text(self, x: float, y: float, text: str, anchor: str = "start", colour: str = TEXT_COLOUR,
             rotated: bool = False) -> None:
        self.labels.append(Label(x, y, text, anchor, colour, rotated))

    def legend(self, entries: list[tuple[str, object]], y: float) -> None:
        """A centred row of legend entries: per entry its key (``draw(chart, x, y)`` over a
        ``KEY`` wide space) and its text."""
        widths = [KEY + GAP + text_width(text) for text, _ in entries]
        x = (WIDTH - sum(widths) - 3 * GAP * (len(entries) - 1)) / 2
        for (text, draw), width in zip(entries, widths):
            draw(self, x, y)
            self.text(x + KEY + GAP, y, text)
            x += width + 3 * GAP

    def html(self, alt: str) -> str:
        """The chart as a ``div`` tagged as a figure with ``alt`` as its alternative text."""
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH:.2f}pt" height="{self.height:.2f}pt" '
               f'viewBox="0 0 {WIDTH:.2f} {self.height:.2f}">{"".join(self.shapes)}</svg>')
        background = "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
        labels = "".join(_label_html(label) for label in self.labels)
        return (f'<div class="chart" role="img" aria-label="{html.escape(alt)}" style="height: {self.height:.2f}pt; '
                f"background-image: url('{background}')\">{labels}</div>")



def _label_html(label: Label) -> str:
    lines = label.text.split("\n")
    height = FONT * (LINE_HEIGHT if len(lines) > 1 else 1.0) * len(lines)
    text = "<br>".join(html.escape(line) for line in lines)
    classes = [{"start": "", "middle": "middle", "end": "end"}[label.anchor]] + (["lines"] if len(lines) > 1 else [])
    if label.rotated:
        classes = ["rotated"]
    attribute = f' class="{" ".join(c for c in classes if c)}"' if any(classes) else ""
    colour = f" color: {label.colour};" if label.colour != TEXT_COLOUR else ""
    top = label.y - height / 2
    # Every box has its width (the text's and two points to spare): WeasyPrint would
    # otherwise lay each label out twice, once to measure it (shrink-to-fit) and once to place it.
    width = max(text_width(line) for line in lines) + 2
    if label.anchor == "end" and not label.rotated:
        place = f"right: {WIDTH - label.x:.2f}pt; width: {width:.2f}pt"
    elif label.anchor == "middle" or label.rotated:
        # Centred on x (a rotated label turns about its own centre, placed at (x, y)).
        place = f"left: {label.x - width / 2:.2f}pt; width: {width:.2f}pt"
    else:
        place = f"left: {label.x:.2f}pt; width: {width:.2f}pt"
    return f'<span{attribute} style="{place}; top: {top:.2f}pt;{colour}">{text}</span>'


def _x_axis(chart: Chart, scale, ticks: list[float], texts: list[str], left: float, right: float, bottom: float,
            title: str, grid_top: float | None = None) -> None:
    """The bottom axis: its line, ticks and tick labels, the title under it, and (from
    ``grid_top``) light vertical grid lines at the ticks."""
    chart.line(left, bottom, right, bottom, AXIS_COLOUR, 0.8)
    for value, text in zip(ticks, texts):
        x = scale(value)
        if grid_top is not None:
            chart.line(x, grid_top, x, bottom, GRID_COLOUR, 0.5)
        chart.line(x, bottom, x, bottom + TICK, AXIS_COLOUR, 0.8)
        chart.text(x, bottom + TICK + GAP / 2 + FONT / 2, text, "middle")
    chart.text((left + right) / 2, bottom + TICK + GAP + FONT * 1.9, title, "middle")


def _y_labels(chart: Chart, labels: list[str], positions: list[float], left: float, top: float, bottom: float,
              title: str) -> None:
    chart.line(left, top, left, bottom, AXIS_COLOUR, 0.8)
    for text, y in zip(labels, positions):
        chart.text(left - GAP, y, text, "end")
    chart.text(FONT * 0.7, (top + bottom) / 2, title, rotated=True)


def _label_column(labels: list[str]) -> float:
    """Where the plot starts: room for the rotated axis title and the widest label."""
    widest = max((text_width(line) for label in labels for line in label.split("\n")), default=0.0)
    return FONT * 1.6 + widest + 2 * GAP


def participation_chart(participation: list[dict], names: dict, lang: str, alt: str) -> str:
    """A school's participants per wave (bars, its own colour) beside the mean of the region's
    schools (a grey diamond), each value written at its mark. ``participation`` items: wave
    (name), n, region_mean. ``names``: "own", "region", "x_label", "y_label"."""
    from matplotlib.ticker import MaxNLocator

    counts = [p["n"] for p in participation]
    means = [p["region_mean"] for p in participation]
    waves = [typeset(p["wave"], lang) for p in participation]
    pitch = 21.6
    top = LEGEND_HEIGHT + GAP
    bottom = top + pitch * (len(participation) + 0.2)
    chart = Chart(bottom + TICK + GAP + FONT * 2.6)
    left, right = _label_column(waves), WIDTH - 12
    high = max(counts + means + [1]) * 1.18
    scale = lambda value: left + (right - left) * value / high  # noqa: E731
    ticks = [t for t in MaxNLocator(integer=True).tick_values(0, high) if 0 <= t <= high + 1e-9]
    _x_axis(chart, scale, ticks, [format_number(t, lang, 0) for t in ticks], left, right, bottom,
            typeset(names["x_label"], lang))
    rows = [top + pitch * (i + 0.6) for i in range(len(participation))]
    for y, count, mean in zip(rows, counts, means):
        chart.rect(left, y - pitch * 0.55 / 2, scale(count) - left, pitch * 0.55, COLOURS["own"])
        chart.marker("D", scale(mean), y, COLOURS["region"])
        chart.text(scale(count) + 3, y, format_count(count, lang))
        chart.text(scale(mean), y - MARKER - GAP - FONT / 2 + 1, format_number(mean, lang, 1), "middle",
                   COLOURS["region"])
    _y_labels(chart, waves, rows, left, top, bottom, typeset(names["y_label"], lang))
    chart.legend([(typeset(names["own"], lang), lambda c, x, y: c.rect(x + 3, y - 3.5, KEY - 6, 7, COLOURS["own"])),
                  (typeset(names["region"], lang), lambda c, x, y: c.marker("D", x + KEY / 2, y, COLOURS["region"]))],
                 LEGEND_HEIGHT / 2)
    return chart.html(alt)


def _series_key(kind: str):
    def draw(chart: Chart, x: float, y: float) -> None:
        chart.line(x, y, x + KEY, y, COLOURS[kind], 1.3, dashed=LINES[kind] != "-")
        chart.marker(MARKERS[kind], x + KEY / 2, y, COLOURS[kind])
    return draw


def profile_chart(series: list[dict], domain_names: dict, axis_range: ScoreAxis, names: dict, lang: str,
                  alt: str) -> str:
    """A school's profile: per domain a row, per series ("own": its team or the pooled schools
    shown for it, "region") the mean at entry (hollow) and exit (filled) joined by a line, on
    the study's common ``axis_range``. ``series`` items: kind, domain, pre, post. ``names``:
    legend names of the series and the wave names ("pre", "post"), the axis title ("x_label")
    and the domain axis title ("y_label")."""
    domains = [d for d in domain_names if any(s["domain"] == d for s in series)]
    labels = [wrap(domain_names[d], 30, lang) for d in domains]
    pitch = 39.6
    top = LEGEND_HEIGHT + GAP
    bottom = top + pitch * len(domains)
    chart = Chart(bottom + TICK + GAP + FONT * 2.6)
    left, right = _label_column(labels), WIDTH - 12
    scale = lambda value: left + (right - left) * (value - axis_range.low) / (axis_range.high - axis_range.low)  # noqa: E731
    ticks = list(np.arange(axis_range.low, axis_range.high + 1e-9, axis_range.step))
    digits = 2 if axis_range.step < 0.5 else 1
    _x_axis(chart, scale, ticks, [format_number(t, lang, digits) for t in ticks], left, right, bottom,
            typeset(names["x_label"], lang), grid_top=top)
    rows = {d: top + pitch * (i + 0.5) for i, d in enumerate(domains)}
    offsets = {"own": -0.14 * pitch, "region": 0.14 * pitch}
    for kind in ("own", "region"):
        for s in (s for s in series if s["kind"] == kind):
            y = rows[s["domain"]] + offsets[kind]
            chart.line(scale(s["pre"]), y, scale(s["post"]), y, COLOURS[kind], 1.3, dashed=LINES[kind] != "-")
            chart.marker(MARKERS[kind], scale(s["pre"]), y, COLOURS[kind], hollow=True)
            chart.marker(MARKERS[kind], scale(s["post"]), y, COLOURS[kind])
    _y_labels(chart, labels, list(rows.values()), left, top, bottom, typeset(names["y_label"], lang))
    grey = "#333333"
    chart.legend([(typeset(names["own"], lang), _series_key("own")),
                  (typeset(names["region"], lang), _series_key("region")),
                  (typeset(names["pre"], lang), lambda c, x, y: c.marker("o", x + KEY / 2, y, grey, hollow=True)),
                  (typeset(names["post"], lang), lambda c, x, y: c.marker("o", x + KEY / 2, y, grey))],
                 LEGEND_HEIGHT / 2)
    return chart.html(alt)
