"""dpo_eval: reproducible evaluation of additional professional education (DPO) programs.

The package holds all the logic of the Snakemake pipeline; rules and scripts are thin adapters.
"""

__version__ = "0.1.0"
