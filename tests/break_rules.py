"""Break one rule of the findings layer at a time, in a copy of src/, and run
tests/test_findings.py against it: every broken rule must make some of its cases fail.

    .venv/bin/python tests/break_rules.py ["rule name" ...]

(Not collected by pytest: a check of the tests themselves, about 20 s per rule.)"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MUTANTS = {k: v for k, v in {
    "Holm replaced by the unadjusted p": ("dpo_eval/analysis/multiplicity.py",
        "        adjusted[valid] = result\n", "        adjusted[valid] = values\n"),
    "estimability check removed": ("dpo_eval/reporting/findings.py",
        "    if not estimable:\n        return NOT_ESTIMABLE\n", ""),
    "convergence check removed": ("dpo_eval/reporting/findings.py",
        "    if converged is not None and not bool(converged):\n        return NOT_CONVERGED\n", ""),
    "sensitivity judged on unadjusted p": ("dpo_eval/reporting/findings.py",
        'decide(r["estimate"], r["p_holm"])', 'decide(r["estimate"], r["p_value"])'),
    "interval not Holm-consistent (unadjusted)": ("dpo_eval/analysis/multiplicity.py",
        "    quantile = stats.t.ppf(1 - alpha / (2 * factor)", "    quantile = stats.t.ppf(1 - alpha / 2 + 0 * factor"),
    "significance predicate <= instead of <": ("dpo_eval/analysis/multiplicity.py",
        "return bool(p_value is not None and not pd.isna(p_value) and p_value < alpha)",
        "return bool(p_value is not None and not pd.isna(p_value) and p_value <= alpha)"),
    "persists said without a primary gain": ("dpo_eval/reporting/sentences.py",
        '            key = "followup_larger"', '            pass'),
}.items() if not sys.argv[1:] or k in sys.argv[1:]}
status = 0
for name, (path, old, new) in MUTANTS.items():
    root = Path(tempfile.mkdtemp(prefix="break_rules_"))
    shutil.copytree(REPO / "src", root / "src")
    target = root / "src" / path
    text = target.read_text()
    assert old in text, name
    target.write_text(text.replace(old, new, 1))
    run = subprocess.run([str(REPO / ".venv/bin/pytest"), "-q", "-n", "0", "-p", "no:cacheprovider", "tests/test_findings.py"],
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(root / "src")}, capture_output=True, text=True)
    shutil.rmtree(root)
    failed = [l.split("::")[1].split(" ")[0] for l in run.stdout.splitlines() if l.startswith("FAILED")]
    print(f"{name}: {len(failed)} failed: {sorted(set(f.split('[')[0] for f in failed))}", flush=True)
    if not failed:
        status = 1
sys.exit(status)
