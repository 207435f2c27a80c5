"""Building the reports: the evaluation report in one language, and every school's report
rendered by a pool of processes, from the tables under ``results/tables``."""

from __future__ import annotations

import gc
import logging
import os
import shutil
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from dpo_eval.core.codebook import load_codebook
from dpo_eval.reporting.layout import load_terms
from dpo_eval.core.io import read_csv, write_outputs
from dpo_eval.release.cells import school_report
from dpo_eval.release.view import ControlByReport, read_control
from dpo_eval.reporting.evaluation_context import evaluation_context
from dpo_eval.reporting.findings import domain_findings
from dpo_eval.reporting.formatting import load_strings
from dpo_eval.reporting.institution_context import institution_context
from dpo_eval.reporting.labels import names as label_names
from dpo_eval.reporting.provenance import provenance
from dpo_eval.reporting.render import demo_secret_used, publish_pdf, quiet_font_loggers, template_environment
from dpo_eval.core.study import EVALUATION_TABLES, INSTITUTION_TABLES

# The levels at which a school's report shows a figure of its own (its team or its municipality).
OWN_FIGURE_LEVELS = ("team", "municipality_cohort")


def _tables(paths: list[str], names: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    by_name = {Path(p).stem: p for p in paths}
    return {name: read_csv(by_name[name]) for name in names}


def build_evaluation_report(config: dict, inputs: dict, lang: str, output: str | Path) -> None:
    quiet_font_loggers()
    tables = _tables(inputs["tables"], EVALUATION_TABLES)
    tables["disclosure_control"] = read_control(inputs["control"])
    registry = pd.read_csv(inputs["institutions"], dtype=str, keep_default_na=False)
    strings = load_strings(inputs["i18n"], lang)
    prov = provenance(config, read_csv(inputs["manifest"]), inputs["lock"])
    templates_dir = Path(inputs["template"]).parent
    context = {**evaluation_context(config, tables, registry, lang, strings, prov),
               "demo_secret": demo_secret_used(inputs)}
    html = template_environment(templates_dir).get_template(Path(inputs["template"]).name).render(context)
    write_outputs({output: publish_pdf(html, templates_dir, config["study"]["report_date"], config, lang,
                                       context["title"], load_terms(inputs["i18n"], lang), portable=True)})


def load_institution_inputs(inputs: dict, institutions: list[str] | None = None
                            ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, list[str]]:
    """The tables the school reports read, the registry, and the schools to render, sorted:
    ``institutions``, or every school of the registry. Of the disclosure control table only
    these schools' rows are read."""
    registry = pd.read_csv(inputs["institutions"], dtype=str, keep_default_na=False)
    schools = sorted(institutions if institutions is not None else registry.loc[registry["type"] == "school", "id"])
    tables = _tables(inputs["tables"], INSTITUTION_TABLES)
    for name in ("score_benchmarks", "needs_benchmarks"):
        tables[name]["institution"] = tables[name]["institution"].fillna("")
    tables["disclosure_control"] = read_control(inputs["control"], [school_report(school) for school in schools])
    return tables, registry, schools


# A school report allocates hundreds of thousands of short-lived objects (boxes, styles, PDF
# objects); at the interpreter's default threshold of 700 allocations a young-generation
# collection ran several hundred times a report. A rendering process collects every this many
# allocations instead: 5-12 % less CPU time a report in three alternating runs (5,000 to 50,000
# did no better), for some 40 MB more memory (README, "School reports").
RENDERER_GC_THRESHOLD = 10_000

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
    findings = domain_findings(tables["did"], tables["model_checks"], list(config["analysis"]["domains"]))
    tables = {**tables, "disclosure_control": ControlByReport(tables["disclosure_control"])}
    _RENDERER.update(config=config, tables=tables, entries=registry.set_index("id"),
                     names={lang: label_names(codebook, registry, lang) for lang in strings}, registry=registry, templates_dir=templates_dir, codebook=codebook,
                     strings=strings, findings=findings, demo_secret=demo_secret,
                     terms={lang: load_terms(i18n_dir, lang) for lang in strings},
                     template=template_environment(templates_dir).get_template(Path(template).name),
                     font_config=FontConfiguration())


def _collect_less() -> tuple[int, int, int]:
    """Collect garbage every ``RENDERER_GC_THRESHOLD`` allocations, with what is loaded so far
    (which lives as long as the renderer) frozen out of every collection; returns the previous
    thresholds."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(RENDERER_GC_THRESHOLD, *previous[1:])
    return previous


def _start_worker(*setup) -> None:
    """A pool worker: a renderer (``_start_renderer``) that collects less (``_collect_less``)."""
    _start_renderer(*setup)
    _collect_less()


def _render_institution(institution: str) -> tuple[str, bytes, dict, list[str]]:
    """One school's PDF, its row of the index, and the warnings raised while making it."""
    r = _RENDERER
    messages: list[str] = []
    handler = _ListHandler(messages)
    logging.getLogger().addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            entry = r["entries"].loc[institution]
            lang = entry["language"]
            context = {**institution_context(r["config"], r["tables"], r["registry"], institution, r["strings"][lang],
                                             lang, r["findings"], r["codebook"], r["names"][lang], entry),
                       "demo_secret": r["demo_secret"]}
            html = r["template"].render(context)
            pdf = publish_pdf(html, r["templates_dir"], r["config"]["study"]["report_date"], r["config"], lang,
                              context["title"], r["terms"][lang], r["font_config"])
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
    tables, registry, schools = load_institution_inputs(inputs, institutions)
    setup = (config, tables, registry, str(inputs["i18n"]), str(inputs["template"]), demo_secret_used(inputs))
    workers = max(1, min(int(threads), len(schools)))
    import scipy.stats  # noqa: F401  (imported once here, inherited by forked workers)
    import weasyprint  # noqa: F401
    if workers > 1:
        # Each worker starts from a fresh interpreter state only when the platform has no fork;
        # either way it is initialised once. Schools are handed out one at a time: with chunks
        # (of 31 at 250 schools and 2 workers) one worker often still rendered its last chunk
        # for seconds while the other sat idle, in each of a study's batch jobs.
        with ProcessPoolExecutor(max_workers=workers, initializer=_start_worker, initargs=setup) as pool:
            results = list(pool.map(_render_institution, schools))
    else:
        _start_renderer(*setup)
        previous = _collect_less()
        try:
            results = [_render_institution(school) for school in schools]
        finally:  # the calling process (a test, a notebook) gets its own collector back
            gc.unfreeze()
            gc.set_threshold(*previous)
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
