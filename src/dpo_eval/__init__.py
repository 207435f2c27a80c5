"""dpo_eval: reproducible evaluation of additional professional education (DPO) programs.

The package holds all the logic of the Snakemake pipeline; rules and scripts are thin adapters.
"""

import os

# The package's linear algebra works on many small matrices and Snakemake runs jobs in parallel:
# a multi-threaded BLAS then only adds thread hand-offs (10x slower small solves on a busy
# machine). One BLAS thread per process unless the user asks otherwise; this takes effect when
# dpo_eval is imported before numpy (the command-line entries and workflow scripts do).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
