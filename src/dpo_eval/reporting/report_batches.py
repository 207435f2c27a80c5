"""School reports in batches: which schools each batch job renders, and the gather that puts
the batches' reports and index rows together as one release (results/reports/institutions).

A study with thousands of schools renders its reports as independent batch jobs (Snakemake's
scatter/gather), so that a cluster runs them side by side; one machine still renders each batch
with its process pool. A school's PDF depends on the school and the study, not on its batch, so
the gathered release is byte-identical for every batch size (tests/test_reports.py).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
from pathlib import Path

import pandas as pd

from dpo_eval.core.io import write_outputs

INDEX = "index.csv"


def school_batches(schools: list[str], batch_size: int) -> list[list[str]]:
    """The schools, sorted by id, in consecutive batches of at most ``batch_size``: batch ``k``
    holds ``schools[k * batch_size:(k + 1) * batch_size]``, so concatenating the batches in
    order gives the sorted list the index is written in."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    ordered = sorted(schools)
    return [ordered[start:start + batch_size] for start in range(0, len(ordered), batch_size)]


def _place(source: Path, target: Path) -> None:
    """A hard link where the file system allows it (no second copy of thousands of PDFs),
    otherwise a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def gather_institution_reports(batch_dirs: list[str | Path], output_dir: str | Path) -> list[str]:
    """Every batch's PDFs and index rows, in batch order, into ``output_dir`` with one
    ``index.csv``; staged in a sibling folder and moved into place at once. Returns the
    console summary: the reports without a score figure of their own team or municipality."""
    # The index rows are joined as text under the first batch's header: the gathered index is
    # the bytes a single job would have written, whatever the batch size.
    texts = [(Path(folder) / INDEX).read_bytes().decode("utf-8").splitlines(keepends=True) for folder in batch_dirs]
    headers = {lines[0] for lines in texts}
    if len(headers) != 1:
        raise ValueError(f"the batches' index files have different headers: {sorted(headers)}")
    gathered = "".join([texts[0][0], *(row for lines in texts for row in lines[1:])]).encode("utf-8")
    index = pd.read_csv(io.BytesIO(gathered), dtype={"institution": str}, keep_default_na=False)
    duplicated = index.loc[index["institution"].duplicated(), "institution"].tolist()
    if duplicated:
        raise ValueError(f"schools rendered by more than one batch: {', '.join(duplicated)}")
    output_dir = Path(output_dir)
    staging = output_dir.with_name(f".{output_dir.name}.part")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for folder in batch_dirs:
        for pdf in sorted(Path(folder).glob("*.pdf")):
            _place(pdf, staging / pdf.name)
    write_outputs({staging / INDEX: gathered})
    for path in staging.iterdir():
        os.chmod(path, 0o644)
    shutil.rmtree(output_dir, ignore_errors=True)
    os.replace(staging, output_dir)
    without = index.loc[index["scores_figure"].astype(str) != "True", "institution"].tolist()
    log = logging.getLogger("dpo_eval")
    log.info("institution reports: %d gathered from %d batch(es)", len(index), len(batch_dirs))
    if not without:
        return []
    message = (f"{len(without)} report(s) without a score figure of their own team or municipality "
               f"(see index.csv): {', '.join(without)}")
    log.warning("%s", message)
    return [message]
