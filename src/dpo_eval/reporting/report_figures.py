"""The figures of the reports with their alternative texts, ready for the templates: each is a
``Figure`` with an SVG data URI (the evaluation report's, drawn by ``figures``) or the HTML of a
chart (a school report's, ``school_charts``), and the alternative text that states what it shows
with its key numbers (``dpo_eval.reporting.figure_text``). One function per report kind, called
by its context builder."""

from __future__ import annotations

import base64
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from markupsafe import Markup

from dpo_eval.reporting import figure_text, figures, school_charts


@dataclass(frozen=True)
class Figure:
    src: str   # data:image/svg+xml URI ("" for a chart drawn as HTML)
    alt: str   # the text alternative
    html: Markup = Markup("")  # a chart drawn as HTML (school_charts), tagged as a figure with ``alt``


# How many drawn school figures a rendering process keeps: schools with the same counts (or
# shown at the same pooled level) share a figure, drawn once. About 10 kB each.
MEMO_SIZE = 512
_MEMO: OrderedDict[tuple, str] = OrderedDict()


def _frozen(value):
    """``value`` (dicts, lists, numbers, texts) as a hashable key of the same content."""
    if isinstance(value, dict):
        return tuple((key, _frozen(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(item) for item in value)
    return value


def memoised(draw: Callable[..., str], *args) -> str:
    """``draw(*args)``, drawn once per distinct ``args`` among the last ``MEMO_SIZE`` (the
    figures are deterministic: the same data give the same bytes, so a repeat is skipped)."""
    key = (draw.__name__, _frozen(args))
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    drawn = _MEMO[key] = draw(*args)
    if len(_MEMO) > MEMO_SIZE:
        _MEMO.popitem(last=False)
    return drawn


def svg_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def evaluation_figures(tables: dict[str, pd.DataFrame], forest: pd.DataFrame, sensitivity: pd.DataFrame,
                       t: dict, names: dict, groups: list[str], domains: list[str], lang: str) -> dict[str, Figure]:
    """The evaluation report's figures: participant flow, needs ratings, means by wave, the
    forest plot of the differences in gains (``forest``: label, estimate, conf_low, conf_high),
    the Q-Q plots and the sensitivity analyses (``sensitivity``: the usable rows of the
    sensitivity table) grouped under their domain. ``t`` holds the language's strings (``alt``:
    what each figure shows; ``figure_axes``: the axis titles)."""
    dn = {d: names["domain"][d] for d in domains}
    axes = t["figure_axes"]
    flow = tables["flow"][tables["flow"]["wave"] != "pre+post"]
    descriptives = tables["descriptives"][tables["descriptives"]["domain"].isin(domains)]
    analyses = list(t["analyses"])
    sens = sensitivity[sensitivity["domain"].isin(domains)]
    sens = sens.assign(order=sens["domain"].map(domains.index) * 100 + sens["analysis"].map(analyses.index))
    sens = sens.sort_values("order", kind="stable").assign(group=lambda f: f["domain"].map(dn),
                                                           label=lambda f: f["analysis"].map(t["analyses"]))
    # The panels carry the same names as the columns of the needs tables.
    stakeholders = {g: t["stakeholder_short"][g] for g in groups}
    qq = tables["qq"]
    svgs = {
        "flow": figures.flow_diagram(flow, t["waves"], t["cohorts"], t["flow_words"], lang),
        "likert": figures.diverging_likert(tables["needs_distribution"], names["area"], stakeholders,
                                           names["importance"], lang, x_label=axes["share_of_ratings"]),
        "means": figures.means_plot(descriptives, dn, t["waves"], t["cohorts"], t["mean_score"], lang,
                                    x_label=axes["wave"]),
        "forest": figures.forest_plot(forest, "label", t["no_difference"], t["did_axis"], lang,
                                      y_label=axes["domain"]),
        "qq": figures.qq_plots(qq, dn, t["qq_kinds"], lang, x_label=axes["theoretical_quantiles"],
                               y_label=axes["sample_quantiles"]),
        "sensitivity": figures.forest_plot(sens, "label", t["no_difference"], t["did_axis"], lang,
                                           group_column="group", y_label=axes["analysis"]),
    }
    alts = {
        "flow": figure_text.flow_alt(flow, t["waves"], t["cohorts"], t["flow_words"], t["alt"]["flow"], lang),
        "likert": figure_text.likert_alt(tables["needs_distribution"], names["area"], stakeholders,
                                         t["alt"]["likert"], lang),
        "means": figure_text.means_alt(descriptives, dn, t["waves"], t["cohorts"], t["alt"]["means"], lang),
        "forest": figure_text.forest_alt(forest, "label", t["alt"]["forest"], lang),
        "qq": figure_text.qq_alt(qq, dn, t["qq_kinds"], t["alt"]["qq"], lang),
        "sensitivity": figure_text.forest_alt(sens, "label", t["alt"]["sensitivity"], lang, group_column="group"),
    }
    return {name: Figure(svg_uri(svg), alts[name]) for name, svg in svgs.items()}


def profile_series(shown: pd.DataFrame, region: pd.DataFrame, domains: list[str]) -> list[dict]:
    """The series of a school's profile: per domain the shown level's ("own") and the region's
    mean at entry and exit, where both waves are there (and, for the level, shown)."""
    series = []
    for domain in domains:
        for kind, frame in (("own", shown[shown["shown"]] if "shown" in shown else shown), ("region", region)):
            means = frame[frame["domain"] == domain].set_index("wave")["mean"]
            pre, post = means.get("pre"), means.get("post")
            if pre is None or post is None or pd.isna(pre) or pd.isna(post):
                continue
            series.append({"kind": kind, "domain": domain, "pre": float(pre), "post": float(post)})
    return series


def institution_figures(participation: list[dict], series: list[dict] | None, domain_names: dict,
                        names: dict, captions: dict, lang: str, scale: tuple[float, float] = (1, 5)) -> dict[str, Figure]:
    """A school's figures: its participation per wave beside the region's mean per school, and
    (where a level is shown) its profile on the study's common score axis (``score_axis``).
    ``names``: legend and axis words ("team": the school's own team, "own": the level its scores
    are shown at, "region", "region_mean", "pre", "post", "wave", "respondents", "mean_score",
    "domain"); ``captions``: "participation", "profile"."""
    participation_names = {"own": names["team"], "region": names["region_mean"], "x_label": names["respondents"],
                           "y_label": names["wave"]}
    alt = figure_text.participation_alt(participation, {"own": names["team"], "region": names["region_mean"]},
                                        captions["participation"], lang)
    out = {"participation": Figure("", alt, Markup(memoised(school_charts.participation_chart, participation,
                                                            participation_names, lang, alt)))}
    if series:
        profile_names = {"own": names["own"], "region": names["region"], "pre": names["pre"], "post": names["post"],
                         "x_label": names["mean_score"], "y_label": names["domain"]}
        alt = figure_text.profile_alt(series, domain_names, profile_names, captions["profile"], lang)
        out["profile"] = Figure("", alt, Markup(memoised(school_charts.profile_chart, series, domain_names,
                                                         figures.score_axis(*scale), profile_names, lang, alt)))
    return out
