"""Speed and memory of ingest against the number of rows per wave (a script, not a test).

A study is written by the seeded generator (``dpo_eval.simulate``, 500 schools) and tiled into
waves of about 10,000 / 50,000 / 200,000 rows: every copy of a school gets its own registry
row (id and name with a copy number), so the copies are different people. The waves keep the
generator's formats: the entry wave a Google Forms UTF-8 CSV, the exit wave a Yandex Forms
XLSX, the follow-up an Excel cp1251 ';' CSV (the follow-up has fewer rows, as in the
generator). Each size is ingested with the default configuration (``config/config.yaml``) in
a fresh process, as the ingest step does it: ``ingest_competencies`` from reading the files to
the finished tables, then ``write_outputs`` of the step's outputs (``ingest_outputs``: the
long responses CSV is most of the bytes); wall-clock and CPU seconds, and the peak resident
memory of that process.

The reference in the same run: ``pandas.read_csv`` (C parser, every cell as text) of the two
CSV waves alone, the floor of any CSV ingest, and the XLSX sheet parsed by ``openpyxl``
(read-only mode, values only; what ingest used before) for the smallest size only.

    python benchmarks/ingest_speed.py                     # 10,000 50,000 200,000
    python benchmarks/ingest_speed.py --rows 10000 50000

Columns: rows per wave (entry wave; exit and follow-up rows in brackets), seconds to the
finished tables (wall clock, CPU in brackets), ingest seconds with the outputs written (wall
clock) and their CPU seconds (the figure to compare on a shared machine), CPU seconds per
1,000 rows of all waves, peak resident memory of the ingest process, and the reference
seconds, and the load average after each size (the machine may be shared).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BASE_SCHOOLS = 500
SEED = 20260101

_INGEST = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
import yaml
from dpo_eval.core.codebook import load_codebook
from dpo_eval.core.io import write_outputs
from dpo_eval.core.registry import load_registry
from dpo_eval.ingest import ingest_competencies
from dpo_eval.steps.ingest_rules import ingest_outputs
config = yaml.safe_load(Path(sys.argv[1]).read_text(encoding="utf-8"))
outputs = ["responses", "respondents", "flow_waves", "match_audit", "duplicates",
           "invalid_values", "institutions", "pseudonymisation"]
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
start, start_cpu = time.perf_counter(), cpu()
codebook = load_codebook(config["codebook"])
registry = load_registry(config["registry"])
result, _ = ingest_competencies(config, codebook, registry, b"benchmark-secret-not-for-use")
tables, tables_cpu = time.perf_counter() - start, cpu() - start_cpu
with tempfile.TemporaryDirectory(dir=sys.argv[2]) as folder:
    paths = {name: Path(folder) / f"{name}.csv" for name in outputs}
    write_outputs(ingest_outputs(result, registry, "benchmark", paths))
    written = sum(path.stat().st_size for path in paths.values())
print(json.dumps({"tables": tables, "tables_cpu": tables_cpu,
                  "seconds": time.perf_counter() - start, "cpu": cpu() - start_cpu,
                  "responses": len(result.responses), "written_mb": written / 2**20,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _read_csv(path: Path) -> tuple[list[list[str]], str, str]:
    data = path.read_bytes()
    encoding = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else (
        "utf-8" if _is_utf8(data) else "cp1251")
    text = data.decode(encoding)
    delimiter = ";" if text.splitlines()[0].count(";") > text.splitlines()[0].count(",") else ","
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)), encoding, delimiter


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _institution_column(header: list[str], codebook: dict) -> int:
    accepted = [h.casefold() for h in codebook["fields"]["institution"]["headers"]]
    return next(i for i, h in enumerate(header) if any(h.casefold().startswith(a) for a in accepted))


def _copy_name(name: str, copy: int) -> str:
    return name if copy == 0 else f"{name} / {copy}"


def _tile_csv(source: Path, target: Path, copies: int, codebook: dict) -> int:
    rows, encoding, delimiter = _read_csv(source)
    header, body = rows[0], rows[1:]
    column = _institution_column(header, codebook)
    out = [header]
    for copy in range(copies):
        for row in body:
            out.append(row[:column] + [_copy_name(row[column], copy)] + row[column + 1:])
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(out)
    target.write_bytes(buffer.getvalue().encode(encoding))
    return len(out) - 1


def _tile_xlsx(source: Path, target: Path, copies: int, codebook: dict, sheet: str) -> int:
    from openpyxl import Workbook, load_workbook

    workbook = load_workbook(source, read_only=True)
    rows = [list(r) for r in workbook[sheet].iter_rows(values_only=True)]
    workbook.close()
    header, body = rows[0], rows[1:]
    column = _institution_column([str(h) for h in header], codebook)
    out = Workbook(write_only=True)
    tiled = out.create_sheet(sheet)
    tiled.append(header)
    for copy in range(copies):
        for row in body:
            tiled.append(row[:column] + [_copy_name(row[column], copy)] + row[column + 1:])
    out.save(target)
    return copies * len(body)


def _tile_registry(source: Path, target: Path, copies: int) -> None:
    rows, encoding, delimiter = _read_csv(source)
    header, body = rows[0], rows[1:]
    out = [header]
    for copy in range(copies):
        for row in body:
            record = dict(zip(header, row))
            if copy:
                record["id"] = f"{record['id']}-{copy}"
                record["name"] = _copy_name(record["name"], copy)
                if record.get("name_en"):
                    record["name_en"] = _copy_name(record["name_en"], copy)
            out.append([record[h] for h in header])
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(out)
    target.write_bytes(buffer.getvalue().encode(encoding))


def make_study(base: Path, folder: Path, rows_per_wave: int, config: dict, codebook: dict) -> dict:
    """The base study tiled to about ``rows_per_wave`` entry-wave rows; returns the config."""
    base_rows = sum(1 for _ in _read_csv(base / "pre_entry_google.csv")[0]) - 1
    copies = max(1, math.ceil(rows_per_wave / base_rows))
    folder.mkdir(parents=True)
    _tile_registry(base / "institutions.csv", folder / "institutions.csv", copies)
    config = json.loads(json.dumps(config))
    counts = {}
    for wave, spec in config["waves"].items():
        name = Path(spec["files"][0]).name
        if name.endswith(".xlsx"):
            counts[wave] = _tile_xlsx(base / name, folder / name, copies, codebook, spec["sheet"])
        else:
            counts[wave] = _tile_csv(base / name, folder / name, copies, codebook)
        spec["files"] = [str(folder / name)]
    config["registry"] = str(folder / "institutions.csv")
    config["codebook"] = str(REPO / "config" / "codebook.yaml")
    config["rows"] = counts
    return config


def run_ingest(config: dict, folder: Path) -> dict:
    path = folder / "config.json"
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", _INGEST, str(path), str(folder)], check=True,
                          capture_output=True, text=True, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1])


def reference_seconds(config: dict, with_xlsx: bool) -> tuple[float, float | None]:
    """pandas.read_csv of the CSV waves; openpyxl's read-only parse of the XLSX wave."""
    import pandas as pd

    start = time.perf_counter()
    for spec in config["waves"].values():
        path = Path(spec["files"][0])
        if path.suffix == ".csv":
            data = path.read_bytes()
            encoding = "cp1251" if not _is_utf8(data) else "utf-8-sig"
            delimiter = ";" if encoding == "cp1251" else ","
            pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding, sep=delimiter)
    csv_seconds = time.perf_counter() - start
    if not with_xlsx:
        return csv_seconds, None
    from openpyxl import load_workbook

    start = time.perf_counter()
    for spec in config["waves"].values():
        path = Path(spec["files"][0])
        if path.suffix == ".xlsx":
            workbook = load_workbook(path, read_only=True, data_only=True)
            for _ in workbook[spec["sheet"]].iter_rows(values_only=True):
                pass
            workbook.close()
    return csv_seconds, time.perf_counter() - start


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    args = parser.parse_args(argv)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    codebook = yaml.safe_load((REPO / "config" / "codebook.yaml").read_text(encoding="utf-8"))
    work = Path(tempfile.mkdtemp(prefix="ingest_speed_"))
    try:
        base = work / "base"
        subprocess.run([sys.executable, "-m", "dpo_eval.simulate", "--seed", str(SEED),
                        "--schools", str(BASE_SCHOOLS), "--out", str(base),
                        "--truth", str(work / "truth.json"),
                        "--codebook", str(REPO / "config" / "codebook.yaml")],
                       check=True, capture_output=True, cwd=REPO)
        print(f"{'rows per wave':>24} | {'tables s (CPU s)':>16} | {'ingest s':>8} | {'CPU s':>6} | "
              f"{'CPU s per 1,000 rows':>20} | {'peak GB':>7} | "
              f"{'pandas.read_csv s (CSV waves)':>29} | {'openpyxl s (XLSX wave)':>22} | "
              f"{'load 1/5/15 min':>14}")
        for index, rows in enumerate(sorted(args.rows)):
            study = make_study(base, work / f"rows_{rows}", rows, config, codebook)
            counts = study.pop("rows")
            measured = run_ingest(study, work / f"rows_{rows}")
            csv_s, xlsx_s = reference_seconds(study, with_xlsx=index == 0)
            total = sum(counts.values())
            label = f"{counts['pre']:,} ({counts['post']:,}, {counts.get('followup', 0):,})"
            tables = f"{measured['tables']:.1f} ({measured['tables_cpu']:.1f})"
            print(f"{label:>24} | {tables:>16} | {measured['seconds']:8.1f} | {measured['cpu']:6.1f} | "
                  f"{measured['cpu'] / total * 1000:20.3f} | {measured['peak_mb'] / 1024:7.2f} | "
                  f"{csv_s:29.1f} | {(f'{xlsx_s:.1f}' if xlsx_s is not None else '-'):>22} | "
                  f"{_load():>14}", flush=True)
            shutil.rmtree(work / f"rows_{rows}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
