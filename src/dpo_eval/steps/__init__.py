"""The pipeline's steps, one module per stage: ingest, analysis, reports and the outbox.

Each Snakemake rule calls exactly one function of these modules through a short adapter in
workflow/scripts/, so that every step can also be run and tested without Snakemake. A rule's
code inputs are the modules its step imports (workflow/rules/common.smk derives them).
"""
