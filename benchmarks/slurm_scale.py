"""A national-size study through the Slurm profile, compared with the local run (not a test:
two whole pipeline runs of 2,000 schools, about 25 minutes on 2 idle CPUs, beyond the time of
CI's slow tier).

    sudo .venv/bin/python benchmarks/slurm_scale.py --schools 2000 --cores 2

Writes a study of ``--schools`` schools with the seeded generator into two copies of the project
(keyed with one secret for both), runs the whole pipeline in one locally (``snakemake --cores
N``) and in the other through ``--profile workflow/profiles/slurm`` on a throw-away single-node
Slurm cluster (``tests/slurm/cluster.py``: root and the Debian packages slurmctld, slurmd,
slurm-client and munge), then prints the wall time of each run, the jobs submitted per rule and
whether every file under ``results/`` has the same SHA-256 in both. Exits 1 when the school
reports ran as fewer than 4 batch jobs or any result differs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests" / "slurm"))
sys.path.insert(0, str(REPO / "benchmarks"))
import cluster  # noqa: E402
from scale import prepare  # noqa: E402

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
# As in tests/test_slurm.py: status checks 1 s after a submission on the quiet test cluster.
PROFILE = ["--profile", "workflow/profiles/slurm", "--slurm-init-seconds-before-status-checks", "1"]
MIN_BATCH_JOBS = 4


def digests(project: Path) -> dict[str, str]:
    return {str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((project / "results").rglob("*")) if p.is_file()}


def run(command: list[str], project: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, env=env)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {project}:\n{output[-4000:]}")
    return time.perf_counter() - started, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schools", type=int, default=2000)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20251127)
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    reason = cluster.missing_requirements()
    if reason:
        raise SystemExit(f"test Slurm cluster unavailable: {reason}")
    root = args.keep or Path(tempfile.mkdtemp(prefix="dpo_eval_slurm_scale_"))
    # A generated study is not the demo study: one secret of its own, the same for both runs.
    env = {**os.environ, "DPO_EVAL_SECRET": os.environ.get("DPO_EVAL_SECRET") or secrets.token_hex(32)}
    try:
        local, on_cluster = root / "local" / "project", root / "cluster" / "project"
        prepare(local, args.schools, args.seed)
        prepare(on_cluster, args.schools, args.seed)
        local_seconds, _ = run([SNAKEMAKE, "--cores", str(args.cores)], local, env)
        test_cluster = cluster.start(root / "slurm")
        try:
            cluster_seconds, output = run([SNAKEMAKE, *PROFILE], on_cluster, {**env, **test_cluster.environment(),
                                                                             "DPO_EVAL_SECRET": env["DPO_EVAL_SECRET"]})
        finally:
            cluster.stop(root / "slurm")
        submitted: dict[str, int] = {}
        for rule in re.findall(r"submitted with SLURM jobid \d+ \(log: \S*/slurm_logs/rule_(\w+)/", output):
            submitted[rule] = submitted.get(rule, 0) + 1
        ours, theirs = digests(local), digests(on_cluster)
        differing = sorted(name for name in ours.keys() | theirs.keys() if ours.get(name) != theirs.get(name))
        print(f"{args.schools} schools: local run {local_seconds:.0f} s (--cores {args.cores}), Slurm run "
              f"{cluster_seconds:.0f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print("jobs submitted to Slurm per rule: " + ", ".join(f"{rule} {n}" for rule, n in sorted(submitted.items())))
        print(f"results: {len(ours)} files locally, {len(theirs)} on Slurm, {len(differing)} differing"
              + (f": {', '.join(differing[:10])}" if differing else " (byte for byte equal)"))
        if submitted.get("institution_report_batch", 0) < MIN_BATCH_JOBS or differing:
            raise SystemExit(1)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
