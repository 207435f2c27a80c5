"""Simulation study of the primary estimand: coverage of the 95% confidence intervals of the
difference-in-differences (DiD) and the type I error at a true zero effect.

Each replicate is a full study written by the seeded generator (``dpo_eval.simulate``: the demo
design, 60 schools, about 250 participants) and analysed by the pipeline's own functions:
ingest, scale scores and the primary mixed model with Satterthwaite inference, for each
competency domain. A condition multiplies the generator's true effects (1 = its effects, 0 = a
null study). The truth on the scale-score metric is the generator's Monte Carlo value
(``simulate.true_score_effects``). Coverage is the share of intervals with ``low < truth <
high``; the rejection rate is the share of ``p < 0.05`` (the power under the effects, the type
I error under the null). The Monte Carlo standard error of a share ``c`` over ``n`` intervals is
``sqrt(c (1 - c) / n)`` (Morris, White & Crowther, 2019, Stat. Med. 38:2074, table 6).

The Snakemake workflow ``workflow/simulation.smk`` runs one job per condition and batch of
seeds (``replicate_batch``) and rebuilds the table of README.md (``coverage_summary``,
``markdown_table``).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from dpo_eval.analysis import models
from dpo_eval.core.codebook import Codebook, load_codebook
from dpo_eval.ingest import ingest_competencies
from dpo_eval.core.registry import load_registry
from dpo_eval.core.io import write_outputs
from dpo_eval.analysis.multiplicity import ALPHA, significant
from dpo_eval.ingest.pseudonymise import DEMO_SECRET
from dpo_eval.analysis.scoring import scale_scores
from dpo_eval.simulate import COMPETENCY_DOMAINS, Contamination, SimulationSpec, simulate_study, true_score_effects

REPLICATE_COLUMNS = ["condition", "effect_scale", "seed", "domain", "estimate", "std_error", "df",
                     "p_value", "conf_low", "conf_high", "singular", "converged"]


def merge_settings(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` merged in key by key (nested mappings merged, not replaced)."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_settings(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_pipeline_config(path: str | Path) -> dict:
    with open(path, encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def study_config(base_config: dict, raw: Path, codebook_path: str | Path) -> dict:
    """The pipeline configuration pointed at the raw exports of one simulated study."""
    config = yaml.safe_load(yaml.safe_dump(base_config))  # a deep copy
    for wave in config["waves"].values():
        wave["files"] = [str(raw / Path(name).name) for name in wave["files"]]
    config["needs"]["files"] = [str(raw / Path(name).name) for name in config["needs"]["files"]]
    config["registry"] = str(raw / "institutions.csv")
    config["codebook"] = str(codebook_path)
    return config


def condition_spec(seed: int, effect_scale: float, contamination: float = 0.0) -> SimulationSpec:
    """The demo design with its true DiDs multiplied by ``effect_scale``."""
    spec = SimulationSpec(seed=seed, contamination=Contamination().scaled(contamination), n_needs=10)
    spec.did = {domain: value * effect_scale for domain, value in spec.did.items()}
    return spec


def simulated_scores(spec: SimulationSpec, codebook: Codebook, codebook_path: str | Path,
                     base_config: dict) -> pd.DataFrame:
    """Scale scores of one generated study, through the raw exports and the pipeline's ingest."""
    with tempfile.TemporaryDirectory(prefix="dpo_eval_sim_") as folder:
        raw = Path(folder) / "raw"
        simulate_study(spec, codebook, raw, Path(folder) / "truth.json", score_truth=False)
        config = study_config(base_config, raw, codebook_path)
        result, _ = ingest_competencies(config, codebook, load_registry(config["registry"]),
                                        DEMO_SECRET.encode())
    items = {domain: len(codebook.items_of(domain)) for domain in codebook.domains}
    return scale_scores(result.responses, items, base_config["analysis"]["min_item_share"])


def replicate(seed: int, effect_scale: float, base_config: dict, codebook_path: str | Path,
              contamination: float = 0.0, codebook: Codebook | None = None) -> list[dict]:
    """The DiD of every competency domain in one generated study, with its primary model's
    Satterthwaite interval and p-value and the fit's checks."""
    codebook = codebook or load_codebook(codebook_path)
    scores = simulated_scores(condition_spec(seed, effect_scale, contamination), codebook,
                              codebook_path, base_config)
    covariates = list(base_config["analysis"]["covariates"])
    rows = []
    for domain in COMPETENCY_DOMAINS:
        frame = models.model_frame(scores, domain, covariates)
        fit, design, _ = models.fit_model(frame, models.primary_formula(covariates))
        did = models.contrast(fit, models.DID_TERM)
        checks = models.model_checks(fit, design, frame["score"].to_numpy())
        rows.append({"seed": seed, "effect_scale": effect_scale, "domain": domain,
                     **{key: did[key] for key in ("estimate", "std_error", "df", "p_value",
                                                  "conf_low", "conf_high")},
                     "singular": bool(checks["singular"]), "converged": bool(checks["converged"])})
    return rows


def batch_seeds(first_seed: int, studies: int, batch_size: int, batch: int) -> list[int]:
    """Seeds of batch ``batch`` (0-based) of a condition: consecutive from ``first_seed``."""
    start = batch * batch_size
    return [first_seed + i for i in range(start, min(start + batch_size, studies))]


