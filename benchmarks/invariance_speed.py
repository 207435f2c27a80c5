"""Time of the measurement-invariance step, side by side with lavaan on the same models (not a test).

    python benchmarks/invariance_speed.py --schools 500

For the demo study and for a generated study of ``--schools`` schools (seed 500, 16
municipalities, as the resources table of README.md), the competency exports are ingested in
process, then the pipeline's ``invariance`` step (``dpo_eval.steps.analysis_rules.invariance``: reading
responses.csv, every domain for all participants and per cohort, the partial-invariance search,
writing both tables) is timed, wall and CPU. lavaan fits the same models (every domain and group
the step fitted, with the items the step freed) through tests/reference/invariance_lavaan.R;
its time is that of the fits as R measures them (without R's start-up). The last columns are
the largest relative differences from lavaan over chi-square, CFI, RMSEA, SRMR and the scaled
chi-square (lavaan fits every model with "ML" and "MLM"), and over the
standardised loadings.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from dpo_eval.analysis import invariance as inv  # noqa: E402
from dpo_eval.core.codebook import load_codebook  # noqa: E402
from dpo_eval.ingest import ingest_competencies  # noqa: E402
from dpo_eval.core.registry import load_registry  # noqa: E402
from dpo_eval.ingest.pseudonymise import DEMO_SECRET  # noqa: E402
from dpo_eval.core.settings import InvarianceSettings  # noqa: E402
from dpo_eval.simulation_studies.coverage import study_config  # noqa: E402
from dpo_eval.steps import analysis  # noqa: E402

LAVAAN_SCRIPT = REPO / "tests" / "reference" / "invariance_lavaan.R"
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
CODEBOOK = REPO / "config" / "codebook.yaml"
COMPARED = {"chisq": "chisq", "cfi": "cfi", "rmsea": "rmsea", "srmr": "srmr", "chisq_scaled": "chisq.scaled"}


def responses_csv(raw: Path, folder: Path) -> Path:
    """The study's responses.csv, as the ingest step writes it (keyed with the demo secret:
    the benchmark times the invariance step, not the keys)."""
    config = study_config(CONFIG, raw, CODEBOOK)
    result, _ = ingest_competencies(config, load_codebook(CODEBOOK), load_registry(config["registry"]),
                                    DEMO_SECRET.encode())
    path = folder / "responses.csv"
    result.responses.to_csv(path, index=False)
    return path


def time_step(responses: Path, folder: Path) -> tuple[float, float, pd.DataFrame, pd.DataFrame]:
    settings = InvarianceSettings.from_config(CONFIG)
    output = {"table": folder / "invariance.csv", "loadings": folder / "invariance_loadings.csv"}
    wall, cpu = time.perf_counter(), time.process_time()
    analysis.invariance(settings, CODEBOOK, responses, output)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, pd.read_csv(output["table"]), pd.read_csv(output["loadings"])


def lavaan_comparison(responses: Path, table: pd.DataFrame, loadings: pd.DataFrame,
                      folder: Path) -> tuple[float, float, float, int]:
    """lavaan's fit seconds over every domain and group the step fitted, and the largest
    relative differences of the fit measures and of the standardised loadings."""
    frame_rows = pd.read_csv(responses)
    codebook = load_codebook(CODEBOOK)
    seconds, measure_diff, loading_diff, fitted = 0.0, 0.0, 0.0, 0
    for (domain, group), rows in table.groupby(["domain", "group"], sort=False):
        rows = rows.set_index("model")
        if rows.loc["configural", "status"] != "ok":
            continue
        items = [item.id for item in codebook.items_of(domain)]
        frame = inv.wide_frame(frame_rows, domain, items, None if group == inv.ALL_PARTICIPANTS else group)
        frame_path, out = folder / f"{domain}_{group}.csv", folder / f"{domain}_{group}.lavaan.csv"
        frame.to_csv(frame_path, index=False)
        freed = rows.loc[inv.PARTIAL, "freed_items"] if inv.PARTIAL in rows.index else "none"
        result = subprocess.run([shutil.which("Rscript"), str(LAVAAN_SCRIPT), str(frame_path),
                                 str(freed).replace(";", ","), str(out)], capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"lavaan failed on {domain}, {group}:\n{result.stderr[-2000:]}")
        seconds += float(re.search(r"lavaan fit seconds: ([0-9.]+)", result.stderr).group(1))
        fitted += 1
        lavaan = pd.read_csv(out).set_index(["model", "measure"])["value"]
        for model, row in rows.iterrows():
            for ours_name, theirs_name in COMPARED.items():
                theirs = lavaan[(model, theirs_name)]
                if theirs != 0:
                    measure_diff = max(measure_diff, abs(row[ours_name] - theirs) / abs(theirs))
        ours = loadings[(loadings["domain"] == domain) & (loadings["group"] == group)]
        for record in ours.itertuples():
            theirs = lavaan[(record.model, f"std:{record.item}.{record.wave}")]
            loading_diff = max(loading_diff, abs(record.loading_std - theirs) / abs(theirs))
    return seconds, measure_diff, loading_diff, fitted


def run(name: str, raw: Path, folder: Path) -> dict:
    folder.mkdir(parents=True)
    responses = responses_csv(raw, folder)
    wall, cpu, table, loadings = time_step(responses, folder)
    lavaan_seconds, measure_diff, loading_diff, fitted = lavaan_comparison(responses, table, loadings, folder)
    participants = int(pd.read_csv(responses)["participant_key"].nunique())
    return {"study": name, "participants": participants, "domain x group fitted": fitted,
            "models": int((table["status"] == "ok").sum()), "step wall s": round(wall, 2),
            "step CPU s": round(cpu, 2), "lavaan fit s": round(lavaan_seconds, 2),
            "max rel diff (fit)": f"{measure_diff:.1e}", "max rel diff (loadings)": f"{loading_diff:.1e}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=500)
    args = parser.parse_args()
    if shutil.which("Rscript") is None:
        raise SystemExit("Rscript with lavaan is needed (apt-get install r-base-core r-cran-lavaan)")
    with tempfile.TemporaryDirectory(prefix="dpo_eval_invariance_") as tmp:
        tmp = Path(tmp)
        rows = [run("demo", REPO / "data" / "raw", tmp / "demo")]
        generated = tmp / "generated"
        subprocess.run([sys.executable, "-m", "dpo_eval.simulate", "--seed", "500", "--schools",
                        str(args.schools), "--municipalities", "16", "--needs", "20",
                        "--out", str(generated / "raw"), "--truth", str(generated / "truth.json"),
                        "--codebook", str(CODEBOOK)], check=True, capture_output=True,
                       env={"PYTHONPATH": str(REPO / "src")})
        rows.append(run(f"{args.schools} schools", generated / "raw", tmp / "generated_run"))
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
