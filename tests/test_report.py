"""Locale formatting, Russian plurals by rule, the wording of the verdict and its consistency
with the Holm-adjusted p-values, and the tick labels of the figures."""

import re
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
import yaml
from statsmodels.stats.multitest import multipletests

from conftest import REPO, simulate
from dpo_eval.reporting import figures
from dpo_eval.analysis.multiplicity import holm_intervals
from dpo_eval.reporting.findings import domain_findings
from dpo_eval.reporting.formatting import format_ci, format_p, load_strings, points
from dpo_eval.reporting.sentences import verdict as verdict_sentences
from dpo_eval.reporting.typography import MINUS, NARROW_NBSP, counted, format_number, plural_category, tick_formatter

NAMES = {"universal": "U", "professional": "P", "subject_methodical": "S"}
RU = load_strings(REPO / "reports" / "i18n", "ru")


@pytest.mark.parametrize("value,lang,expected", [(0.3256, "ru", "0,33"), (0.3256, "en", "0.33"),
                                                 (-0.004, "ru", "0,00"), (-1.5, "en", MINUS + "1.50"),
                                                 (-0.25, "ru", MINUS + "0,25"),
                                                 (12345.5, "ru", f"12{NARROW_NBSP}345,50"),
                                                 (1234.5, "ru", "1234,50"), (1234.5, "en", "1,234.50")])
def test_format_number(value, lang, expected):
    assert format_number(value, lang) == expected


def test_missing_number_is_an_error():
    with pytest.raises(ValueError, match="missing number"):
        format_number(float("nan"), "ru")


@pytest.mark.parametrize("p,lang,expected", [(0.00001, "ru", "p < 0,001"), (0.0234, "ru", "p = 0,023"),
                                             (0.5, "en", "p = 0.500"), (0.0009, "en", "p < 0.001")])
def test_format_p(p, lang, expected):
    assert format_p(p, lang).replace("\u00a0", " ") == expected


def test_format_ci():
    assert format_ci(0.11, 0.41, "ru") == "[0,11; 0,41]"
    assert format_ci(-0.11, 0.41, "en") == f"[{MINUS}0.11, 0.41]"


@pytest.mark.parametrize("count,word", [(1, "участник"), (21, "участник"), (251, "участник"), (101, "участник"),
                                        (2, "участника"), (34, "участника"), (5, "участников"),
                                        (11, "участников"), (111, "участников"), (211, "участников"), (221, "участник"),
                                        (12, "участников"), (0, "участников")])
def test_russian_nouns_agree_with_numerals(count, word):
    assert counted(count, RU["nouns"]["participant"], "ru") == f"{count} {word}"


def test_points_after_decimals_take_the_genitive_singular():
    assert points(0.5, RU, "ru") == "0,50\u00a0балла"
    assert points(-1.0, RU, "ru") == f"{MINUS}1,00\u00a0балла"
    assert plural_category(Decimal("1"), "ru") == "one"


def test_every_plural_table_covers_the_languages_categories():
    for lang, categories in (("ru", {"one", "few", "many", "other"}), ("en", {"one", "other"})):
        strings = load_strings(REPO / "reports" / "i18n", lang)
        for noun, forms in strings["nouns"].items():
            assert set(forms) == categories, (lang, noun)


def did(estimates, p_values, se=0.1, df=40.0):
    table = pd.DataFrame({"domain": list(NAMES), "estimate": estimates, "std_error": se, "df": df,
                          "p_value": p_values})
    table["p_holm"] = multipletests(table["p_value"], method="holm")[1]
    return table


def verdict(table, strings, names, lang):
    """The verdict worded from the primary findings of a DiD table (all models converged)."""
    table = table.assign(d_ppc2=0.3, d_conf_low=0.0, d_conf_high=0.6, n_participants=100, n_institutions=20)
    checks = pd.DataFrame({"domain": table["domain"], "converged": True, "singular": False})
    findings = domain_findings(table, checks, list(table["domain"]))
    return verdict_sentences(findings, strings, {"domain": names}, lang)


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_verdict_follows_the_results(lang):
    strings = load_strings(REPO / "reports" / "i18n", lang)
    text, lines = verdict(did([0.3, 0.4, 0.2], [0.001, 0.001, 0.01]), strings, NAMES, lang)
    assert text.startswith(strings["verdict_supported"]) and strings["verdict_design"] in text
    text, lines = verdict(did([0.3, 0.05, 0.2], [0.001, 0.4, 0.01]), strings, NAMES, lang)
    assert text.startswith(strings["verdict_partial"])
    # The second domain (P: estimate 0.05, Holm-adjusted p 0.4) alone is worded as not significant.
    expected = {"ru": ("«P»:", "0,05 балла", "p = 0,400 с поправкой Холма", "статистически не значимо",
                       "не доказан"),
                "en": ('"P":', "0.05 points", "Holm-adjusted p = 0.400", "not statistically significant",
                       "not demonstrated")}[lang]
    plain = [line.replace("\xa0", " ") for line in lines]
    assert all(part in plain[1] for part in expected), plain[1]
    assert not any(expected[3] in plain[i] for i in (0, 2)), plain
    text, lines = verdict(did([-0.3, 0.05, 0.02], [0.001, 0.4, 0.6]), strings, NAMES, lang)
    assert text.startswith(strings["verdict_not_demonstrated"])
    assert strings["verdict_opposite"].format(domain="U") in text
    assert format_number(0.3, lang) in lines[0]


