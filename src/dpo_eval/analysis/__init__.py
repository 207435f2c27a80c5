"""Statistical analysis of the study: the mixed-model engine (``dpo_eval.analysis.lmm``) and
measurement invariance (``cfa``, ``invariance``)."""
