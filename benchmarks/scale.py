"""Cost of the whole pipeline per step as the study grows (not a test).

    python benchmarks/scale.py --schools 500 2000 10000 --cores 2

For each size, writes a study of that many schools with the seeded generator
(``python -m dpo_eval.simulate``) into a copy of the project, with a recipients file addressed to
its institutions, and runs the whole default target (``snakemake --cores N``: ingest, analysis,
reports, school reports, outbox, packages) from nothing. Per step it prints

- seconds: the wall time of the step's jobs (from Snakemake's log: job start to "Finished";
  jobs of one step, e.g. the school-report batches, are added up), and per 1,000 schools;
- CPU seconds: the CPU time of the step's jobs with their process pools (psutil, sampled; on
  a shared machine less affected by other people's work than the wall time), and per 1,000
  schools;
- peak memory: the largest resident set of one job of the step with its child processes (its
  process pool), sampled every ``--sample`` seconds while it runs (psutil);

then the whole run's wall time, its CPU time (all processes) and the load average of the machine
before and after (other people's work on a shared machine slows every figure). With several
sizes, a last table shows each step's CPU (and wall) seconds per 1,000 schools side by side and
the growth exponent of its CPU time between the smallest and the largest size (log time ratio /
log size ratio: 1 is linear, 2 quadratic; steps that take under ``MIN_SECONDS`` are dominated by start-up and shown
without one).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))
from studies import RUN_ENVIRONMENT, generated_project  # noqa: E402

# A step shorter than this is mostly interpreter and library start-up: no growth exponent.
MIN_SECONDS = 5.0
# Snakemake's job scripts: .snakemake/scripts/tmpXXXXXXXX.<script>.py (the script is named after its rule).
SCRIPT = re.compile(r"\.snakemake/scripts/tmp[^/.]+\.([A-Za-z_]+)\.py")
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
JOB = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")

# A generated study is not the bundled demo study, so the public demo secret is refused for it.


def job_script(process: psutil.Process | None) -> str | None:
    """The rule whose script ``process`` runs: a Python process, not the shell that started it
    (Snakemake runs ``python <script>`` from bash, whose command line names the script too)."""
    if process is None:
        return None
    command = process.cmdline()
    match = SCRIPT.search(" ".join(command[1:])) if command and Path(command[0]).name.startswith("python") else None
    return match.group(1) if match else None


class MemorySampler(threading.Thread):
    """Peak resident memory per Snakemake job script (with its children), by rule, and the CPU
    time of each job (its own, its finished children's and its running children's, at the last
    sample before it ends: up to one interval of a job's CPU time can be missed)."""

    def __init__(self, root_pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.root_pid, self.interval = root_pid, interval
        self.peak_mb: dict[str, float] = defaultdict(float)
        self.job_cpu: dict[int, tuple[str, float]] = {}
        self.done = threading.Event()

    def cpu_seconds(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for rule, seconds in self.job_cpu.values():
            totals[rule] += seconds
        return totals

    def sample(self) -> None:
        try:
            processes = psutil.Process(self.root_pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for process in processes:
            try:
                rule = job_script(process)
                # A job's pool workers are forked with its command line: counted with the job only.
                if rule is None or job_script(process.parent()) is not None:
                    continue
                family = [process, *process.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in family if p.is_running()) / 2**20
                own = process.cpu_times()
                cpu = own.user + own.system + own.children_user + own.children_system + sum(
                    t.user + t.system for t in (p.cpu_times() for p in family[1:] if p.is_running()))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            self.peak_mb[rule] = max(self.peak_mb[rule], rss)
            self.job_cpu[process.pid] = (rule, max(cpu, self.job_cpu.get(process.pid, (rule, 0.0))[1]))

    def run(self) -> None:
        while not self.done.is_set():
            self.sample()
            self.done.wait(self.interval)


def job_seconds(log_text: str) -> dict[str, tuple[int, float]]:
    """Per rule: its number of jobs and the sum of their wall times, from Snakemake's log."""
    started: dict[str, datetime] = {}
    stamp, rule = None, None
    totals: dict[str, list] = defaultdict(lambda: [0, 0.0])
    for line in log_text.splitlines():
        if match := STAMP.match(line):
            stamp = datetime.strptime(match.group(1), "%a %b %d %H:%M:%S %Y")
        elif match := JOB.match(line):
            rule = match.group(1)
        elif (match := JOBID.match(line)) and rule is not None and stamp is not None:
            started[match.group(1)] = stamp
            rule = None
        elif (match := FINISHED.match(line)) and match.group(1) in started:
            total = totals[match.group(2)]
            total[0] += 1
            total[1] += (stamp - started.pop(match.group(1))).total_seconds()
    return {name: (jobs, seconds) for name, (jobs, seconds) in totals.items()}


def prepare(project: Path, schools: int, seed: int) -> None:
    """A copy of the project holding a generated study of ``schools`` schools and its recipients."""
    generated_project(project, schools, seed)


def run_pipeline(project: Path, cores: int, interval: float) -> dict:
    """The whole default target from nothing; per step its jobs, seconds and peak memory."""
    command = [str(Path(sys.executable).with_name("snakemake")), "--cores", str(cores)]
    load_before = os.getloadavg()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=RUN_ENVIRONMENT)
    sampler = MemorySampler(process.pid, interval)
    sampler.start()
    output, _ = process.communicate()
    sampler.done.set()
    sampler.join()
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {project}:\n{output[-4000:]}")
    steps = job_seconds(output)
    cpu = sampler.cpu_seconds()
    return {"wall": wall, "load": (load_before, os.getloadavg()),
            "cpu": (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime),
            "steps": {rule: (jobs, seconds, sampler.peak_mb.get(rule), cpu.get(rule))
                      for rule, (jobs, seconds) in steps.items()}}


def print_run(schools: int, cores: int, run: dict) -> None:
    per = 1000 / schools
    print(f"\n{schools} schools, --cores {cores}: whole pipeline {run['wall']:.0f} s wall "
          f"({run['wall'] * per:.0f} s per 1,000 schools), CPU time {run['cpu']:.0f} s; load average "
          f"{run['load'][0][0]:.1f} before, {run['load'][1][0]:.1f} after, on {os.cpu_count()} CPUs")
    print("| step | jobs | seconds | s per 1,000 schools | CPU s | CPU s per 1,000 schools | peak memory (MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for rule, (jobs, seconds, peak, cpu) in sorted(run["steps"].items(), key=lambda item: -item[1][1]):
        memory = f"{peak:.0f}" if peak else "–"
        cpu_cells = f"{cpu:.0f} | {cpu * per:.1f}" if cpu else "– | –"
        print(f"| {rule} | {jobs} | {seconds:.0f} | {seconds * per:.1f} | {cpu_cells} | {memory} |")


def print_growth(runs: dict[int, dict]) -> None:
    sizes = sorted(runs)
    small, large = sizes[0], sizes[-1]
    rules = sorted({rule for run in runs.values() for rule in run["steps"]},
                   key=lambda rule: -(runs[large]["steps"].get(rule, (0, 0.0, None, None))[3] or 0.0))
    print(f"\nCPU seconds per 1,000 schools (wall seconds in brackets), and the growth exponent of the CPU "
          f"time {small} -> {large} schools (1 = linear):")
    print("| step | " + " | ".join(f"{n} schools" for n in sizes) + " | exponent |")
    print("|---|" + "---:|" * (len(sizes) + 1))
    for rule in [*rules, "whole pipeline"]:
        def figures(n: int) -> tuple[float, float]:
            if rule == "whole pipeline":
                return runs[n]["cpu"], runs[n]["wall"]
            _, wall, _, cpu = runs[n]["steps"].get(rule, (0, 0.0, None, None))
            return cpu or 0.0, wall
        cpu = {n: figures(n)[0] for n in sizes}
        exponent = "–"
        if min(cpu[small], cpu[large]) >= MIN_SECONDS:
            exponent = f"{math.log(cpu[large] / cpu[small]) / math.log(large / small):.2f}"
        cells = " | ".join(f"{figures(n)[0] * 1000 / n:.1f} ({figures(n)[1] * 1000 / n:.1f})" for n in sizes)
        print(f"| {rule} | {cells} | {exponent} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schools", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20251127)
    parser.add_argument("--sample", type=float, default=0.5, help="seconds between memory samples")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="dpo_eval_scale_"))
    runs = {}
    try:
        for schools in args.schools:
            project = root / f"schools_{schools}" / "project"
            started = time.perf_counter()
            prepare(project, schools, args.seed)
            print(f"study of {schools} schools generated in {time.perf_counter() - started:.0f} s (not counted)",
                  flush=True)
            runs[schools] = run_pipeline(project, args.cores, args.sample)
            print_run(schools, args.cores, runs[schools])
            sys.stdout.flush()
        if len(runs) > 1:
            print_growth(runs)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
