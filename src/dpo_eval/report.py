"""Evaluation report: tables -> Jinja2 HTML in the reader's language -> PDF with WeasyPrint."""

from __future__ import annotations

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

from dpo_eval import __version__
from dpo_eval.codebook import load_codebook
from dpo_eval.io import read_csv

ALPHA = 0.05
PACKAGE_DIR = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- formatting


def format_number(value: float, lang: str, digits: int = 2) -> str:
    """A number as the locale writes it: decimal comma in Russian, point in English."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError("a missing number reached the report; check the analysis tables")
    text = f"{value:.{digits}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return text.replace(".", ",") if lang == "ru" else text


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


# --------------------------------------------------------------------------- provenance


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def code_digest() -> str:
    """SHA-256 over the package's source files: identifies the code without needing git."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def provenance(config: dict, input_files: list[str], lock_file: str | Path) -> dict:
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in
                         ("pandas", "numpy", "scipy", "statsmodels", "weasyprint", "jinja2"))
    return {
        "code_version": f"dpo_eval {__version__}, source SHA-256 {code_digest()[:16]}",
        "config_sha256": hashlib.sha256(json.dumps(config, sort_keys=True, ensure_ascii=False)
                                        .encode("utf-8")).hexdigest(),
        "lock_sha256": sha256_file(lock_file),
        "software": f"Python {platform.python_version()}; {versions}",
        "inputs": [{"path": path, "sha256": sha256_file(path)} for path in sorted(input_files)],
    }


# --------------------------------------------------------------------------- content


def load_strings(i18n_dir: str | Path, lang: str) -> dict:
    with open(Path(i18n_dir) / f"{lang}.yaml", encoding="utf-8") as stream:
        return yaml.safe_load(stream)


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
            lines.append(strings["domain_supported"].format(
                estimate=format_number(row.estimate, lang), **values))
        elif row.p_holm < ALPHA:
            opposite.append(name)
            lines.append(strings["domain_opposite"].format(
                estimate=format_number(-row.estimate, lang), **values))
        else:
            lines.append(strings["domain_not_significant"].format(
                estimate=format_number(row.estimate, lang), **values))
    if len(supported) == len(did):
        text = strings["verdict_supported"]
    elif supported:
        text = strings["verdict_partial"]
    else:
        text = strings["verdict_not_supported"]
    for name in opposite:
        text += " " + strings["verdict_opposite"].format(domain=name)
    return text, lines


def evaluation_context(config: dict, tables: dict[str, pd.DataFrame], lang: str,
                       strings: dict, prov: dict) -> dict:
    codebook = load_codebook(config["codebook"])
    domain_names = {d: spec[lang] for d, spec in codebook.domains.items()}
    did = tables["did"]
    verdict_text, domain_lines = verdict(did, strings, domain_names, lang)
    wave_rows = tables["flow"][tables["flow"]["domain"].isna()]
    flow = [{**{k: int(row[k]) for k in ("received", "duplicates", "participants", "unmatched",
                                         "careless", "excluded", "analysed")},
             "wave": strings["waves"][row["wave"]], "cohort": strings["cohorts"][row["cohort"]]}
            for row in wave_rows.to_dict(orient="records")]
    order = {domain: index for index, domain in enumerate(codebook.domains)}
    ordered = tables["descriptives"].sort_values("domain", key=lambda s: s.map(order), kind="stable")
    descriptives = [{"domain": domain_names[r["domain"]], "cohort": strings["cohorts"][r["cohort"]],
                     "wave": strings["waves"][r["wave"]], "mean": format_number(r["mean"], lang),
                     "sd": format_number(r["sd"], lang), "n": int(r["n"])}
                    for r in ordered.to_dict(orient="records")]
    did_rows = [{"domain": domain_names[r["domain"]], "estimate": format_number(r["estimate"], lang),
                 "ci": format_ci(r["conf_low"], r["conf_high"], lang),
                 "df": format_number(r["df"], lang, 1),
                 "d_ppc2": format_number(r["d_ppc2"], lang),
                 "d_ci": format_ci(r["d_conf_low"], r["d_conf_high"], lang),
                 "p_value": format_p(r["p_value"], lang), "p_holm": format_p(r["p_holm"], lang),
                 "n_participants": int(r["n_participants"]), "n_institutions": int(r["n_institutions"])}
                for r in did.to_dict(orient="records")]
    section_ids = ["summary", "design", "flow", "descriptives", "gains", "limitations", "provenance"]
    return {
        "lang": lang, "t": strings,
        "title": config["study"]["title"][lang], "program": config["study"]["program"][lang],
        "report_date": config["study"]["report_date"],
        "report_date_text": format_date(config["study"]["report_date"], lang),
        "sections": [{"id": s, "title": strings[s]} for s in section_ids],
        "verdict": verdict_text, "domain_lines": domain_lines,
        "flow": flow, "descriptives": descriptives, "did": did_rows, "provenance": prov,
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


def render_pdf(html: str, base_url: str | Path, output: str | Path, iso_date: str) -> None:
    """HTML -> PDF, byte-stable: a document identifier derived from the content and font
    timestamps from the report date; written atomically."""
    from weasyprint import HTML

    from dpo_eval.io import write_outputs

    identifier = hashlib.sha256(html.encode("utf-8")).hexdigest()[:32].encode()
    with source_date_epoch(iso_date):
        pdf = HTML(string=html, base_url=str(base_url)).write_pdf(pdf_identifier=identifier)
    write_outputs({output: pdf})


def build_evaluation_report(config: dict, inputs: dict, lang: str, output: str | Path,
                            input_files: list[str]) -> None:
    tables = {name: read_csv(inputs[name]) for name in ("did", "flow", "descriptives")}
    strings = load_strings(inputs["i18n"], lang)
    prov = provenance(config, input_files, inputs["lock"])
    templates_dir = Path(inputs["template"]).parent
    context = evaluation_context(config, tables, lang, strings, prov)
    html = template_environment(templates_dir).get_template(Path(inputs["template"]).name).render(context)
    render_pdf(html, templates_dir, output, config["study"]["report_date"])