def test_russian_verdict_is_not_causal_and_never_says_rejected():
    wording = " ".join(str(v) for k, v in RU.items() if k.startswith(("verdict", "domain_")))
    assert not re.search(r"повысил|отвергается|не подтверждается|опровергнут", wording)


def interval_in(line: str) -> tuple[float, float]:
    low, high = re.search(r"(−?\d+,\d+); (−?\d+,\d+)[;)]", line).groups()
    return tuple(float(v.replace("−", "-").replace(",", ".")) for v in (low, high))


def test_holm_intervals_exclude_zero_exactly_when_the_adjusted_p_is_significant():
    from scipy import stats

    rng = np.random.default_rng(7)
    for _ in range(30):
        se = rng.uniform(0.05, 0.3, 3)
        df = rng.uniform(5, 200, 3)
        estimate = rng.normal(0, 0.3, 3)
        p = 2 * stats.t.sf(np.abs(estimate / se), df)
        table = did(estimate, p, se=se, df=df)
        out = holm_intervals(table)
        off_zero = (out["conf_low_holm"] > 0) | (out["conf_high_holm"] < 0)
        assert (off_zero == (out["p_holm"] < 0.05)).all()
        unadjusted = stats.t.ppf(0.975, df) * se
        bonferroni = stats.t.ppf(1 - 0.05 / 6, df) * se
        half_width = (out["conf_high_holm"] - out["conf_low_holm"]) / 2
        assert (half_width >= unadjusted - 1e-12).all() and (half_width <= bonferroni + 1e-12).all()


def study_did(tmp_path, *args) -> pd.DataFrame:
    """The primary models' difference-in-differences of a generated study, by the package's
    own step functions (ingest, scale scores, mixed models, Holm adjustment)."""
    from dpo_eval.analysis import models
    from dpo_eval.core.codebook import load_codebook
    from dpo_eval.ingest import ingest_competencies
    from dpo_eval.core.registry import load_registry
    from dpo_eval.ingest.pseudonymise import DEMO_SECRET
    from dpo_eval.analysis.scoring import scale_scores

    simulate(tmp_path, "--needs", "60", *args)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    raw = tmp_path / "raw"
    for wave in config["waves"].values():
        wave["files"] = [str(raw / f.split("/")[-1]) for f in wave["files"]]
    config["registry"] = str(raw / "institutions.csv")
    codebook = load_codebook(REPO / "config" / "codebook.yaml")
    result, _ = ingest_competencies(config, codebook, load_registry(config["registry"]), DEMO_SECRET.encode())
    scores = scale_scores(result.responses, {d: len(codebook.items_of(d)) for d in codebook.domains},
                          config["analysis"]["min_item_share"])
    rows = []
    covariates = config["analysis"]["covariates"]
    for domain in config["analysis"]["domains"]:
        fit = models.fit_primary(models.model_frame(scores, domain, covariates), covariates)
        term = next(t for t in fit["fixed_effects"] if t["term"] == models.DID_TERM)
        rows.append({"domain": domain, **{k: term[k] for k in ("estimate", "std_error", "df", "p_value")}})
    table = pd.DataFrame(rows)
    table["p_holm"] = multipletests(table["p_value"], method="holm")[1]
    return table


@pytest.mark.parametrize("args", [("--schools", "10", "--municipalities", "4"), ("--schools", "30"), ("--schools", "60"),
                                  ("--schools", "30", "--effect-scale", "0")])
def test_no_interval_off_zero_stands_next_to_not_significant(tmp_path, args):
    table = study_did(tmp_path, "--seed", "20251127", *args)
    for lang in ("ru", "en"):
        strings = load_strings(REPO / "reports" / "i18n", lang)
        names = {d: d for d in table["domain"]}
        text, lines = verdict(table, strings, names, lang)
        for line, row in zip(lines, table.itertuples()):
            if row.p_holm >= 0.05:
                low, high = interval_in(line.replace(" to ", "; ").replace(".", ",")) if lang == "en" else interval_in(line)
                assert low <= 0 <= high, line
                assert "не значимо" in line or "not statistically significant" in line
            else:
                low, high = interval_in(line.replace(" to ", "; ").replace(".", ",")) if lang == "en" else interval_in(line)
                assert not low <= 0 <= high, line
        if (table["p_holm"] >= 0.05).all():
            assert text.startswith(strings["verdict_not_demonstrated"])


