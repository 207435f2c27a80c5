"""Wall time of building every school report of a large generated study (not a test).

    python benchmarks/reports_speed.py --schools 500 --cores 2

writes a study of ``--schools`` schools with the seeded generator into a copy of the project
(with a recipients file addressed to its institutions), builds the tables the school reports
read, then times ``snakemake --cores N results/reports/institutions``: the
``institution_report_batch`` jobs render the PDFs, each in a pool of N processes, and
``institution_reports`` gathers them. Prints the wall time, the reports per second and the end
of each batch's log.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from studies import generated_project, snakemake  # noqa: E402
PREREQUISITES = ("results/tables/score_benchmarks.csv", "results/tables/needs_benchmarks.csv",
                 "results/tables/did.csv", "results/clean/institutions.csv", "results/audit/disclosure_control.csv")




def render_in_process(project: Path, cores: int) -> None:
    """The institution_reports step on tables built before (--reuse), called directly, as the
    rule's script does, with the current code: the rendering alone is timed."""
    import glob

    import yaml

    sys.path.insert(0, str(REPO / "src"))
    from dpo_eval.reporting.build import build_institution_reports

    config = yaml.safe_load((project / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["codebook"] = str(project / "config" / "codebook.yaml")
    inputs = {"tables": sorted(glob.glob(str(project / "results" / "tables" / "*.csv"))),
              "institutions": str(project / "results" / "clean" / "institutions.csv"),
              "control": str(project / "results" / "audit" / "disclosure_control.csv"),
              "pseudonymisation": str(project / "results" / "clean" / "pseudonymisation.json"),
              "codebook": config["codebook"],
              "i18n": str(project / "reports" / "i18n"), "template": str(project / "reports" / "templates" / "institution.html")}
    out = project / "results" / "reports" / "institutions"
    cpu_before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    build_institution_reports(config, inputs, out, threads=cores)
    elapsed = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(cpu_after, cpu_before))
    reports = sorted(out.glob("*.pdf"))
    print(f"institution_reports step (in process, {cores} workers): {len(reports)} PDFs in {elapsed:.1f} s wall "
          f"time; CPU time {cpu:.0f} s ({cpu / max(1, len(reports)):.2f} CPU s per report); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schools", type=int, default=500)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20251127)
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true",
                        help="with --keep: reuse the study and tables built there before, refresh only the code")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="dpo_eval_reports_speed_"))
    try:
        project = root / "project"
        reuse = args.reuse and (project / "results" / "tables" / "did.csv").exists()
        generated_project(project, args.schools, args.seed, simulate=not reuse)
        if reuse:
            render_in_process(project, args.cores)
            return
        started = time.perf_counter()
        snakemake(project, "--cores", str(args.cores), *PREREQUISITES)
        prepared = time.perf_counter() - started
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        # The target goes first: --forcerun takes any number of rule names and would swallow it.
        snakemake(project, "results/reports/institutions", "--cores", str(args.cores), "--forcerun",
                  "institution_report_batch")
        elapsed = time.perf_counter() - started
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
        reports = sorted((project / "results" / "reports" / "institutions").glob("*.pdf"))
        print(f"study: {args.schools} schools (seed {args.seed}); tables prepared in {prepared:.0f} s")
        print(f"institution_reports: {len(reports)} PDFs in {elapsed:.1f} s wall time with --cores {args.cores} "
              f"({len(reports) / elapsed:.2f} reports/s, {elapsed / max(1, len(reports)):.2f} s per report)")
        print(f"CPU time of the job (all processes): {cpu:.0f} s, i.e. {cpu / max(1, len(reports)):.2f} CPU s per "
              f"report; load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        for log in sorted((project / "logs" / "institution_report_batch").glob("*.log")):
            print(log.read_text(encoding="utf-8").strip()[-600:])
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