def n_batches(studies: int, batch_size: int) -> int:
    return -(-studies // batch_size)


def replicate_batch(condition: str, effect_scale: float, seeds: list[int], base_config: dict,
                    codebook_path: str | Path, contamination: float = 0.0) -> pd.DataFrame:
    """One job of the simulation workflow: the replicates of ``seeds`` under one condition."""
    codebook = load_codebook(codebook_path)
    rows = [row for seed in seeds
            for row in replicate(seed, effect_scale, base_config, codebook_path, contamination, codebook)]
    return pd.DataFrame(rows).assign(condition=condition)[REPLICATE_COLUMNS]


def condition_truth(effect_scale: float, first_seed: int, codebook_path: str | Path,
                    draws: int = 400_000) -> dict[str, float]:
    """True DiD per competency domain on the scale-score metric (the generator's Monte Carlo)."""
    spec = condition_spec(first_seed, effect_scale)
    effects = true_score_effects(spec, load_codebook(codebook_path), n=draws)["did"]
    return {domain: effects[domain] for domain in COMPETENCY_DOMAINS}


def coverage_summary(replicates: pd.DataFrame, truth: dict[str, dict[str, float]],
                     alpha: float = ALPHA) -> pd.DataFrame:
    """Per condition and domain, and over all domains of a condition ("all"): true DiD, mean
    estimate, coverage with its Monte Carlo SE, rejection rate, singular and non-converged fits."""
    table = replicates.copy()
    table["truth"] = [truth[c][d] for c, d in zip(table["condition"], table["domain"])]
    table["covered"] = (table["conf_low"] < table["truth"]) & (table["truth"] < table["conf_high"])
    table["rejected"] = significant(table["p_value"], alpha)
    rows = []
    for condition in dict.fromkeys(table["condition"]):
        own = table[table["condition"] == condition]
        groups = [(domain, own[own["domain"] == domain]) for domain in dict.fromkeys(own["domain"])]
        for domain, group in [*groups, ("all", own)]:
            cover = float(group["covered"].mean())
            rows.append({
                "condition": condition, "effect_scale": float(group["effect_scale"].iloc[0]),
                "domain": domain, "studies": int(group["seed"].nunique()),
                "intervals": len(group),
                "true_did": float(group["truth"].iloc[0]) if domain != "all" else np.nan,
                "mean_estimate": float(group["estimate"].mean()) if domain != "all" else np.nan,
                "coverage": cover, "coverage_se": float(np.sqrt(cover * (1 - cover) / len(group))),
                "rejection_rate": float(group["rejected"].mean()),
                "singular_share": float(group["singular"].mean()),
                "not_converged": int((~group["converged"].astype(bool)).sum()),
            })
    return pd.DataFrame(rows)


def _share(value: float) -> str:
    return f"{value:.3f}"


def condition_label(effect_scale: float) -> str:
    if effect_scale == 0:
        return "null (effect 0)"
    return "generator effects" if effect_scale == 1 else f"generator effects x {effect_scale:g}"


def markdown_table(summary: pd.DataFrame) -> str:
    """The coverage and type I error table of README.md, with its closing sentence."""
    lines = ["| condition | domain | true DiD | mean estimate | 95% CI coverage | p < 0.05 |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in summary.itertuples():
        label = condition_label(row.effect_scale)
        null = row.effect_scale == 0
        if row.domain == "all":
            what = "tests" if null else "intervals"
            coverage = _share(row.coverage) if null else f"**{_share(row.coverage)}** (SE {row.coverage_se:.3f})"
            rejection = f"**{_share(row.rejection_rate)}**" if null else ""
            cells = [label, f"all {row.intervals:,} {what}", "", "", coverage, rejection]
        else:
            truth = "0" if row.true_did == 0 else f"{row.true_did:.3f}"
            cells = [label, row.domain.replace("_", "-"), truth, f"{row.mean_estimate:.3f}",
                     _share(row.coverage), _share(row.rejection_rate)]
        lines.append(" ".join(["|", *(f"{cell} |" if cell else "|" for cell in cells)]))
    overall = summary[summary["domain"] == "all"]
    fits = int(overall["intervals"].sum())
    failed = int(overall["not_converged"].sum())
    singular = float((overall["singular_share"] * overall["intervals"]).sum() / fits)
    failures = "No fit failed to converge" if failed == 0 else f"{failed} of {fits:,} fits did not converge"
    return "\n".join(lines) + f"\n\n{failures}; {100 * singular:.1f}% of the fits were singular.\n"


def write_coverage_table(batches: list[str], truths: list[str], table_path: str | Path,
                         markdown_path: str | Path) -> None:
    """The aggregation step: every batch's replicates and each condition's truth (a file
    ``<condition>/truth.json``) -> the summary table (CSV) and the README's table (Markdown)."""
    # A condition may be called "null", which pandas would read as a missing value.
    replicates = pd.concat([pd.read_csv(path, converters={"condition": str}) for path in batches],
                           ignore_index=True)
    truth = {Path(path).parent.name: json.loads(Path(path).read_text(encoding="utf-8"))
             for path in truths}
    summary = coverage_summary(replicates, truth)
    write_outputs({table_path: summary, markdown_path: markdown_table(summary).encode("utf-8")})
