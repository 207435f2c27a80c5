# Included first by the Snakefile (through common.smk) and by workflow/simulation.smk: the rules
# run the package in this repository (whose modules they declare as inputs), also where it is
# not installed, e.g. inside a per-rule conda environment.
import os
import sys
from pathlib import Path

PACKAGE_ROOT = str(Path(workflow.current_basedir).resolve().parents[1] / "src")
sys.path.insert(0, PACKAGE_ROOT)
os.environ.update(
    PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
)
