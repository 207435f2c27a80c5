"""Layout and accessibility of every report of a generated study (not a test: minutes to hours).

    python benchmarks/report_layout.py --schools 10 --municipalities 4
    python benchmarks/report_layout.py --schools 500 --keep /tmp/layout500

writes a study of ``--schools`` schools with the seeded generator into a copy of the project,
runs the pipeline up to the evaluation reports and the school reports, and prints per report
kind: the number of PDFs, how many are tagged with a language, a title and an alternative text
for every figure (pikepdf), the emptiest page that is not a document's last (share of the
content area below the last inked row of the pdftoppm image) and how many pages exceed 40 %,
and how many lines of the Russian evaluation report end with a one-letter word. ``--reuse``
with ``--keep`` re-renders the reports of a study built before with the current code.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "src"))

from test_accessibility import (lines_ending_in_one_letter_word, page_empty_shares, pdf_lines,  # noqa: E402
                                structure_problems)

from dpo_eval.reporting.layout import MAX_EMPTY_SHARE  # noqa: E402
from studies import generated_project, snakemake  # noqa: E402

TARGETS = ("results/reports/evaluation.ru.pdf", "results/reports/evaluation.en.pdf", "results/reports/institutions")


def prepare(project: Path, schools: int, municipalities: int | None, seed: int, reuse: bool) -> None:
    generated_project(project, schools, seed, municipalities, simulate=not reuse)


def summary(kind: str, pdfs: list[Path]) -> str:
    problems = {p.name: structure_problems(p) for p in pdfs}
    tagged = sum(1 for found in problems.values() if not found)
    worst, over, pages = 0.0, 0, 0
    for path in pdfs:
        shares = page_empty_shares(path)
        pages += len(shares)
        worst = max([worst, *shares[:-1]])
        over += sum(share > MAX_EMPTY_SHARE for share in shares[:-1])
    return (f"{kind:<22} {len(pdfs):>5} PDFs {pages:>6} pages  tagged+alt {tagged:>5}/{len(pdfs):<5} "
            f"emptiest page (not last) {worst:5.0%}  pages > {MAX_EMPTY_SHARE:.0%}: {over}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schools", type=int, default=10)
    parser.add_argument("--municipalities", type=int, help="the generator's number of municipalities "
                        "(at most half the schools; 4 for 10 schools)")
    parser.add_argument("--seed", type=int, default=20251127)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true", help="with --keep: re-render the reports of a study built there")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="dpo_eval_report_layout_"))
    try:
        project = root / "project"
        reuse = args.reuse and (project / "results" / "tables" / "did.csv").exists()
        prepare(project, args.schools, args.municipalities, args.seed, reuse)
        started = time.perf_counter()
        snakemake(project, *TARGETS, "--cores", str(args.cores), *(["--forcerun", "evaluation_report",
                                                                    "institution_report_batch"] if reuse else []))
        elapsed = time.perf_counter() - started
        reports = project / "results" / "reports"
        print(f"study: {args.schools} schools (seed {args.seed}); pipeline to the reports in {elapsed:.0f} s")
        print(summary("evaluation reports", sorted(reports.glob("evaluation.*.pdf"))))
        print(summary("school reports", sorted((reports / "institutions").glob("*.pdf"))))
        ends = lines_ending_in_one_letter_word(pdf_lines(reports / "evaluation.ru.pdf"))
        print(f"lines of evaluation.ru.pdf ending with a one-letter word: {len(ends)}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