def tick_texts(svg: str) -> list[str]:
    return re.findall(r">([^<>]*\d[^<>]*)</text>", svg)


def test_figure_tick_labels_use_the_locale(monkeypatch):
    """With text kept as SVG text (instead of paths), the tick labels can be read: decimal
    commas and U+2212 in Russian, points in English."""
    monkeypatch.setitem(figures.plt.rcParams, "svg.fonttype", "none")
    rows = pd.DataFrame({"label": ["a", "b"], "estimate": [-0.2, 0.35], "conf_low": [-0.45, 0.1],
                         "conf_high": [0.05, 0.6]})
    ru = tick_texts(figures.forest_plot(rows, "label", "нет различий", "x", "ru"))
    assert any(re.fullmatch(r"0,\d+", t) for t in ru) and any(t.startswith(MINUS) for t in ru)
    assert not any(re.search(r"\d\.\d|-\d", t) for t in ru)
    en = tick_texts(figures.forest_plot(rows, "label", "no difference", "x", "en"))
    assert any(re.fullmatch(r"0\.\d+", t) for t in en)
    assert tick_formatter("ru", 1)(3.2, None) == "3,2"
    assert tick_formatter("ru", percent=True)(-0.5, None) == f"50{NARROW_NBSP}%"


def glossary() -> list[dict]:
    return yaml.safe_load((REPO / "reports" / "i18n" / "glossary.ru.yaml").read_text(encoding="utf-8"))["terms"]


def prose_strings(node):
    """Every text value of an i18n tree, without the mathtext of formulas and symbols."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "symbols":
                yield from (meaning for _, meaning in value)
            elif key != "formulas":
                yield from prose_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from prose_strings(value)
    elif isinstance(node, str):
        yield node


def test_russian_strings_follow_the_glossary():
    prose = "\n".join(prose_strings(RU))
    assert "степеней свободы" in prose and "ВКК" in prose
    for term in glossary():
        for pattern in term["avoid"]:
            assert not re.search(pattern, prose), (term["ru"], pattern, re.findall(".{30}" + pattern, prose))


PORTABLE_HTML = """<html><head><style>
@font-face { font-family: "Report Sans"; src: url("../fonts/DejaVuSans.ttf"); }
body { font-family: "Report Sans"; }</style></head>
<body><p>Оценка программы: прирост 0,50 балла (95% ДИ 0,07; 0,93)</p></body></html>"""

HIDE_HARFBUZZ_SUBSET = """
import sys, cffi
original = cffi.FFI.dlopen
def dlopen(self, name, *args, **kwargs):
    if "subset" in str(name):
        raise OSError("hidden by the test")
    return original(self, name, *args, **kwargs)
cffi.FFI.dlopen = dlopen
from weasyprint.text import ffi
assert ffi.harfbuzz_subset is None
from dpo_eval.reporting.render import render_pdf
sys.stdout.buffer.write(render_pdf(sys.stdin.read(), sys.argv[1], "2026-04-01", portable=True))
"""


def test_portable_pdfs_do_not_depend_on_harfbuzz_subsetting():
    """The evaluation reports are rebuilt byte for byte by reviewers: their fonts are subset by
    fontTools whether or not the system has libharfbuzz-subset (which changes the font bytes;
    the school reports use it for speed where it is installed)."""
    import subprocess
    import sys

    from dpo_eval.reporting.render import render_pdf

    templates = str(REPO / "reports" / "templates")
    portable = render_pdf(PORTABLE_HTML, templates, "2026-04-01", portable=True)
    hidden = subprocess.run([sys.executable, "-c", HIDE_HARFBUZZ_SUBSET, templates], input=PORTABLE_HTML.encode(),
                            capture_output=True, check=True).stdout
    assert portable == hidden


@pytest.mark.requires_tool("harfbuzz-subset")
def test_school_reports_take_the_harfbuzz_subsetter_where_it_is_installed():
    """The fast path (HarfBuzz subsetting, CI installs it) is really another one than the
    portable fontTools path of the evaluation reports."""
    from dpo_eval.reporting.render import render_pdf

    templates = str(REPO / "reports" / "templates")
    portable = render_pdf(PORTABLE_HTML, templates, "2026-04-01", portable=True)
    assert render_pdf(PORTABLE_HTML, templates, "2026-04-01") != portable
